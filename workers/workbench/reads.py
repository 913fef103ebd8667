"""What the workbench shows, read from the ledger (and a case's filing from Temporal).

Every read that a unit makes is scoped by its unit id in SQL: a case is a unit's when the
unit holds (or held) a dispatch of it. Nothing here writes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client

from workers.runtime.filings import read_filing
from workflows.model import Filing

# Statuses in which a unit still owes an answer (the inbox; the supervisor's overdue list).
OPEN_STATUSES = ("ACCEPTED", "DISPATCHED", "SIGNED", "IN_PROGRESS", "REOPENED")
STAGES = ("normal", "warned", "overdue", "supervised")
FILING_TIMEOUT_S = 3.0

_INBOX = """
SELECT d.dispatch_id, d.complaint_id, d.role, d.issued_at, d.sign_by, d.due_at, d.signed_at,
       c.status, c.tier, c.category, c.district, c.street, c.overdue, c.escalation_level
  FROM dispatches d JOIN cases c ON c.complaint_id = d.complaint_id
 WHERE d.unit_id = %s AND d.revoked_at IS NULL AND d.completed_at IS NULL
   AND c.status = ANY(%s)
 ORDER BY d.due_at, d.complaint_id
 LIMIT %s"""

_REVIEW = """
SELECT c.complaint_id, c.filed_at, c.tier, c.category, c.district, c.street,
       e.reason, e.candidates
  FROM cases c
  JOIN case_events e ON e.complaint_id = c.complaint_id AND e.event_type = 'REVIEW_REQUESTED'
 WHERE c.status = 'AWAITING_REVIEW'
 ORDER BY (c.tier = 'T2H') IS TRUE DESC, c.filed_at
 LIMIT %s"""

_OVERDUE = """
SELECT c.complaint_id, c.status, c.tier, c.category, c.district, c.street, c.lead_unit_id,
       c.due_at, c.overdue, c.escalation_level
  FROM cases c
 WHERE c.status = ANY(%s) AND (c.due_at < now() OR c.overdue OR c.escalation_level <> 'UNIT')
 ORDER BY c.due_at NULLS LAST
 LIMIT %s"""


def ladder_stage(now: datetime, issued_at: datetime, due_at: datetime, overdue: bool,
                 level: str) -> str:
    """The inbox colour: supervised (escalated), overdue, warned (half the time used)."""
    if level != "UNIT":
        return "supervised"
    if overdue or now >= due_at:
        return "overdue"
    span = (due_at - issued_at).total_seconds()
    if span <= 0 or (now - issued_at).total_seconds() / span >= 0.5:
        return "warned"
    return "normal"


@dataclass(frozen=True)
class CaseAccess:
    """A unit's hold on a case: its dispatch (``None`` when it holds no open one)."""

    dispatch_id: str | None
    role: str | None


class LedgerReads:
    """The workbench's queries."""

    def __init__(self, pool: AsyncConnectionPool, temporal: Client | None) -> None:
        self.pool = pool
        self.temporal = temporal

    async def _all(self, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(sql, args)
            return list(await cur.fetchall())

    async def inbox(self, unit_id: str, limit: int = 200) -> list[dict[str, Any]]:
        """The unit's open dispatches, what is due first, each with its ladder stage."""
        now = datetime.now(UTC)
        rows = await self._all(_INBOX, (unit_id, list(OPEN_STATUSES), limit))
        for row in rows:
            row["stage"] = ladder_stage(now, row["issued_at"], row["due_at"], row["overdue"],
                                        row["escalation_level"])
        return rows

    async def unit_access(self, unit_id: str, complaint_id: str) -> CaseAccess | None:
        """``None`` when the unit never held the case (the page is then a 404)."""
        rows = await self._all(
            """SELECT dispatch_id, role, revoked_at IS NULL AND completed_at IS NULL AS open
                 FROM dispatches WHERE complaint_id = %s AND unit_id = %s
                ORDER BY issued_at DESC""", (complaint_id, unit_id))
        if not rows:
            return None
        open_rows = [r for r in rows if r["open"]]
        return CaseAccess(open_rows[0]["dispatch_id"], open_rows[0]["role"]) if open_rows \
            else CaseAccess(None, None)

    async def case(self, complaint_id: str) -> dict[str, Any] | None:
        rows = await self._all(
            """SELECT complaint_id, status, outcome, channel, kind, category, tier, district,
                      street, lead_unit_id, filed_at, due_at, closed_at, overdue,
                      escalation_level
                 FROM cases WHERE complaint_id = %s""", (complaint_id,))
        return rows[0] if rows else None

    async def dispatches(self, complaint_id: str) -> list[dict[str, Any]]:
        return await self._all(
            """SELECT dispatch_id, unit_id, role, issued_at, sign_by, due_at, signed_at,
                      completed_at, revoked_at, result
                 FROM dispatches WHERE complaint_id = %s ORDER BY issued_at""", (complaint_id,))

    async def timeline(self, complaint_id: str) -> list[dict[str, Any]]:
        return await self._all(
            """SELECT event_id, seq, at, event_type, status, unit_id, dispatch_id, reason,
                      attributes
                 FROM case_events WHERE complaint_id = %s ORDER BY seq""", (complaint_id,))

    async def last_seq(self, complaint_id: str) -> int:
        rows = await self._all(
            "SELECT coalesce(max(seq), 0) AS seq FROM case_events WHERE complaint_id = %s",
            (complaint_id,))
        return int(rows[0]["seq"])

    async def events_after(self, complaint_id: str, seq: int) -> list[dict[str, Any]]:
        return await self._all(
            """SELECT seq, event_type, status, unit_id, dispatch_id, reason, attributes
                 FROM case_events WHERE complaint_id = %s AND seq > %s ORDER BY seq""",
            (complaint_id, seq))

    async def review_queue(self, limit: int = 100) -> list[dict[str, Any]]:
        """Cases at the dispatch desk, oldest first, with candidates and the doubt."""
        rows = await self._all(_REVIEW, (limit,))
        for row in rows:
            row["candidates"] = row["candidates"] or []
        return rows

    async def overdue(self, limit: int = 500) -> list[dict[str, Any]]:
        """Open cases past their deadline or escalated, each with its ladder stage."""
        rows = await self._all(_OVERDUE, (list(OPEN_STATUSES), limit))
        for row in rows:
            row["stage"] = "supervised" if row["escalation_level"] != "UNIT" else "overdue"
        return rows

    async def hotspots(self, limit: int = 20) -> list[dict[str, Any]]:
        return await self._all(
            """SELECT warning_id, district, street, category, count, baseline, detected_at,
                      complaint_id, status
                 FROM hotspot_warnings ORDER BY detected_at DESC LIMIT %s""", (limit,))

    async def filing(self, complaint_id: str) -> Filing | None:
        """The case's filing (the request's text and attachments) from its workflow input.

        ``None`` when Temporal is not configured, slow, or no longer has the case.
        """
        if self.temporal is None:
            return None
        try:
            return await asyncio.wait_for(read_filing(self.temporal, complaint_id),
                                          FILING_TIMEOUT_S)
        except Exception:  # RPCError, TimeoutError, a payload that does not decode
            return None
