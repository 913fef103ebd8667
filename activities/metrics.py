"""The case metrics of the worker process: what every durable lifecycle step counts.

``record_step`` calls :func:`observe_step` once the step's Kafka records are acknowledged
and its ledger rows committed, so a step that failed is never counted. Temporal delivers
activities at least once: if the worker dies (or loses its connection) after the ledger
commit but before the server records the completion, the retried attempt counts the step
again. That window is a few milliseconds per step, so the counters are at-least-once and
exact in practice; the ledger, not Prometheus, is the record of truth.

Labels are kept to small, closed sets (STYLE.md): tier, outcome, unit kind, notice type,
supervision level, reason code, district (a city has a handful). Never a case, unit or
person id. Every name ends in its unit (``_seconds``) or ``_total``.

Catalogue (name — type — labels — meaning):

- ``hotline_case_events_total`` — counter — event_type — every lifecycle event made
  durable (ACCEPTED, DISPATCHED, SIGNED, URGED, WITHDRAWN, ...).
- ``hotline_cases_accepted_total`` — counter — tier, outcome — acceptance decisions:
  DISPATCH, ANSWERED_DIRECTLY, REJECTED, REDIRECTED, MERGED (the intake rate).
- ``hotline_intake_to_dispatch_seconds`` — histogram — tier — filing time (upstream
  ``filed_at``) to the first dispatch.
- ``hotline_dispatches_total`` — counter — tier, unit_kind, trigger — dispatches issued,
  by why: dispatch, redispatch (after a return or a reassignment), reopen, whistle.
- ``hotline_dispatch_to_sign_seconds`` — histogram — tier, unit_kind — a dispatch issued
  to the unit signing for it.
- ``hotline_dispatch_to_completion_seconds`` — histogram — tier, unit_kind — the lead
  dispatch issued to the unit completing it.
- ``hotline_notices_total`` — counter — notice_type, level, tier — supervision notices:
  WARNING and SIGN_OVERDUE (预警), OVERDUE (超期, district supervision), and the escalations
  DISTRICT_SUPERVISION, CITY_SUPERVISION, CITY_COORDINATION, URGED (督办); ``level`` is the
  case's supervision level after the notice (UNIT, DISTRICT, CITY).
- ``hotline_returns_total`` — counter — tier, unit_kind — dispatches returned (退单).
- ``hotline_extensions_total`` — counter — tier, decision — requested, granted, denied.
- ``hotline_callbacks_due_total`` — counter — tier, attempt — callbacks asked of the
  callback centre; attempt 2 and 3 are retries after an unreached citizen.
- ``hotline_callbacks_total`` — counter — tier, reached, resolved, satisfaction — what the
  citizen said (satisfaction SATISFIED, BASICALLY_SATISFIED, UNSATISFIED or none).
- ``hotline_reopens_total`` — counter — tier — cases sent back to handling (重办).
- ``hotline_replies_refused_total`` — counter — code — events a case refused (and the
  bridge dead-lettered): UNIT_NOT_HOLDING, STATE_NOT_ALLOWED, LIMIT_REACHED, ...
- ``hotline_cases_evaluated_total`` — counter — tier, responded, resolved, satisfied —
  counted cases scored (the three rates, 三率).
- ``hotline_cases_closed_total`` — counter — tier, outcome, overdue — closed cases by how
  they ended: HANDLED, WITHDRAWN, ANSWERED_DIRECTLY, REJECTED, REDIRECTED, MERGED.
- ``hotline_case_duration_seconds`` — histogram — tier, outcome — filing to closing.
- ``hotline_calendar_refusals_total`` — counter — tier, step — working-day deadlines
  that reached a year ``calendar.yaml`` does not list: ``accept`` sends the case to the
  dispatch desk; ``plan`` (reopen, extension) gives a provisional deadline, logged.
- ``hotline_calendar_coverage_days`` — gauge — days from today to the last day the
  working-day calendar lists (read at scrape time).
- ``hotline_calendar_coverage_warn_days`` — gauge — ``calendar.yaml``'s
  ``warn_days_ahead``: the alert fires when coverage drops below it.
- ``hotline_activity_failures_total`` — counter — activity, error — activity attempts that
  raised (``error`` is the ApplicationError type or the exception class), counted by
  :class:`ActivityFailureInterceptor`.

The ledger gauges (cases by state, open overdue cases) and the bridges' consumer lag are
in :mod:`workers.runtime.metrics_exporter`; the bridges' own counters in
:mod:`workers.bridges.consumer`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import structlog
from prometheus_client import Counter, Gauge, Histogram
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from activities.dispatch.workdays import Calendar
from workflows.model import TIER_ORDER, DispatchRow, LifecycleRecord, StepRecord, Unit

log = structlog.get_logger(__name__)

# DESIGN.md's four deadline tiers; acceptance series for them are created at import (below)
# so a rate over a counter that has not moved yet is 0, not absent.
TIERS = TIER_ORDER
ACCEPT_OUTCOMES = ("DISPATCH", "ANSWERED_DIRECTLY", "REJECTED", "REDIRECTED", "MERGED",
                   "REVIEW")
DESK_DECISIONS = ("DISPATCH", "ANSWER_DIRECTLY", "REJECT", "REDIRECT", "EXPIRED")
NONE = "none"  # label value when a case has no tier / district / satisfaction yet
UNKNOWN = "unknown"

# Notice types that raise (or confirm) a supervision level: escalations (督办).
ESCALATION_NOTICES = frozenset(
    {"OVERDUE", "DISTRICT_SUPERVISION", "CITY_SUPERVISION", "CITY_COORDINATION", "URGED"}
)

# A case lives up to ~30 days (15-day tier + extension + callback), and the demo scales
# time down to seconds: buckets from one second to sixty days.
_DURATION_BUCKETS = (
    1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 172800, 259200,
    604800, 1296000, 2592000, 5184000,
)
# Acceptance and dispatch are automatic: seconds, unless the bridge or the worker lags.
_DISPATCH_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400)

CASE_EVENTS = Counter(
    "hotline_case_events_total",
    "Lifecycle events made durable (Kafka and ledger), by event type.",
    ["event_type"],
)
CASES_ACCEPTED = Counter(
    "hotline_cases_accepted_total",
    "Acceptance decisions (受理) by tier and outcome: the intake rate.",
    ["tier", "outcome"],
)
DESK_DECIDED = Counter(
    "hotline_dispatch_desk_decisions_total",
    "Cases leaving the dispatch desk (派单复核), by the dispatcher's decision, or EXPIRED "
    "when the review window ended and the top candidate was dispatched.",
    ["decision"],
)
INTAKE_TO_DISPATCH = Histogram(
    "hotline_intake_to_dispatch_seconds",
    "Time from the citizen's filing (filed_at) to the case's first dispatch.",
    ["tier"],
    buckets=_DISPATCH_BUCKETS,
)
DISPATCHES = Counter(
    "hotline_dispatches_total",
    "Dispatches issued to units, by tier, unit kind and trigger "
    "(dispatch, redispatch, reopen, whistle).",
    ["tier", "unit_kind", "trigger"],
)
DISPATCH_TO_SIGN = Histogram(
    "hotline_dispatch_to_sign_seconds",
    "Time from a dispatch being issued to the unit signing for it (签收).",
    ["tier", "unit_kind"],
    buckets=_DURATION_BUCKETS,
)
DISPATCH_TO_COMPLETION = Histogram(
    "hotline_dispatch_to_completion_seconds",
    "Time from the lead dispatch being issued to the unit completing it (办结).",
    ["tier", "unit_kind"],
    buckets=_DURATION_BUCKETS,
)
NOTICES = Counter(
    "hotline_notices_total",
    "Supervision notices: warnings, sign-for and deadline overdue, escalations; "
    "level is the case's supervision level after the notice.",
    ["notice_type", "level", "tier"],
)
RETURNS = Counter(
    "hotline_returns_total",
    "Dispatches returned by the unit (退单), by tier and kind of the returning unit.",
    ["tier", "unit_kind"],
)
EXTENSIONS = Counter(
    "hotline_extensions_total",
    "Extension requests and decisions (延期): decision is requested, granted or denied.",
    ["tier", "decision"],
)
CALLBACKS_DUE = Counter(
    "hotline_callbacks_due_total",
    "Callbacks asked of the callback centre (回访), by attempt (2+ = retry after unreached).",
    ["tier", "attempt"],
)
CALLBACKS = Counter(
    "hotline_callbacks_total",
    "Callback results: reached, resolved and the citizen's satisfaction.",
    ["tier", "reached", "resolved", "satisfaction"],
)
REOPENS = Counter(
    "hotline_reopens_total",
    "Cases sent back to handling after an unresolved or unsatisfied callback (重办).",
    ["tier"],
)
REPLIES_REFUSED = Counter(
    "hotline_replies_refused_total",
    "Events a case refused (wrong unit, wrong state, limit reached), by reason code.",
    ["code"],
)
CASES_EVALUATED = Counter(
    "hotline_cases_evaluated_total",
    "Counted cases scored (考评), by the three rates' answers.",
    ["tier", "responded", "resolved", "satisfied"],
)
CASES_CLOSED = Counter(
    "hotline_cases_closed_total",
    "Closed cases by how they ended (HANDLED, WITHDRAWN, or the acceptance outcome) and "
    "whether a deadline was missed.",
    ["tier", "outcome", "overdue"],
)
CASE_DURATION = Histogram(
    "hotline_case_duration_seconds",
    "Time from the citizen's filing to the case closing.",
    ["tier", "outcome"],
    buckets=_DURATION_BUCKETS,
)
CALENDAR_REFUSALS = Counter(
    "hotline_calendar_refusals_total",
    "Working-day deadlines that reached a year the calendar does not list, by tier and "
    "step (accept: the case went to the dispatch desk; plan: a provisional deadline).",
    ["tier", "step"],
)
CALENDAR_COVERAGE = Gauge(
    "hotline_calendar_coverage_days",
    "Days from today (the calendar's timezone) to the last day the working-day calendar "
    "lists; negative once past it.",
)
CALENDAR_WARN = Gauge(
    "hotline_calendar_coverage_warn_days",
    "calendar.yaml's warn_days_ahead: HotlineCalendarCoverageEnding fires below it.",
)
ACTIVITY_FAILURES = Counter(
    "hotline_activity_failures_total",
    "Activity attempts that raised, by activity type and error type "
    "(retried unless non-retryable).",
    ["activity", "error"],
)

for _tier in TIERS:
    for _outcome in ACCEPT_OUTCOMES:
        CASES_ACCEPTED.labels(_tier, _outcome)

for _decision in DESK_DECISIONS:
    DESK_DECIDED.labels(_decision)

# The event types of the acceptance step: "ACCEPTED" for a dispatched case,
# "REVIEW_REQUESTED" for one sent to the dispatch desk, else the outcome's name (the
# workflow's ``accept``).
_ACCEPT_EVENTS = frozenset({"ACCEPTED", "REVIEW_REQUESTED", *ACCEPT_OUTCOMES})
# A case leaving the desk records its outcome again (REJECTED, …) in the step that carries
# the decision: it was counted once already, as REVIEW.
_DESK_EVENTS = {"REVIEW_DECIDED", "REVIEW_EXPIRED"}
_DISPATCH_TRIGGERS = {
    "DISPATCHED": "dispatch",
    "REDISPATCHED": "redispatch",
    "REOPENED": "reopen",
    "WHISTLED": "whistle",
}


def watch_calendar(calendar: Calendar) -> None:
    """Export how long the working-day calendar still covers, computed at each scrape."""
    zone = ZoneInfo(calendar.timezone)
    CALENDAR_COVERAGE.set_function(lambda: calendar.days_left(datetime.now(zone).date()))
    CALENDAR_WARN.set(calendar.warn_days_ahead)


class UnitLookup(Protocol):
    """What metrics need of the unit registry: a unit's kind (street, department, ...)."""

    def get(self, unit_id: str) -> Unit | None:
        """The unit with this id, or None."""


def _flag(value: str | None) -> str:
    return "true" if value == "true" else "false"


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    # Upstream clocks may run ahead of ours: a negative latency is zero.
    return max((end - start).total_seconds(), 0.0)


def _unit_kind(units: UnitLookup | None, unit_id: str | None) -> str:
    if units is None or not unit_id:
        return UNKNOWN
    unit = units.get(unit_id)
    return unit.kind if unit is not None and unit.kind else UNKNOWN


def _dispatch(step: StepRecord, dispatch_id: str | None) -> DispatchRow | None:
    return next((d for d in step.dispatches if d.dispatch_id == dispatch_id), None)


def _new_dispatches(step: StepRecord) -> Iterable[DispatchRow]:
    # A dispatch step also carries rows it only updates (the revoked one of a
    # re-dispatch); the new ones are neither revoked, signed nor completed yet.
    return (d for d in step.dispatches
            if d.revoked_at is None and d.signed_at is None and d.completed_at is None)


def _closing_outcome(step: StepRecord, ev: LifecycleRecord) -> str:
    outcome = step.case.outcome if step.case else None
    if outcome and outcome != "DISPATCH":
        return outcome
    # A dispatched case closes uncounted only when the citizen withdrew it.
    return "HANDLED" if ev.attributes.get("counted") == "true" else "WITHDRAWN"


def _observe_event(step: StepRecord, ev: LifecycleRecord, units: UnitLookup | None) -> None:
    et = ev.event_type
    attrs = ev.attributes
    tier = ev.tier or NONE
    CASE_EVENTS.labels(et).inc()
    if et in _ACCEPT_EVENTS and not any(e.event_type in _DESK_EVENTS for e in step.lifecycle):
        CASES_ACCEPTED.labels(tier, attrs.get("outcome") or
                              ("DISPATCH" if et == "ACCEPTED" else et)).inc()
    if et == "REVIEW_DECIDED":
        DESK_DECIDED.labels(attrs.get("decision") or UNKNOWN).inc()
    elif et == "REVIEW_EXPIRED":
        DESK_DECIDED.labels("EXPIRED").inc()
    if et in _DISPATCH_TRIGGERS:
        for d in _new_dispatches(step):
            DISPATCHES.labels(tier, _unit_kind(units, d.unit_id), _DISPATCH_TRIGGERS[et]).inc()
        if et == "DISPATCHED":
            latency = _seconds(step.case.filed_at if step.case else None, ev.at)
            if latency is not None:
                INTAKE_TO_DISPATCH.labels(tier).observe(latency)
        elif et == "REOPENED":
            REOPENS.labels(tier).inc()
    elif et == "SIGNED":
        signed = _dispatch(step, ev.dispatch_id)
        latency = _seconds(signed.issued_at, signed.signed_at) if signed else None
        if latency is not None:
            DISPATCH_TO_SIGN.labels(tier, _unit_kind(units, ev.unit_id)).observe(latency)
    elif et == "COMPLETED":
        done = _dispatch(step, ev.dispatch_id)
        latency = _seconds(done.issued_at, done.completed_at) if done else None
        if latency is not None:
            DISPATCH_TO_COMPLETION.labels(tier, _unit_kind(units, ev.unit_id)).observe(latency)
    elif et == "NOTICE":
        NOTICES.labels(attrs.get("notice_type") or UNKNOWN,
                       attrs.get("level") or ev.escalation_level, tier).inc()
    elif et == "RETURNED":
        RETURNS.labels(tier, _unit_kind(units, ev.unit_id)).inc()
    elif et == "EXTENSION_REQUESTED":
        EXTENSIONS.labels(tier, "requested").inc()
    elif et == "EXTENSION_DECIDED":
        EXTENSIONS.labels(tier, "granted" if attrs.get("granted") == "true" else "denied").inc()
    elif et == "CALLBACK_DUE":
        CALLBACKS_DUE.labels(tier, attrs.get("attempt") or "1").inc()
    elif et == "CALLBACK":
        reached = _flag(attrs.get("reached"))
        CALLBACKS.labels(tier, reached,
                         _flag(attrs.get("resolved")) if reached == "true" else "false",
                         attrs.get("satisfaction") or NONE).inc()
    elif et == "REPLY_REFUSED":
        REPLIES_REFUSED.labels(attrs.get("code") or UNKNOWN).inc()
    elif et == "EVALUATED":
        CASES_EVALUATED.labels(tier, _flag(attrs.get("responded")),
                               _flag(attrs.get("resolved")), _flag(attrs.get("satisfied"))).inc()
    elif et == "CLOSED":
        outcome = _closing_outcome(step, ev)
        CASES_CLOSED.labels(tier, outcome, "true" if ev.overdue else "false").inc()
        duration = _seconds(step.case.filed_at if step.case else None, ev.at)
        if duration is not None:
            CASE_DURATION.labels(tier, outcome).observe(duration)


def observe_step(step: StepRecord, units: UnitLookup | None = None) -> None:
    """Count a lifecycle step that has just been made durable.

    Call it only after the ledger write committed: an attempt that failed must not count.
    A retry after a success counts the step twice (at-least-once; see the module
    docstring). Never raises: a metrics bug must not fail (and so repeat) the activity.

    Args:
        step: The step ``record_step`` applied.
        units: The unit registry, for the ``unit_kind`` label; ``unknown`` without it.
    """
    for ev in step.lifecycle:
        try:
            _observe_event(step, ev, units)
        except Exception as exc:
            log.warning("metrics not recorded for step", complaint_id=step.complaint_id,
                        step=step.step, error=f"{type(exc).__name__}: {exc}")


# --- the Temporal SDK's own metrics -----------------------------------------------------

# What the SDK's Core exports on HOTLINE_TEMPORAL_SDK_METRICS_PORT (sdk-core's
# telemetry/metrics.rs and client/src/metrics.rs), named as workers/runtime/observability.py asks:
# ``temporal_`` prefix, counters ending in ``_total``, durations in ``_seconds``. Name →
# Prometheus type. The dashboard test checks panels against it; the scrape test checks
# that what the SDK really exports is in it.
TEMPORAL_SDK_METRICS: dict[str, str] = {
    **{f"temporal_{n}_total": "counter" for n in (
        "request", "request_failure", "long_request", "long_request_failure",
        "workflow_completed", "workflow_canceled", "workflow_failed",
        "workflow_continue_as_new", "workflow_task_queue_poll_empty",
        "workflow_task_queue_poll_succeed", "workflow_task_execution_failed",
        "activity_poll_no_task", "activity_task_received", "activity_execution_failed",
        "activity_execution_cancelled", "local_activity_total",
        "local_activity_execution_failed", "local_activity_execution_cancelled",
        "sticky_cache_hit", "sticky_cache_miss", "sticky_cache_total_forced_eviction",
        "worker_start", "nexus_poll_no_task", "nexus_task_execution_failed",
    )},
    **{f"temporal_{n}_seconds": "histogram" for n in (
        "request_latency", "long_request_latency", "workflow_endtoend_latency",
        "workflow_task_schedule_to_start_latency", "workflow_task_replay_latency",
        "workflow_task_execution_latency", "activity_schedule_to_start_latency",
        "activity_execution_latency", "activity_succeed_endtoend_latency",
        "local_activity_execution_latency", "local_activity_succeed_endtoend_latency",
        "nexus_task_schedule_to_start_latency", "nexus_task_execution_latency",
        "nexus_task_endtoend_latency",
    )},
    **{f"temporal_{n}": "gauge" for n in (
        "num_pollers", "worker_task_slots_available", "worker_task_slots_used",
        "sticky_cache_size",
    )},
}


# --- activity failures ------------------------------------------------------------------


def error_type(exc: BaseException) -> str:
    """A bounded label for an exception: the ApplicationError type, else the class name."""
    if isinstance(exc, ApplicationError) and exc.type:
        return exc.type
    return type(exc).__name__


class _CountFailures(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except activity._CompleteAsyncError:
            raise  # the activity completes later, from elsewhere: not a failure
        except Exception as exc:
            # Cancellation (asyncio.CancelledError) is a BaseException: not counted.
            ACTIVITY_FAILURES.labels(activity.info().activity_type, error_type(exc)).inc()
            raise


class ActivityFailureInterceptor(Interceptor):
    """Worker interceptor counting failed activity attempts in
    ``hotline_activity_failures_total{activity,error}``.

    Pass it in ``Worker(..., interceptors=[ActivityFailureInterceptor()])``.
    """

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CountFailures(next)
