"""The ledger writer: one lifecycle event's rows into PostgreSQL, idempotently.

Used by the ``record_step`` activity as each step happens, and by anything that rebuilds
the ledger from ``hotline.lifecycle``: both apply the same decoded ``LifecycleEvent``, so
the tables come out the same whichever wrote them, in whatever order and however often.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from workflows.model import CaseRow, DispatchRow, LedgerRows

_CASE_COLUMNS = ("complaint_id", "version", "status", "filed_at", "channel", "kind",
                 "category", "tier", "district", "street", "lead_unit_id", "due_at",
                 "overdue", "escalation_level", "closed_at", "outcome", "caller_hash",
                 "latitude", "longitude")
_DISPATCH_COLUMNS = ("dispatch_id", "complaint_id", "unit_id", "role", "issued_at",
                     "sign_by", "due_at", "signed_at", "completed_at", "revoked_at", "result")


async def apply_lifecycle(conn: AsyncConnection[Any], event: Mapping[str, Any]) -> None:
    """Write a ``LifecycleEvent`` (as the codec decodes it) and the rows it carries.

    Every statement is order-free: events insert once by ``event_id``, case and dispatch
    rows are guarded by the step's version, timestamps only go from NULL to a value, and
    the evaluation is written once.
    """
    await conn.execute(
        """INSERT INTO case_events (event_id, complaint_id, seq, at, event_type, status,
               unit_id, dispatch_id, reason, attributes, candidates)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT DO NOTHING""",
        (event["event_id"], event["complaint_id"], event["seq"], event["at"],
         event["event_type"], event["status"], event.get("unit_id"), event.get("dispatch_id"),
         event.get("reason"), json.dumps(dict(event.get("attributes") or {}),
                                         ensure_ascii=False),
         None if event.get("candidates") is None
         else json.dumps(list(event["candidates"]), ensure_ascii=False)),
    )
    case = event.get("case_row")
    if case:
        await _upsert_case(conn, case)
    for d in event.get("dispatch_rows") or []:
        await _upsert_dispatch(conn, d, int(event["seq"]))
    evaluation = event.get("evaluation_row")
    if evaluation:
        await _insert_evaluation(conn, evaluation)


async def _upsert_case(conn: AsyncConnection[Any], row: Mapping[str, Any]) -> None:
    # The version guard keeps a late retry of an older step from overwriting newer state.
    await conn.execute(
        """INSERT INTO cases AS c (complaint_id, version, status, outcome, channel, kind,
               category, tier, district, street, lead_unit_id, filed_at, due_at, closed_at,
               overdue, escalation_level, caller_hash, latitude, longitude, updated_at)
           VALUES (%(complaint_id)s, %(version)s, %(status)s, %(outcome)s, %(channel)s,
               %(kind)s, %(category)s, %(tier)s, %(district)s, %(street)s, %(lead_unit_id)s,
               %(filed_at)s, %(due_at)s, %(closed_at)s, %(overdue)s, %(escalation_level)s,
               %(caller_hash)s, %(latitude)s, %(longitude)s, now())
           ON CONFLICT (complaint_id) DO UPDATE SET
               version = EXCLUDED.version, status = EXCLUDED.status,
               outcome = EXCLUDED.outcome, kind = EXCLUDED.kind,
               category = EXCLUDED.category, tier = EXCLUDED.tier,
               district = EXCLUDED.district, street = EXCLUDED.street,
               lead_unit_id = EXCLUDED.lead_unit_id, due_at = EXCLUDED.due_at,
               closed_at = EXCLUDED.closed_at, overdue = EXCLUDED.overdue,
               escalation_level = EXCLUDED.escalation_level,
               caller_hash = EXCLUDED.caller_hash, latitude = EXCLUDED.latitude,
               longitude = EXCLUDED.longitude, updated_at = now()
           WHERE c.version < EXCLUDED.version""",
        {"latitude": None, "longitude": None, **row},  # rows written before 007 lack them
    )


async def _upsert_dispatch(conn: AsyncConnection[Any], row: Mapping[str, Any],
                           version: int) -> None:
    await conn.execute(
        """INSERT INTO dispatches AS d (dispatch_id, complaint_id, unit_id, role, issued_at,
               sign_by, due_at, signed_at, completed_at, revoked_at, result, version)
           VALUES (%(dispatch_id)s, %(complaint_id)s, %(unit_id)s, %(role)s, %(issued_at)s,
               %(sign_by)s, %(due_at)s, %(signed_at)s, %(completed_at)s, %(revoked_at)s,
               %(result)s, %(version)s)
           ON CONFLICT (dispatch_id) DO UPDATE SET
               sign_by = CASE WHEN d.version < EXCLUDED.version
                              THEN EXCLUDED.sign_by ELSE d.sign_by END,
               due_at = CASE WHEN d.version < EXCLUDED.version
                             THEN EXCLUDED.due_at ELSE d.due_at END,
               version = GREATEST(d.version, EXCLUDED.version),
               signed_at = COALESCE(d.signed_at, EXCLUDED.signed_at),
               completed_at = COALESCE(d.completed_at, EXCLUDED.completed_at),
               revoked_at = COALESCE(d.revoked_at, EXCLUDED.revoked_at),
               result = COALESCE(d.result, EXCLUDED.result)""",
        {**row, "version": version},
    )


async def _insert_evaluation(conn: AsyncConnection[Any], row: Mapping[str, Any]) -> None:
    await conn.execute(
        """INSERT INTO evaluations (complaint_id, lead_unit_id, counted, responded, resolved,
               satisfied, satisfaction, overdue, returns, escalations, reopens, score,
               evaluated_at)
           VALUES (%(complaint_id)s, %(lead_unit_id)s, %(counted)s, %(responded)s,
               %(resolved)s, %(satisfied)s, %(satisfaction)s, %(overdue)s, %(returns)s,
               %(escalations)s, %(reopens)s, %(score)s, %(evaluated_at)s)
           ON CONFLICT (complaint_id) DO NOTHING""",
        dict(row),
    )


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in row.items()}


async def read_rows(conn: AsyncConnection[Any], complaint_id: str) -> LedgerRows | None:
    """The case's row and its dispatches' rows as the ledger holds them, or None when it
    has no row for the case. What a delta step (``StepRecord.base``) left out."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {', '.join(_CASE_COLUMNS)} FROM cases "
                          "WHERE complaint_id = %s", (complaint_id,))
        case = await cur.fetchone()
        if case is None:
            return None
        await cur.execute(f"SELECT {', '.join(_DISPATCH_COLUMNS)} FROM dispatches "
                          "WHERE complaint_id = %s", (complaint_id,))
        dispatches = [DispatchRow(**_utc(d)) for d in await cur.fetchall()]
    row = CaseRow(**_utc(case))
    return LedgerRows(version=row.version, case=row,
                      dispatches={d.dispatch_id: d for d in dispatches})
