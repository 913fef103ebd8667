"""``hotline case show|escalate|reassign|extension`` and ``hotline overdue`` for supervisors.

``case show`` asks the case's workflow (the ``view`` query: status, units, deadlines,
escalation level and the full timeline) and falls back to the ledger (``cases``,
``dispatches``, ``case_events``) when the workflow is gone: closed and no longer
queryable, past its retention, or Temporal unreachable. The output says which source
answered.

``case escalate|reassign|extension`` are Temporal updates. Each carries an ``event_id``
(``--event-id``, a fresh one by default): the workflow de-duplicates by it, so a script
may retry a timed-out command with the same id and the decision is applied once. The
workflow's ``Ack`` is printed; a refused decision exits 1, a missing or closed case 2, and
no answer (no worker polling?) 3.

``overdue`` reads the ledger only: cases whose deadline has passed while the unit still
owes the answer (``ACCEPTED``, ``DISPATCHED``, ``SIGNED``, ``IN_PROGRESS``,
``REOPENED``), grouped by district and tier. It does not wait for a workflow timer, so it
also shows cases whose workers are behind.

Caller phone and name are never read or printed; free text has phone numbers masked.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from rich.table import Table
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from workers.cli.output import (
    console,
    describe_error,
    err_console,
    fmt_time,
    mask_text,
    print_json,
    redact,
    run_as_process,
)
from workers.runtime.settings import Settings
from workers.runtime.temporal import connect_temporal
from workflows.ids import complaint_workflow_id
from workflows.model import (
    QUERY_VIEW,
    UPDATE_DECIDE_EXTENSION,
    UPDATE_ESCALATE,
    UPDATE_REASSIGN,
    Ack,
    CaseView,
    Escalate,
    ExtensionDecision,
    Reassign,
)

__all__ = [
    "OPEN_STATUSES",
    "CaseReport",
    "app",
    "load_case",
    "overdue",
    "overdue_cases",
    "register",
    "send_decision",
]

app = typer.Typer(
    no_args_is_help=True,
    help="One case: show it, or decide as a supervisor (escalate, reassign, extension).",
)

# The unit still owes the answer: a deadline passed in these states is overdue.
OPEN_STATUSES = ("ACCEPTED", "DISPATCHED", "SIGNED", "IN_PROGRESS", "REOPENED")

QUERY_TIMEOUT = timedelta(seconds=15)
# A query on a closed run replays its history on a worker; without one it would hang.
CLOSED_QUERY_TIMEOUT = timedelta(seconds=5)
UPDATE_TIMEOUT = timedelta(seconds=30)

EXIT_REFUSED = 1
EXIT_NO_CASE = 2
EXIT_NO_ANSWER = 3


# --------------------------------------------------------------------------------------
# Loading a case


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
    """
    notes: list[str] = []
    ledger_case: dict[str, Any] | None = None
    ledger_dispatches: list[dict[str, Any]] = []
    ledger_events: list[dict[str, Any]] = []
    try:
        ledger_case, ledger_dispatches, ledger_events = await _from_ledger(
            settings, complaint_id)
    except Exception as exc:  # ledger away: the workflow may still answer
        notes.append(f"ledger not read ({describe_error(exc)})")

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
    except Exception as exc:  # Temporal away, query timed out on a closed run
        notes.append(f"workflow not queried ({describe_error(exc)})")
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
        return None
    return CaseReport(complaint_id, "ledger", workflow_status, ledger_case,
                      ledger_dispatches, ledger_events, notes)


# --------------------------------------------------------------------------------------
# Supervisor decisions


@dataclass(frozen=True)
class Decision:
    """What a decision command got back: the workflow's Ack, or why there is none."""

    ack: Ack | None
    exit_code: int
    message: str


async def send_decision(
    settings: Settings, complaint_id: str, update: str, arg: object, event_id: str
) -> Decision:
    """Run one supervisor update on a case and classify the answer.

    Returns:
        ``exit_code`` 0 (accepted), 1 (refused by the workflow), 2 (no such running case)
        or 3 (no answer in time).
    """
    client: Client | None = None
    try:
        client = await connect_temporal(settings)
        handle = client.get_workflow_handle(complaint_workflow_id(complaint_id))
        ack = await handle.execute_update(
            update, arg, id=event_id, result_type=Ack, rpc_timeout=UPDATE_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return Decision(None, EXIT_NO_CASE,
                            f"no running case {complaint_id} ({exc.message})")
        if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            return Decision(None, EXIT_NO_ANSWER, _no_answer(event_id))
        return Decision(None, EXIT_NO_ANSWER, f"Temporal refused the call: {describe_error(exc)}")
    except RPCTimeoutOrCancelledError:
        return Decision(None, EXIT_NO_ANSWER, _no_answer(event_id))
    except WorkflowUpdateFailedError as exc:
        return Decision(None, EXIT_REFUSED, f"the case failed the update: "
                        f"{describe_error(exc.cause or exc)}")
    except (TimeoutError, OSError, RuntimeError) as exc:
        return Decision(None, EXIT_NO_ANSWER, f"Temporal not reachable: {describe_error(exc)}")
    finally:
        del client
    if ack.accepted:
        text = "accepted" + (" (already applied: same event id)" if ack.duplicate else "")
        return Decision(ack, 0, text)
    return Decision(ack, EXIT_REFUSED, f"refused: {ack.reason}"
                    + (f" — {ack.detail}" if ack.detail else ""))


def _no_answer(event_id: str) -> str:
    return (f"no answer within {UPDATE_TIMEOUT.seconds} s (is a worker polling?); retry with "
            f"--event-id {event_id} so the decision is applied once")


def _run_decision(complaint_id: str, update: str, arg: object, event_id: str,
                  as_json: bool) -> None:
    settings = Settings()
    decision = asyncio.run(send_decision(settings, complaint_id, update, arg, event_id))
    if as_json:
        print_json({"complaint_id": complaint_id, "update": update, "event_id": event_id,
                    "ack": asdict(decision.ack) if decision.ack else None,
                    "exit_code": decision.exit_code, "message": decision.message})
    else:
        style = "green" if decision.exit_code == 0 else "red"
        console().print(f"[{style}]{update}[/{style}] {complaint_id}: "
                        f"{mask_text(decision.message)}  [dim](event id {event_id})[/dim]")
    if decision.exit_code:
        raise typer.Exit(decision.exit_code)


def _event_id(given: str | None) -> str:
    return given or f"cli-{uuid.uuid4().hex}"


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


def _groups(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        group = (row["district"] or "—", row["tier"] or "—")
        counts[group] = counts.get(group, 0) + 1
    return [{"district": d, "tier": t, "count": n}
            for (d, t), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _span(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


def _short(when: datetime | None) -> str:
    return "—" if when is None else when.astimezone().strftime("%m-%d %H:%M")


def _tz_name() -> str:
    return datetime.now().astimezone().strftime("%Z %z")


def _relative(when: datetime | None, now: datetime) -> str:
    if when is None:
        return ""
    delta = when - now
    return f"in {_span(delta)}" if delta.total_seconds() >= 0 else f"{_span(delta)} ago"


def overdue(
    district: str | None = typer.Option(None, help="Only this district (e.g. 朝阳区)."),
    tier: str | None = typer.Option(None, help="Only this tier: T2H, T24H, T7D, T15D."),
    limit: int = typer.Option(200, min=0, help="List at most N cases (the summary counts all)."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of tables."),
) -> None:
    """Open cases past their deadline, from the ledger, by district and tier.

    Open: the unit still owes the answer (ACCEPTED, DISPATCHED, SIGNED, IN_PROGRESS,
    REOPENED).
    """
    settings = Settings()
    now = datetime.now(UTC)
    try:
        rows = overdue_cases(settings, district=district, tier=tier, now=now)
    except Exception as exc:
        err_console().print(f"ledger not readable: {describe_error(exc)}", markup=False,
                            style="red")
        raise typer.Exit(1) from None
    groups = _groups(rows)
    shown = rows[:limit]
    if as_json:
        print_json({
            "as_of": now.isoformat(), "total": len(rows), "by_district_tier": groups,
            # Rounded up: a case listed is past its deadline, so never "0 s overdue"
            # (listing it within a second of its deadline printed 0).
            "cases": [{**redact(r), "overdue_seconds": math.ceil((now - r["due_at"])
                                                                 .total_seconds())}
                      for r in shown],
        })
        return
    out = console()
    out.print(f"[bold]{len(rows)} open case{'s' if len(rows) != 1 else ''} past their "
              f"deadline[/bold] (as of {fmt_time(now)})")
    summary = Table(title="by district and tier", title_justify="left")
    summary.add_column("district")
    summary.add_column("tier")
    summary.add_column("cases", justify="right")
    for g in groups:
        summary.add_row(g["district"], g["tier"], str(g["count"]))
    out.print(summary)
    if not shown:
        return
    cut = f" (first {limit})" if len(rows) > limit else ""
    table = Table(title=f"longest overdue first{cut}", title_justify="left")
    for column in ("complaint", "tier", "district", "street", "lead unit", "status",
                   "level", "due", "overdue by"):
        table.add_column(column, no_wrap=True)
    for r in shown:
        table.add_row(r["complaint_id"], r["tier"] or "—", r["district"] or "—",
                      r["street"] or "—", r["lead_unit_id"] or "—", r["status"],
                      r["escalation_level"], fmt_time(r["due_at"]),
                      _span(now - r["due_at"]))
    out.print(table)


# --------------------------------------------------------------------------------------
# Commands


def _jsonable(report: CaseReport) -> dict[str, Any]:
    data = redact(asdict(report))
    assert isinstance(data, dict)
    return data


@app.command("show")
def show(
    complaint_id: str = typer.Argument(..., help="The complaint id (without complaint-)."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of tables."),
) -> None:
    """Status, units, deadlines, escalation level and full timeline of one case."""
    settings = Settings()
    report = asyncio.run(load_case(settings, complaint_id))
    if report is None:
        err_console().print(f"case {complaint_id} not found in Temporal or the ledger",
                            markup=False, style="red")
        raise typer.Exit(EXIT_NO_CASE)
    if as_json:
        print_json(_jsonable(report))
        return
    _print_report(report)


def _print_report(report: CaseReport) -> None:
    out = console()
    now = datetime.now(UTC)
    c = report.case
    summary = Table(show_header=False, title_justify="left", title=(
        f"case {report.complaint_id}  [dim](from the {report.source}"
        + (f"; workflow {report.workflow_status}" if report.workflow_status else "")
        + ")[/dim]"))
    summary.add_column("field", style="bold")
    summary.add_column("value", overflow="fold")
    flags = []
    if c.get("overdue"):
        flags.append("[red]OVERDUE[/red]")
    if c.get("extension_pending"):
        flags.append("[yellow]extension pending[/yellow]")
    rows: list[tuple[str, str]] = [
        ("status", f"{c.get('status')}" + (f"  {' '.join(flags)}" if flags else "")),
        ("outcome", str(c.get("outcome") or "—")),
        ("kind / category", f"{c.get('kind') or '—'} / {c.get('category') or '—'}"),
        ("tier", str(c.get("tier") or "—")),
        ("place", f"{c.get('district') or '—'} {c.get('street') or ''}".strip()),
        ("lead unit", f"{c.get('lead_unit_id') or '—'}"
         + (f"  (dispatch {c['dispatch_id']})" if c.get("dispatch_id") else "")),
        ("escalation level", str(c.get("escalation_level") or "—")),
    ]
    if c.get("filed_at"):
        rows.insert(0, ("filed", f"{fmt_time(c['filed_at'])}"
                        + (f" via {c['channel']}" if c.get("channel") else "")))
    if c.get("sign_by"):
        rows.append(("sign for by", f"{fmt_time(c['sign_by'])}  ({_relative(c['sign_by'], now)})"))
    if c.get("due_at"):
        rows.append(("due", f"{fmt_time(c['due_at'])}  ({_relative(c['due_at'], now)})"))
    if c.get("closed_at"):
        rows.append(("closed", fmt_time(c["closed_at"])))
    counters = ", ".join(f"{k} {c[k]}" for k in ("urges", "returns", "extensions", "reopens")
                         if c.get(k) is not None)
    if counters:
        rows.append(("counters", counters))
    for name, value in rows:
        summary.add_row(name, value)
    out.print(summary)

    if report.dispatches:
        units = Table(title="units", title_justify="left", caption_justify="left",
                      caption=f"times: month-day hour:minute, {_tz_name()}")
        for column in ("dispatch", "unit", "role", "issued", "sign by", "signed", "due",
                       "completed", "revoked", "result"):
            units.add_column(column, no_wrap=column not in ("unit", "dispatch"),
                             overflow="fold")
        for d in report.dispatches:
            unit = d["unit_id"] + (f" {d['unit_name']}" if d.get("unit_name") else "")
            units.add_row(d["dispatch_id"], unit, d["role"], _short(d["issued_at"]),
                          _short(d["sign_by"]), _short(d.get("signed_at")),
                          _short(d["due_at"]), _short(d.get("completed_at")),
                          _short(d.get("revoked_at")), str(d.get("result") or "—"))
        out.print(units)

    timeline = Table(title=f"timeline ({len(report.timeline)} steps)", title_justify="left")
    for column in ("#", "at", "event", "status", "unit", "reason / details"):
        timeline.add_column(column, no_wrap=column != "reason / details", overflow="fold")
    for e in report.timeline:
        details = e.get("reason") or ""
        attributes = e.get("attributes") or {}
        if attributes:
            extra = ", ".join(f"{k}={v}" for k, v in sorted(redact(attributes).items()))
            details = f"{details}  [{extra}]" if details else extra
        timeline.add_row(str(e["seq"]), fmt_time(e["at"]), e["event_type"], e["status"],
                         e.get("unit_id") or "", mask_text(details))
    out.print(timeline, markup=False)
    for note in report.notes:
        out.print(f"[dim]note: {note}[/dim]")


@app.command("escalate")
def escalate(
    complaint_id: str = typer.Argument(..., help="The complaint id."),
    by: str = typer.Option(..., "--by", help="Who decides (name or staff id)."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the case's history)."),
    event_id: str | None = typer.Option(
        None, help="Idempotency id; reuse it to retry the same decision safely."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of text."),
) -> None:
    """督办: raise the case one supervision level (UNIT → DISTRICT → CITY)."""
    eid = _event_id(event_id)
    _run_decision(complaint_id, UPDATE_ESCALATE,
                  Escalate(event_id=eid, decided_by=by, reason=reason), eid, as_json)


@app.command("reassign")
def reassign(
    complaint_id: str = typer.Argument(..., help="The complaint id."),
    unit_id: str = typer.Argument(..., help="The unit that takes the case over."),
    by: str = typer.Option(..., "--by", help="Who decides (name or staff id)."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the case's history)."),
    event_id: str | None = typer.Option(
        None, help="Idempotency id; reuse it to retry the same decision safely."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of text."),
) -> None:
    """改派: send the case to another lead unit (the current dispatch is revoked)."""
    eid = _event_id(event_id)
    _run_decision(complaint_id, UPDATE_REASSIGN,
                  Reassign(event_id=eid, unit_id=unit_id, decided_by=by, reason=reason),
                  eid, as_json)


@app.command("extension")
def extension(
    complaint_id: str = typer.Argument(..., help="The complaint id."),
    grant: bool = typer.Option(..., "--grant/--deny", help="Grant or deny the pending request."),
    days: int | None = typer.Option(
        None, min=1, help="Days granted (default: the days the unit asked for)."),
    by: str = typer.Option(..., "--by", help="Who decides (name or staff id)."),
    reason: str = typer.Option("", "--reason", help="Why (kept in the case's history)."),
    event_id: str | None = typer.Option(
        None, help="Idempotency id; reuse it to retry the same decision safely."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of text."),
) -> None:
    """延期: decide the unit's pending extension request."""
    eid = _event_id(event_id)
    _run_decision(complaint_id, UPDATE_DECIDE_EXTENSION,
                  ExtensionDecision(event_id=eid, granted=grant, decided_by=by,
                                    extra_days=days, reason=reason), eid, as_json)


def register(parent: typer.Typer) -> None:
    """Mount ``case`` and the top-level ``overdue`` on the ``hotline`` command."""
    parent.add_typer(app, name="case", help="One case: show, escalate, reassign, extension.")
    parent.command("overdue")(overdue)


if __name__ == "__main__":
    # ``python -m workers.cli.case case show ID`` / ``... overdue``: the same commands as
    # ``hotline case ...`` and ``hotline overdue``.
    _root = typer.Typer(no_args_is_help=True)
    register(_root)
    run_as_process(_root)
