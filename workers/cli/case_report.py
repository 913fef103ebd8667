"""One case as ``hotline case show`` prints it, and the overdue list, for supervisors.

A case comes from its workflow's ``view`` query (status, units, deadlines, escalation
level and the full timeline) or, when the workflow is gone (closed and no longer
queryable, past its retention, or Temporal unreachable), from the ledger (``cases``,
``dispatches``, ``case_events``); the report says which source answered. The overdue
list reads the ledger only, so it also shows cases whose workers are behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from workers.cli.failures import EXIT_UNREACHABLE, STACK_HINT, CliFailure, Failure, classify
from workers.cli.output import describe_error
from workers.runtime.settings import Settings
from workers.runtime.temporal import connect_temporal
from workflows.ids import complaint_workflow_id
from workflows.model import QUERY_VIEW, CaseView

__all__ = ["OPEN_STATUSES", "CaseReport", "load_case", "overdue_cases"]

# The unit still owes the answer: a deadline passed in these states is overdue.
OPEN_STATUSES = ("ACCEPTED", "DISPATCHED", "SIGNED", "IN_PROGRESS", "REOPENED")

QUERY_TIMEOUT = timedelta(seconds=15)
# A query on a closed run replays its history on a worker; without one it would hang.
CLOSED_QUERY_TIMEOUT = timedelta(seconds=5)


@dataclass
class CaseReport:
    """One case as ``case show`` prints it, from the workflow or the ledger.

    Attributes:
        complaint_id: The upstream complaint id.
        source: ``workflow`` or ``ledger``.
        workflow_status: RUNNING, COMPLETED, ... or None when Temporal did not say.
        case: Status, classification, lead unit, deadlines, level and counters.
        dispatches: One dict per unit dispatch, in issue order.
        timeline: Lifecycle steps in sequence order.
        notes: Why the ledger answered, and similar remarks for people.
    """

    complaint_id: str
    source: str
    workflow_status: str | None
    case: dict[str, Any]
    dispatches: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _from_view(view: CaseView) -> tuple[dict[str, Any], list[dict[str, Any]],
                                        list[dict[str, Any]]]:
    case = {
        "complaint_id": view.complaint_id, "status": view.status, "outcome": view.outcome,
        "kind": view.kind, "category": view.category, "tier": view.tier,
        "district": view.district, "street": view.street,
        "lead_unit_id": view.lead_unit_id, "dispatch_id": view.dispatch_id,
        "sign_by": view.sign_by, "due_at": view.due_at, "overdue": view.overdue,
        "escalation_level": view.escalation_level, "urges": view.urges,
        "returns": view.returns, "reopens": view.reopens, "extensions": view.extensions,
        "extension_pending": view.extension_pending,
    }
    dispatches = [
        {"dispatch_id": d.dispatch_id, "unit_id": d.unit_id, "unit_name": d.unit_name,
         "role": d.role, "issued_at": d.issued_at, "sign_by": d.sign_by, "due_at": d.due_at,
         "signed_at": d.signed_at, "completed_at": d.completed_at,
         "revoked_at": d.revoked_at, "result": d.result, "reply_text": d.reply_text}
        for d in sorted(view.dispatches, key=lambda d: d.issued_at)
    ]
    timeline = [
        {"seq": r.seq, "at": r.at, "event_type": r.event_type, "status": r.status,
         "unit_id": r.unit_id, "dispatch_id": r.dispatch_id, "reason": r.reason,
         "escalation_level": r.escalation_level, "overdue": r.overdue,
         "attributes": dict(r.attributes)}
        for r in sorted(view.timeline, key=lambda r: r.seq)
    ]
    return case, dispatches, timeline


_CASE_SQL = """
SELECT complaint_id, status, outcome, channel, kind, category, tier, district, street,
       lead_unit_id, filed_at, due_at, closed_at, overdue, escalation_level
FROM cases WHERE complaint_id = %s
"""
_DISPATCHES_SQL = """
SELECT dispatch_id, unit_id, role, issued_at, sign_by, due_at, signed_at, completed_at,
       revoked_at, result
FROM dispatches WHERE complaint_id = %s ORDER BY issued_at, dispatch_id
"""
_EVENTS_SQL = """
SELECT seq, at, event_type, status, unit_id, dispatch_id, reason, attributes
FROM case_events WHERE complaint_id = %s ORDER BY seq
"""


def _rows(cursor: Any) -> list[dict[str, Any]]:
    names = [d.name for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


async def _arows(cursor: Any) -> list[dict[str, Any]]:
    names = [d.name for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]


async def _from_ledger(settings: Settings, complaint_id: str) -> tuple[
    dict[str, Any] | None, list[dict[str, Any]], list[dict[str, Any]]
]:
    import psycopg

    async with await psycopg.AsyncConnection.connect(
        settings.dsn, connect_timeout=10, autocommit=True
    ) as conn:
        cases = await _arows(await conn.execute(_CASE_SQL, (complaint_id,)))
        dispatches = await _arows(await conn.execute(_DISPATCHES_SQL, (complaint_id,)))
        events = await _arows(await conn.execute(_EVENTS_SQL, (complaint_id,)))
    case = cases[0] if cases else None
    if case is not None:
        lead = next((d for d in reversed(dispatches) if d["unit_id"] == case["lead_unit_id"]
                     and d["role"] == "LEAD"), None)
        case["dispatch_id"] = lead["dispatch_id"] if lead else None
        case["sign_by"] = lead["sign_by"] if lead else None
        case["returns"] = sum(e["event_type"] == "RETURNED" for e in events)
        case["reopens"] = sum(e["event_type"] == "REOPENED" for e in events)
        case["extensions"] = sum(
            e["event_type"] == "EXTENSION_DECIDED"
            and (e["attributes"] or {}).get("granted") == "true" for e in events)
    return case, dispatches, events


async def load_case(settings: Settings, complaint_id: str) -> CaseReport | None:
    """A case from its workflow's ``view`` query, else from the ledger.

    A running workflow is queried. A closed one is shown from the ledger when the ledger
    has the case (a query on a closed run replays its whole history on a worker), and
    queried only when it does not.

    Args:
        settings: Temporal address, namespace, TLS and the ledger DSN.
        complaint_id: The upstream complaint id (the workflow id is derived from it).

    Returns:
        The report, or ``None`` when neither the workflow nor the ledger knows the case.

    Raises:
        CliFailure: The case was not found and Temporal or the ledger did not answer
            (exit 3 when a server is unreachable), so "not found" cannot be said.
    """
    notes: list[str] = []
    ledger_case: dict[str, Any] | None = None
    ledger_dispatches: list[dict[str, Any]] = []
    ledger_events: list[dict[str, Any]] = []
    # Why a source did not answer: "not found" is only said when both did.
    unanswered: list[Failure] = []
    try:
        ledger_case, ledger_dispatches, ledger_events = await _from_ledger(
            settings, complaint_id)
    except Exception as exc:  # ledger away: the workflow may still answer
        notes.append(f"ledger not read ({describe_error(exc)})")
        unanswered.append(classify(exc))

    workflow_status: str | None = None
    view: CaseView | None = None
    client: Client | None = None
    try:
        client = await connect_temporal(settings)
        handle = client.get_workflow_handle(complaint_workflow_id(complaint_id))
        description = await handle.describe(rpc_timeout=QUERY_TIMEOUT)
        status = description.status
        workflow_status = status.name if status is not None else None
        if status == WorkflowExecutionStatus.RUNNING:
            view = await handle.query(QUERY_VIEW, result_type=CaseView,
                                      rpc_timeout=QUERY_TIMEOUT)
        elif ledger_case is None:
            view = await handle.query(QUERY_VIEW, result_type=CaseView,
                                      rpc_timeout=CLOSED_QUERY_TIMEOUT)
        else:
            notes.append(f"workflow {workflow_status}: shown from the ledger")
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            notes.append("no workflow for this case in Temporal (closed past retention, or "
                         "never started)")
        else:
            notes.append(f"workflow query failed ({describe_error(exc)})")
            unanswered.append(classify(exc))
    except Exception as exc:  # Temporal away, query timed out on a closed run
        notes.append(f"workflow not queried ({describe_error(exc)})")
        unanswered.append(classify(exc))
    finally:
        del client  # temporalio's Client has no close(); drop it before the loop ends

    if view is not None:
        case, dispatches, timeline = _from_view(view)
        if ledger_case is not None:  # the workflow view has no filing time or channel
            for key in ("filed_at", "channel", "closed_at"):
                case[key] = ledger_case.get(key)
        return CaseReport(complaint_id, "workflow", workflow_status, case, dispatches,
                          timeline, notes)
    if ledger_case is None:
        if unanswered:
            raise _unknown(complaint_id, unanswered)
        return None
    return CaseReport(complaint_id, "ledger", workflow_status, ledger_case,
                      ledger_dispatches, ledger_events, notes)


def _unknown(complaint_id: str, unanswered: list[Failure]) -> CliFailure:
    """Neither source knows the case, and at least one could not be asked."""
    hint = f"; {STACK_HINT}"
    why = "; ".join(f.message.removesuffix(hint) for f in unanswered)
    codes = {f.code for f in unanswered}
    return CliFailure(f"case {complaint_id}: not found, and not every source answered: {why}"
                      + (hint if hint in " ".join(f.message for f in unanswered) else ""),
                      EXIT_UNREACHABLE if EXIT_UNREACHABLE in codes else min(codes))


# --------------------------------------------------------------------------------------
# Overdue list


_OVERDUE_SQL = """
SELECT complaint_id, tier, district, street, lead_unit_id, status, escalation_level,
       overdue, filed_at, due_at
FROM cases
WHERE due_at < %(now)s AND status = ANY(%(open)s)
  AND (%(district)s::text IS NULL OR district = %(district)s)
  AND (%(tier)s::text IS NULL OR tier = %(tier)s)
ORDER BY due_at
"""


def overdue_cases(
    settings: Settings, *, district: str | None = None, tier: str | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Open cases past their deadline, longest overdue first, from the ledger."""
    import psycopg

    params = {"now": now or datetime.now(UTC), "open": list(OPEN_STATUSES),
              "district": district, "tier": tier}
    with psycopg.connect(settings.dsn, connect_timeout=10, autocommit=True) as conn:
        return _rows(conn.execute(_OVERDUE_SQL, params))
