"""Gauges read from outside the event flow: the ledger's open cases, and consumer lag.

- :class:`LedgerGauges` runs in the worker process: every ``ledger_metrics_interval``
  seconds it counts open cases by status and tier, and overdue cases still in handling by
  tier and district, in the ledger (PostgreSQL). Every worker replica exports the same
  numbers, so dashboards and alerts aggregate them with ``max``, never ``sum``, across
  instances (the recording rules in ``deploy/prometheus/alerts.yml`` do).
- :class:`ConsumerLagReporter` runs in the bridges: after each poll-and-process round,
  the end offset minus the consumer's position for every assigned partition.

Catalogue (name — type — labels — meaning):

- ``hotline_open_cases`` — gauge — status, tier — cases not closed yet, by state.
- ``hotline_open_overdue_cases`` — gauge — tier, district — cases in handling
  (DISPATCHED, SIGNED, IN_PROGRESS) whose deadline has passed.
- ``hotline_ledger_metrics_refresh_failures_total`` — counter — — refreshes of the two
  above that failed (they keep their last values meanwhile).
- ``hotline_bridge_consumer_lag_messages`` — gauge — topic, partition — messages on an
  assigned partition not yet consumed (end offset − position); ``topic`` is the contract
  topic name, without a deployment's prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog
from prometheus_client import Counter, Gauge
from psycopg_pool import AsyncConnectionPool

from workflows.model import TIER_ORDER, Status

log = structlog.get_logger(__name__)

# Label value for a missing tier or district (as in activities/metrics.py, which this module
# does not import: the bridges use it and must not export the worker's case metrics).
NONE = "none"
# Every status but CLOSED: the states a case passes through on its way (ANSWERED_DIRECTLY,
# REJECTED, MERGED and WITHDRAWN are closed moments later; one that stays is stuck).
OPEN_STATUSES = tuple(s.value for s in Status if s is not Status.CLOSED)
# States in which a unit holds the case and its deadline runs.
HANDLING_STATUSES = (Status.DISPATCHED.value, Status.SIGNED.value, Status.IN_PROGRESS.value)

OPEN_CASES = Gauge(
    "hotline_open_cases",
    "Cases not closed yet, by status and tier (from the ledger; every worker exports it).",
    ["status", "tier"],
)
OPEN_OVERDUE_CASES = Gauge(
    "hotline_open_overdue_cases",
    "Cases in handling (DISPATCHED, SIGNED, IN_PROGRESS) past their deadline, by tier and "
    "district (from the ledger; every worker exports it).",
    ["tier", "district"],
)
# No "last refreshed" timestamp gauge: the bridges import this module for the lag reporter
# and would export it as 0 forever. A refresh cannot hang (statement timeout) and its loop
# cannot die but by cancellation, so failures are what there is to watch.
LEDGER_REFRESH_FAILURES = Counter(
    "hotline_ledger_metrics_refresh_failures_total",
    "Refreshes of the ledger gauges that failed (database away or too slow).",
)
CONSUMER_LAG = Gauge(
    "hotline_bridge_consumer_lag_messages",
    "Messages on an assigned partition not consumed yet (end offset minus position).",
    ["topic", "partition"],
)

# Both use the status index; the open set is small next to the closed history.
_OPEN_SQL = """
    SELECT status, COALESCE(tier, %(none)s), count(*)
    FROM cases WHERE status = ANY(%(open)s)
    GROUP BY 1, 2
"""
_OVERDUE_SQL = """
    SELECT COALESCE(tier, %(none)s), COALESCE(district, %(none)s), count(*)
    FROM cases WHERE status = ANY(%(handling)s) AND due_at < now()
    GROUP BY 1, 2
"""


class LedgerGauges:
    """Refreshes ``hotline_open_cases`` and ``hotline_open_overdue_cases`` from the ledger.

    A series that disappears from the query result is set to 0, not left at its last
    value, so a district whose overdue cases were all completed reads 0.
    """

    def __init__(self, pool: AsyncConnectionPool, *, statement_timeout_ms: int = 10_000) -> None:
        self._pool = pool
        self._timeout_ms = statement_timeout_ms
        self._task: asyncio.Task[None] | None = None
        # Every combination ever exported, so vanished ones can be zeroed.
        self._open_seen: set[tuple[str, str]] = {
            (s, t) for s in OPEN_STATUSES for t in TIER_ORDER}
        self._overdue_seen: set[tuple[str, str]] = set()

    async def refresh(self) -> None:
        """Query the ledger once and set the gauges.

        Raises:
            psycopg.Error: The database is away or the query timed out; the gauges keep
                their previous values.
        """
        params: dict[str, Any] = {"none": NONE, "open": list(OPEN_STATUSES),
                                  "handling": list(HANDLING_STATUSES)}
        async with self._pool.connection() as conn, conn.transaction():
            # A slow ledger must not pile refreshes up behind one another.
            await conn.execute("SELECT set_config('statement_timeout', %s, true)",
                               (str(int(self._timeout_ms)),))
            cur = await conn.execute(_OPEN_SQL, params)
            open_rows = await cur.fetchall()
            cur = await conn.execute(_OVERDUE_SQL, params)
            overdue_rows = await cur.fetchall()
        open_counts = {(str(s), str(t)): int(n) for s, t, n in open_rows}
        overdue_counts = {(str(t), str(d)): int(n) for t, d, n in overdue_rows}
        self._open_seen |= open_counts.keys()
        self._overdue_seen |= overdue_counts.keys()
        for key in self._open_seen:
            OPEN_CASES.labels(*key).set(open_counts.get(key, 0))
        for key in self._overdue_seen:
            OPEN_OVERDUE_CASES.labels(*key).set(overdue_counts.get(key, 0))

    async def run(self, interval: float) -> None:
        """Refresh every ``interval`` seconds until cancelled; failures are logged, counted."""
        while True:
            try:
                await self.refresh()
            except Exception as exc:
                LEDGER_REFRESH_FAILURES.inc()
                log.warning("ledger metrics refresh failed",
                            error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(interval)

    def start(self, interval: float) -> LedgerGauges:
        """Start :meth:`run` as a background task; ``interval`` 0 (or less) starts nothing."""
        if interval > 0 and self._task is None:
            self._task = asyncio.create_task(self.run(interval), name="ledger-gauges")
        return self

    async def stop(self) -> None:
        """Cancel the background task, if any, and wait for it (before the pool closes)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


_RETRY_AFTER_FAILURE_S = 10.0


class ConsumerLagReporter:
    """Sets ``hotline_bridge_consumer_lag_messages`` for one bridge's consumer.

    Call :meth:`report` on the consumer's own thread (kafka-python's consumer is not
    thread-safe) after each poll-and-process round: the position then is the next message
    to apply, including a seek back to a message that could not be applied yet. At most
    one ListOffsets request per ``min_interval`` seconds. Partitions this consumer lost in
    a rebalance are removed, so the member that now owns them is the only one reporting.
    """

    def __init__(self, topic: str, *, min_interval: float = 1.0,
                 timeout_ms: int = 2_000) -> None:
        self.topic = topic
        self._min_interval = min_interval
        self._timeout_ms = timeout_ms
        self._next_at = 0.0
        self._reported: set[int] = set()

    def report(self, consumer: Any) -> None:
        """Read end offsets and positions of the assigned partitions; never raises."""
        now = time.monotonic()
        if now < self._next_at:
            return
        self._next_at = now + self._min_interval
        try:
            assigned = list(consumer.assignment())
            ends = consumer.end_offsets(assigned, timeout_ms=self._timeout_ms) if assigned else {}
            current: set[int] = set()
            for tp in assigned:
                end = ends.get(tp)
                position = consumer.position(tp, timeout_ms=self._timeout_ms)
                if end is None or position is None:
                    continue
                CONSUMER_LAG.labels(self.topic, str(tp.partition)).set(max(end - position, 0))
                current.add(tp.partition)
        except Exception as exc:  # broker away, partition revoked meanwhile
            # Each try may block the consumer thread up to the timeout: wait longer.
            self._next_at = time.monotonic() + max(self._min_interval, _RETRY_AFTER_FAILURE_S)
            log.debug("consumer lag not read", topic=self.topic,
                      error=f"{type(exc).__name__}: {exc}")
            return
        for partition in self._reported - current:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self.topic, str(partition))
        self._reported = current
