"""The reader behind ``hotline routing corrections``: the ledger's corrections (desk
decisions, returns, supervisor reassignments) with each case's request text from Temporal,
mapped to labelled lines by :mod:`activities.dispatch.corrections`.

Phone numbers in the text are masked (:func:`workers.cli.output.mask_text`): an exported
set is a file people pass around and may commit, and a number teaches the model nothing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from typing import Any

from activities.dispatch.corrections import (
    CITY_TZ,
    SUPERVISOR_RULE,
    Export,
    LedgerEvent,
    Request,
    corrections,
)
from activities.dispatch.registry import Registry
from workers.cli.output import mask_text
from workers.runtime.filings import read_filing
from workers.runtime.settings import Settings
from workers.runtime.temporal import connect_temporal

# Histories are read a few at a time: enough to export thousands in seconds, few enough
# not to crowd the frontend that serves the workers.
PARALLEL_READS = 8

_EVENTS = """
SELECT e.event_id, e.complaint_id, e.seq, e.at, e.event_type, e.unit_id, e.reason,
       e.attributes, c.kind, c.category, c.tier, c.district, c.street, c.filed_at
  FROM case_events e
  JOIN cases c ON c.complaint_id = e.complaint_id
 WHERE (e.event_type IN ('REVIEW_DECIDED', 'RETURNED')
        OR (e.event_type = 'REDISPATCHED' AND e.attributes->>'rule' = %(rule)s))
   AND e.at >= %(since)s
 ORDER BY e.at, e.complaint_id, e.seq"""


async def _events(settings: Settings, since: datetime) -> list[LedgerEvent]:
    import psycopg
    from psycopg.rows import dict_row

    async with await psycopg.AsyncConnection.connect(
            settings.dsn, connect_timeout=5, row_factory=dict_row) as conn:
        rows: list[dict[str, Any]] = await (await conn.execute(
            _EVENTS, {"rule": SUPERVISOR_RULE, "since": since})).fetchall()
    return [LedgerEvent(**{**row, "attributes": {k: str(v) for k, v in
                                                 (row["attributes"] or {}).items()}})
            for row in rows]


async def _requests(settings: Settings, complaint_ids: list[str]) -> dict[str, Request | None]:
    if not complaint_ids:
        return {}
    client = await connect_temporal(settings)
    gate = asyncio.Semaphore(PARALLEL_READS)

    async def one(cid: str) -> Request | None:
        async with gate:
            filing = await read_filing(client, cid)
        if filing is None:
            return None
        return Request(content=mask_text(filing.content), district=filing.district,
                       street=filing.street,
                       address=None if filing.address is None else mask_text(filing.address),
                       kind=filing.kind, category_hint=filing.category_hint,
                       urgency_hint=filing.urgency_hint)

    found = await asyncio.gather(*(one(cid) for cid in complaint_ids))
    return dict(zip(complaint_ids, found, strict=True))


async def export_corrections(settings: Settings, registry: Registry,
                             since: date | None = None) -> Export:
    """The corrections made on or after ``since`` (the city's day; all when ``None``);
    ``registry`` spells the ledger's street names as unit ids.

    PostgreSQL or Temporal unreachable: their client's error, for the command line's
    HotlineGroup to tell in one line (exit 3).
    """
    start = (datetime.combine(since, time.min, CITY_TZ) if since is not None
             else datetime(1970, 1, 1, tzinfo=UTC))
    events = await _events(settings, start)
    requests = await _requests(settings, sorted({e.complaint_id for e in events}))
    return corrections(events, requests, street_id=lambda d, s: registry.street(d, s))
