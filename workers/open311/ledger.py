"""The Open311 service's ledger: its reads (requests, tokens) and its one table's writes.

``open311_requests`` holds the requests filed here (never the caller's contact details);
the read model joins them with the cases the worker accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

DEFAULT_PAGE_SIZE = 100
# Statuses a case may have once it is finished (WITHDRAWN, REJECTED and MERGED are each
# followed by CLOSED within the same run).
CLOSED_STATUSES = ("REJECTED", "MERGED", "ANSWERED_DIRECTLY", "WITHDRAWN", "CLOSED")

# One page in two steps: the page's ids from a narrow union of the ledger's cases and the
# requests filed here that the worker has not accepted yet (filtered, newest first: each
# branch reads its (time, id) index backwards), then the details of those rows only.
_PAGE = """
SELECT complaint_id, requested_at FROM (
    SELECT c.complaint_id, c.filed_at AS requested_at, c.status, c.category AS service_code
      FROM cases c
    UNION ALL
    SELECT o.complaint_id, o.requested_at, 'FILED', o.service_code
      FROM open311_requests o
     WHERE o.published_at IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.complaint_id = o.complaint_id)
) r
"""
_DETAILS = """
SELECT p.complaint_id, COALESCE(c.status, 'FILED') AS status, c.outcome, e.resolved,
       EXISTS (SELECT 1 FROM case_events w WHERE w.complaint_id = p.complaint_id
                  AND w.event_type = 'WITHDRAWN') AS withdrawn,
       (SELECT coalesce(a.attributes ->> 'merged_into', a.attributes ->> 'redirect_to')
          FROM case_events a WHERE a.complaint_id = p.complaint_id
           AND a.event_type IN ('MERGED', 'REDIRECTED') LIMIT 1) AS referral,
       COALESCE(c.category, o.service_code) AS service_code, c.lead_unit_id, c.tier,
       o.address, c.district, c.street, c.due_at, o.description, p.requested_at,
       COALESCE(c.updated_at, o.published_at) AS updated_at,
       COALESCE(o.latitude, c.latitude) AS latitude,
       COALESCE(o.longitude, c.longitude) AS longitude, o.media_url
  FROM page p
  LEFT JOIN cases c ON c.complaint_id = p.complaint_id
  LEFT JOIN open311_requests o ON o.complaint_id = p.complaint_id
  LEFT JOIN evaluations e ON e.complaint_id = p.complaint_id
 ORDER BY p.requested_at DESC, p.complaint_id DESC
"""


@dataclass(frozen=True)
class RequestQuery:
    """The filters of ``GET requests``; ``ids`` overrides every other one (the spec)."""

    ids: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: tuple[str, ...] = ()
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    def sql(self) -> tuple[str, list[Any]]:
        where: list[str] = []
        args: list[Any] = []
        if self.ids:
            where.append("complaint_id = ANY(%s)")
            args.append(list(self.ids))
        else:
            if self.service_codes:
                where.append("service_code = ANY(%s)")
                args.append(list(self.service_codes))
            if self.start is not None:
                where.append("requested_at >= %s")
                args.append(self.start)
            if self.end is not None:
                where.append("requested_at <= %s")
                args.append(self.end)
            if set(self.statuses) == {"open"}:
                where.append("status <> ALL(%s)")
                args.append(list(CLOSED_STATUSES))
            elif set(self.statuses) == {"closed"}:
                where.append("status = ANY(%s)")
                args.append(list(CLOSED_STATUSES))
        page = _PAGE + (" WHERE " + " AND ".join(where) if where else "")
        page += " ORDER BY requested_at DESC, complaint_id DESC LIMIT %s OFFSET %s"
        args += [self.page_size, (self.page - 1) * self.page_size]
        return f"WITH page AS ({page}) {_DETAILS}", args


class Ledger:
    """The service's reads and its one table's writes."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def requests(self, query: RequestQuery) -> list[dict[str, Any]]:
        sql, args = query.sql()
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(sql, args)
            return list(await cur.fetchall())

    async def token(self, token: str) -> tuple[str, bool] | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(
                """SELECT o.complaint_id,
                          EXISTS (SELECT 1 FROM cases c WHERE c.complaint_id = o.complaint_id)
                     FROM open311_requests o
                    WHERE o.token = %s AND o.published_at IS NOT NULL""", (token,))).fetchone()
        return (row[0], bool(row[1])) if row else None

    async def reserve(self, cid: str, client: str, req: Any,
                      requested_at: datetime) -> tuple[str, datetime, str, str]:
        """Insert the request (or find the one a retry made): token, time, code, text."""
        async with self.pool.connection() as conn:
            await conn.execute(
                """INSERT INTO open311_requests (complaint_id, token, client, service_code,
                       description, address, latitude, longitude, media_url, requested_at)
                   VALUES (%s, gen_random_uuid()::text, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (complaint_id) DO NOTHING""",
                (cid, client, req.service_code, req.description, req.address, req.latitude,
                 req.longitude, req.media_url, requested_at))
            row = await (await conn.execute(
                """SELECT token, requested_at, service_code, description
                     FROM open311_requests WHERE complaint_id = %s""", (cid,))).fetchone()
        assert row is not None
        return row[0], row[1], row[2], row[3]

    async def published(self, cid: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                """UPDATE open311_requests SET published_at = now()
                    WHERE complaint_id = %s AND published_at IS NULL""", (cid,))
