"""Schedule-driven governance workflows (未诉先办): monthly evaluation and hotspot scans.

Started by Temporal Schedules (``hotline schedules install``); each is short, deterministic
and calls activities by name, so this module imports no activity code: the requests and
results it exchanges with them are in :mod:`workflows.governance_model`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.governance_model import (
        GovernanceCaseResult,
        HotspotRef,
        MonthRequest,
        RankingSummary,
        ScanRequest,
        TopicVolumeRequest,
    )

# Bounded retries: a bug fails the run visibly instead of retrying forever; the next
# scheduled run starts fresh.
_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1),
                     maximum_attempts=8)
_SQL_TIMEOUT = timedelta(minutes=5)
_START_TIMEOUT = timedelta(seconds=30)


@dataclass(frozen=True)
class MonthlyEvaluationInput:
    """``month`` ``YYYY-MM``; empty: the month before the run (what the Schedule does)."""

    month: str = ""


@dataclass(frozen=True)
class MonthlyEvaluationResult:
    month: str
    groups: dict[str, int] = field(default_factory=dict)
    published: int = 0
    topics: list[str] = field(default_factory=list)


@workflow.defn(name="MonthlyEvaluationWorkflow")
class MonthlyEvaluationWorkflow:
    """考评排名 and 每月一题 candidates for one month."""

    @workflow.run
    async def run(self, params: MonthlyEvaluationInput) -> MonthlyEvaluationResult:
        request = MonthRequest(month=params.month, at=workflow.now())
        summary: RankingSummary = await workflow.execute_activity(
            "compute_monthly_rankings", request, result_type=RankingSummary,
            start_to_close_timeout=_SQL_TIMEOUT, retry_policy=_RETRY)
        topics: list[str] = await workflow.execute_activity(
            "compute_monthly_topics", MonthRequest(month=summary.month),
            result_type=list[str], start_to_close_timeout=_SQL_TIMEOUT, retry_policy=_RETRY)
        return MonthlyEvaluationResult(summary.month, summary.groups, summary.published,
                                       topics)


@dataclass(frozen=True)
class HotspotScanInput:
    """``now``: the scan's reference time; None: the run's start (what the Schedule does)."""

    now: datetime | None = None
    open_cases: bool = True


@dataclass(frozen=True)
class HotspotScanResult:
    warnings: list[HotspotRef] = field(default_factory=list)
    cases: list[GovernanceCaseResult] = field(default_factory=list)


@workflow.defn(name="HotspotScanWorkflow")
class HotspotScanWorkflow:
    """One hotspot scan; each warning becomes a governance case dispatched like a complaint."""

    @workflow.run
    async def run(self, params: HotspotScanInput) -> HotspotScanResult:
        now = params.now or workflow.now()
        refs: list[HotspotRef] = await workflow.execute_activity(
            "scan_hotspots", ScanRequest(now=now), result_type=list[HotspotRef],
            start_to_close_timeout=_SQL_TIMEOUT, retry_policy=_RETRY)
        cases: list[GovernanceCaseResult] = []
        if params.open_cases:
            for ref in refs:
                cases.append(await workflow.execute_activity(
                    "open_governance_case", ref, result_type=GovernanceCaseResult,
                    start_to_close_timeout=_START_TIMEOUT, retry_policy=_RETRY))
        return HotspotScanResult(refs, cases)


# --- governance plans (一方案三清单) ------------------------------------------------------

UPDATE_REPORT_TASK = "report_task"


# Half a month between reviews of the topic's volume (DESIGN.md: "every half month").
HALF_MONTH = timedelta(days=15)


@dataclass(frozen=True)
class PlanTask:
    """One line of the task list: what, who owns it, by when (``YYYY-MM``)."""

    task_id: str
    owner_unit_id: str
    description: str
    due_month: str


@dataclass(frozen=True)
class PlanInput:
    """A governance plan for one chosen monthly topic: a plan and three lists."""

    plan_id: str
    category: str
    title: str
    tasks: list[PlanTask] = field(default_factory=list)
    responsibilities: list[str] = field(default_factory=list)  # 责任清单
    policies: list[str] = field(default_factory=list)          # 政策清单
    review_seconds: float = HALF_MONTH.total_seconds()
    max_reviews: int = 12  # the plan closes with a report after this many at the latest
    # Carried across continue-as-new.
    done: dict[str, str] = field(default_factory=dict)         # task_id → completion note
    trend: list[tuple[str, int]] = field(default_factory=list)
    seen_events: list[str] = field(default_factory=list)
    started_at: datetime | None = None


@dataclass(frozen=True)
class TaskReport:
    """A unit reports a task done (``PlanTaskReported`` on ``hotline.unit-replies``)."""

    event_id: str
    task_id: str
    unit_id: str
    note: str = ""
    at: datetime | None = None


@dataclass(frozen=True)
class PlanStatus:
    plan_id: str
    category: str
    tasks: int
    done: int
    completion_rate: float
    trend: list[tuple[str, int]] = field(default_factory=list)
    closed: bool = False


@workflow.defn(name="GovernancePlanWorkflow")
class GovernancePlanWorkflow:
    """Tracks a topic's plan: task completion by units and the topic's half-monthly volume.

    Closes with its report (the final :class:`PlanStatus`) once every task is done and a
    whole half month after that has been measured, on ``close``, or after ``max_reviews``.
    """

    @workflow.init
    def __init__(self, plan: PlanInput) -> None:
        # State from the input here, not in run: an update can be handled before run starts.
        self._input: PlanInput | None = plan
        self._done: dict[str, str] = dict(plan.done)
        self._seen: set[str] = set(plan.seen_events)
        self._trend: list[tuple[str, int]] = list(plan.trend)
        self._close = False

    @workflow.run
    async def run(self, plan: PlanInput) -> PlanStatus:
        started = plan.started_at or workflow.now()
        period = timedelta(seconds=plan.review_seconds)
        while not self._close and len(self._trend) < plan.max_reviews:
            all_done_before = self._all_done()
            # A timeout is the normal case: the half month passed, review.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._close, timeout=period)
            end = workflow.now()
            volume: int = await workflow.execute_activity(
                "topic_volume", TopicVolumeRequest(plan.category, end - period, end),
                result_type=int, start_to_close_timeout=_SQL_TIMEOUT, retry_policy=_RETRY)
            self._trend.append((end.strftime("%Y-%m-%d"), volume))
            if all_done_before:
                break  # the volume after the last task is in the report
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(PlanInput(
                    plan.plan_id, plan.category, plan.title, plan.tasks,
                    plan.responsibilities, plan.policies, plan.review_seconds,
                    plan.max_reviews, dict(self._done), list(self._trend),
                    sorted(self._seen), started))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status(closed=True)

    def _all_done(self) -> bool:
        assert self._input is not None
        return all(t.task_id in self._done for t in self._input.tasks)

    def _status(self, closed: bool = False) -> PlanStatus:
        assert self._input is not None
        n = len(self._input.tasks)
        return PlanStatus(self._input.plan_id, self._input.category, n, len(self._done),
                          len(self._done) / n if n else 1.0, list(self._trend), closed)

    @workflow.update(name=UPDATE_REPORT_TASK)
    def report_task(self, report: TaskReport) -> PlanStatus:
        """A unit reports a task done; a repeated event id changes nothing."""
        if report.event_id not in self._seen:
            self._seen.add(report.event_id)
            self._done.setdefault(report.task_id, report.note)
        return self._status()

    @report_task.validator
    def _check_report(self, report: TaskReport) -> None:
        assert self._input is not None
        owners = {t.task_id: t.owner_unit_id for t in self._input.tasks}
        if report.task_id not in owners:
            raise ValueError(f"unknown task {report.task_id!r}")
        if owners[report.task_id] != report.unit_id:
            raise ValueError(f"task {report.task_id!r} is owned by {owners[report.task_id]}")

    @workflow.signal
    def close(self) -> None:
        """Close the plan early (a supervisor decision); the report follows."""
        self._close = True

    @workflow.query
    def status(self) -> PlanStatus:
        return self._status()
