"""The governance activities: the computations of this package run as Temporal activities,
with their dependencies (pool, publisher, Temporal client) injected."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.dispatch.config import HotlineConfig
from activities.governance.config import GovernanceConfig
from activities.governance.hotspots import (
    HOTSPOT_PREFIX,
    detect_hotspots,
    governance_filing,
    hotspot_record,
    load_hotspots,
    record_hotspots,
)
from activities.governance.months import month_bounds, previous_month
from activities.governance.rankings import (
    RegistryDirectory,
    compute_rankings,
    ranking_record,
    store_rankings,
)
from activities.governance.topics import store_topic_candidates, topic_candidates
from workflows.governance_model import (
    GovernanceCaseResult,
    HotspotRef,
    MonthRequest,
    RankingSummary,
    ScanRequest,
    TopicVolumeRequest,
)
from workflows.ids import complaint_workflow_id
from workflows.model import WORKFLOW_VERSION

log = structlog.get_logger(__name__)


class Publisher(Protocol):
    def publish(self, messages: Sequence[tuple[str, str, str, dict[str, Any]]]) -> None: ...


class GovernanceActivities:
    """The governance activities, with their dependencies injected."""

    def __init__(self, config: HotlineConfig, governance: GovernanceConfig,
                 pool: AsyncConnectionPool, publisher: Publisher, *, topic_governance: str,
                 client: Client | None = None, task_queue: str = "hotline-cases",
                 workflow_version: int = WORKFLOW_VERSION) -> None:
        self._config = config
        self._gov = governance
        self._pool = pool
        self._publisher = publisher
        self._topic = topic_governance
        self._client = client
        self._task_queue = task_queue
        self._workflow_version = workflow_version

    def all(self) -> list[Any]:
        """Every activity of this class, for ``Worker(activities=...)``."""
        return [self.compute_monthly_rankings, self.compute_monthly_topics,
                self.scan_hotspots, self.open_governance_case, self.topic_volume]

    @activity.defn(name="topic_volume")
    async def topic_volume(self, request: TopicVolumeRequest) -> int:
        """Complaints of a category filed in [start, end) (a plan's half-monthly review)."""
        async with self._pool.connection() as conn:
            row = await (await conn.execute(
                """SELECT count(*) FROM cases WHERE category = %s AND filed_at >= %s
                      AND filed_at < %s AND complaint_id NOT LIKE %s""",
                (request.category, request.start, request.end,
                 HOTSPOT_PREFIX + "%"))).fetchone()
        return int(row[0]) if row else 0

    def _month(self, request: MonthRequest) -> str:
        if request.month:
            month_bounds(request.month, self._gov.tz)  # validates YYYY-MM
            return request.month
        return previous_month(request.at or datetime.now(UTC), self._gov.tz)

    @activity.defn(name="compute_monthly_rankings")
    async def compute_monthly_rankings(self, request: MonthRequest) -> RankingSummary:
        """Rank the month's units, store and publish ``MonthlyRanking`` per group."""
        request = MonthRequest(self._month(request))
        weights = self._config.rules.weights.model_dump()
        async with self._pool.connection() as conn:
            rankings = await compute_rankings(conn, request.month, self._gov.tz, weights,
                                              RegistryDirectory(self._config))
            await store_rankings(conn, request.month, rankings)
        at = datetime.now(UTC)
        messages = [(self._topic, f"ranking:{group}", "MonthlyRanking",
                     ranking_record(request.month, group, rows, at))
                    for group, rows in rankings.items()]
        if messages:
            await asyncio.to_thread(self._publisher.publish, messages)
        log.info("monthly rankings", month=request.month,
                 groups={g: len(r) for g, r in rankings.items()})
        return RankingSummary(request.month, {g: len(r) for g, r in rankings.items()},
                              len(messages))

    @activity.defn(name="compute_monthly_topics")
    async def compute_monthly_topics(self, request: MonthRequest) -> list[str]:
        """Store the month's 每月一题 candidates; returns their categories in rank order."""
        request = MonthRequest(self._month(request))
        async with self._pool.connection() as conn:
            rows = await topic_candidates(conn, request.month, self._gov)
            await store_topic_candidates(conn, request.month, rows)
        return [t.category for t in rows]

    @activity.defn(name="scan_hotspots")
    async def scan_hotspots(self, request: ScanRequest) -> list[HotspotRef]:
        """Detect, store and publish the hotspot warnings as of ``request.now``.

        Repeats are safe: the warning id comes from the scan hour, so a retry stores
        nothing new and republishes under the same event ids.
        """
        async with self._pool.connection() as conn:
            found = await detect_hotspots(conn, request.now, self._gov.hotspots)
            await record_hotspots(conn, found, request.now)
            # A retry after the insert finds the pair in cooldown: republish what is stored.
            rows = await (await conn.execute(
                """SELECT warning_id FROM hotspot_warnings WHERE detected_at = %s""",
                (request.now,))).fetchall()
            ids = {r[0] for r in rows}
            stored = await load_hotspots(conn, sorted(ids))
        if stored:
            await asyncio.to_thread(self._publisher.publish, [
                (self._topic, h.street, "HotspotWarning", hotspot_record(h, request.now))
                for h in stored])
        for h in stored:
            log.info("hotspot warning", warning_id=h.warning_id, street=h.street,
                     category=h.category, count=h.count, baseline=h.baseline)
        return [HotspotRef(h.warning_id, h.street, h.category, h.count) for h in stored]

    @activity.defn(name="open_governance_case")
    async def open_governance_case(self, ref: HotspotRef) -> GovernanceCaseResult:
        """Start the warning's governance task as a ``ComplaintWorkflow`` (REJECT_DUPLICATE)."""
        if self._client is None:
            raise RuntimeError("open_governance_case needs a Temporal client")
        async with self._pool.connection() as conn:
            (h,) = await load_hotspots(conn, [ref.warning_id])
        cat = self._config.lexicon.category(h.category)
        filing = governance_filing(h, cat.name if cat else h.category, h.window_end,
                                   workflow_version=self._workflow_version)
        started = True
        try:
            await self._client.start_workflow(
                "ComplaintWorkflow", filing, id=complaint_workflow_id(filing.complaint_id),
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        except WorkflowAlreadyStartedError:
            started = False  # a retry: the case exists, which is the effect we want
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE hotspot_warnings SET complaint_id = %s WHERE warning_id = %s",
                (filing.complaint_id, h.warning_id))
        return GovernanceCaseResult(h.warning_id, filing.complaint_id, started)
