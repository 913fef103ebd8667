"""How often a client may call Open311: a sliding-window limit every replica shares.

Counts live in PostgreSQL (``open311_rate_hits``, ``open311_rate_hit()`` in
deploy/migrations/011_open311_rate_limit.sql), so N pods allow a client what one pod does.
A hit is one statement on a connection of the limiter's own small pool: autocommit (no
COMMIT round trip) and no checkout check (that would be a second round trip), kept apart
from the ledger's pool so slow ledger reads never queue the checks.

When the database cannot be asked (unreachable, or slower than :data:`BUDGET_S`), reads
are allowed and writes refused with 503: every write needs the ledger anyway, while
discovery and the service list (served from memory) stay up for the apps during an
outage. After a failure the database is left alone for :data:`RETRY_AFTER_S`, so an
outage does not make every request wait out the budget.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import structlog
from prometheus_client import Counter
from psycopg_pool import AsyncConnectionPool

from workers.runtime.settings import Settings

log = structlog.get_logger(__name__)

WINDOW_S = 60  # the limit is per minute (``open311_rate_per_minute``)
BUDGET_S = 1.0  # a check slower than this counts as the database being down
RETRY_AFTER_S = 2  # after a failed check, decide without the database this long

UNAVAILABLE = Counter(
    "hotline_open311_rate_limit_unavailable_total",
    "Open311 hits decided without the rate limit's database (unreachable or over its "
    "budget), by outcome: reads allowed, writes refused.",
    ["outcome"],
)

_HIT = "SELECT open311_rate_hit(%s, %s, %s, %s)"


@dataclass(frozen=True)
class Verdict:
    """The limiter's answer for one hit.

    Attributes:
        allowed: The request may go on (and was counted).
        retry_after_s: Whole seconds a refused client should wait (0 when allowed).
        unavailable: Refused because the database could not be asked (answer 503), not
            because the client is over its limit (answer 429).
    """

    allowed: bool
    retry_after_s: int = 0
    unavailable: bool = False


ALLOWED = Verdict(allowed=True)


class SharedRateLimiter:
    """At most ``open311_rate_per_minute`` hits per key in any sliding minute (0: no limit).

    ``clock`` gives the time of a hit in epoch seconds; None (production) takes the
    database server's clock, the one every replica shares.
    """

    def __init__(self, settings: Settings, clock: Callable[[], float] | None = None) -> None:
        self.per_minute = settings.open311_rate_per_minute
        self._dsn = settings.dsn
        self._clock = clock
        self._pool: AsyncConnectionPool | None = None
        self._down_until = 0.0  # time.monotonic() before which the database is not asked

    async def open(self) -> None:
        """Connect (the app's lifespan); nothing to do without a limit."""
        if self.per_minute <= 0:
            return
        pool = AsyncConnectionPool(self._dsn, min_size=1, max_size=2, open=False,
                                   kwargs={"autocommit": True}, name="open311-rate-limit")
        await pool.open(wait=True, timeout=30)
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def hit(self, key: str, *, write: bool) -> Verdict:
        """Count one hit on ``key`` (``ip:<address>``, ``client:<name>``) if it is allowed.

        ``write``: the request changes something (a POST); decides what happens when the
        database cannot be asked.
        """
        if self.per_minute <= 0:
            return ALLOWED
        pool = self._pool
        if pool is None or time.monotonic() < self._down_until:
            return self._unavailable(write)
        now = self._clock() if self._clock is not None else None
        try:
            async with asyncio.timeout(BUDGET_S), pool.connection() as conn:
                cur = await conn.execute(_HIT, (key, self.per_minute, WINDOW_S, now))
                row = await cur.fetchone()
        except (psycopg.Error, TimeoutError) as exc:
            if self._down_until == 0.0:  # once per outage, not per request
                log.warning("open311 rate limit database not reachable; reads allowed, "
                            "writes refused", error=str(exc) or type(exc).__name__)
            self._down_until = time.monotonic() + RETRY_AFTER_S
            return self._unavailable(write)
        if self._down_until:
            log.info("open311 rate limit database reachable again")
            self._down_until = 0.0
        wait = row[0] if row else None
        if wait is None:
            return ALLOWED
        # Strictly past the moment the estimate drops under the limit, in whole seconds.
        return Verdict(allowed=False, retry_after_s=math.floor(wait) + 1)

    def _unavailable(self, write: bool) -> Verdict:
        UNAVAILABLE.labels("refused" if write else "allowed").inc()
        if write:
            return Verdict(allowed=False, retry_after_s=RETRY_AFTER_S, unavailable=True)
        return ALLOWED
