"""Activities of a case: ``accept`` (classify, deadline plan, lead unit) and ``record_step``
(publish a step's Kafka records and write its ledger rows, idempotently).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.dispatch.confidence import candidates
from activities.dispatch.config import HotlineConfig
from activities.dispatch.decide import (
    MODEL_STREET_RULE,
    decide_route,
    first_look,
    governance_route,
)
from activities.dispatch.location import Location
from activities.dispatch.workdays import CalendarNotCovered
from activities.ledger import apply_lifecycle, read_rows
from activities.metrics import CALENDAR_REFUSALS, observe_step, watch_calendar
from schemas import codec
from workflows.model import (
    Acceptance,
    AcceptRequest,
    LadderPlan,
    LedgerRows,
    LifecycleRecord,
    Outcome,
    PlanRequest,
    RouteRequest,
    RouteResult,
    StepReceipt,
    StepRecord,
    TierPlan,
)
from workflows.steps import NO_LEDGER_BASE, expand_step, step_name, with_complaint_id

log = structlog.get_logger(__name__)


class Publisher(Protocol):
    """What ``record_step`` needs from Kafka: send keyed records and wait for the acks."""

    def publish_encoded(self, messages: Sequence[tuple[str, str, str, bytes]]) -> None:
        """Send ``(topic, key, record name, Avro bytes)``; return once all are acked."""


class DuplicateFinder(Protocol):
    """Finds an open case of the same caller, problem type and street (重复件)."""

    async def find_open(self, caller_hash: str, category: str, street: str | None,
                        other_than: str) -> str | None:
        """The complaint id of such a case, or None."""


class LedgerDuplicates:
    """``DuplicateFinder`` over the ledger's ``cases`` table."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def find_open(self, caller_hash: str, category: str, street: str | None,
                        other_than: str) -> str | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT complaint_id FROM cases
                   WHERE caller_hash = %s AND category = %s
                     AND street IS NOT DISTINCT FROM %s AND complaint_id <> %s
                     AND status IN ('ACCEPTED', 'DISPATCHED', 'SIGNED', 'IN_PROGRESS')
                   ORDER BY filed_at LIMIT 1""",
                (caller_hash, category, street, other_than),
            )
            row = await cur.fetchone()
            return str(row[0]) if row else None


def caller_hash(key: bytes, phone: str | None) -> str | None:
    """A keyed hash of the caller's number: finds repeat callers without storing the number.

    A plain hash of an 11-digit number is reversible by trying them all; the key
    (``HOTLINE_CALLER_HASH_KEY``) makes it not.
    """
    digits = "".join(ch for ch in phone or "" if ch.isdigit())
    if not digits:
        return None
    return hmac.new(key, digits.encode(), hashlib.sha256).hexdigest()[:32]


class CaseActivities:
    """The activities of ``ComplaintWorkflow``, with their dependencies injected."""

    def __init__(
        self,
        config: HotlineConfig,
        publisher: Publisher,
        pool: AsyncConnectionPool,
        *,
        topic_lifecycle: str,
        topic_dispatches: str,
        time_scale: float = 1.0,
        duplicates: DuplicateFinder | None = None,
        caller_key: bytes = b"",
    ) -> None:
        self._config = config
        self._duplicates = duplicates
        self._caller_key = caller_key
        self._publisher = publisher
        self._pool = pool
        self._topic_lifecycle = topic_lifecycle
        self._topic_dispatches = topic_dispatches
        self._scale = time_scale
        watch_calendar(config.rules.calendar)

    @activity.defn(name="accept")
    async def accept(self, request: AcceptRequest) -> Acceptance:
        """Validate and classify a filing, pick its tier, deadlines and lead unit (受理)."""
        filing = request.filing
        if not filing.content.strip():
            raise ApplicationError("empty content", type="InvalidFiling", non_retryable=True)
        cfg = self._config
        rules = cfg.rules
        look = first_look(
            cfg, filing.content, district=filing.district, street=filing.street,
            address=filing.address, kind_hint=filing.kind, category_hint=filing.category_hint,
            urgency_hint=filing.urgency_hint, at=filing.filed_at,
        )
        cl, loc, route, doubt = look.classification, look.location, look.route, look.doubt
        if filing.governance:
            route = governance_route(cfg, route, loc)
        street_unit = cfg.registry.get(loc.street_id) if loc.street_id else None
        street = street_unit.name if street_unit else filing.street
        caller = caller_hash(self._caller_key, filing.caller_phone)

        # Deadlines run from the workflow's acceptance time, not this activity's clock, so
        # a retried accept computes the same plan.
        review_reasons = list(doubt.reasons)
        try:
            plan = self._plan_for(cl.tier, request.accepted_at)
        except CalendarNotCovered as err:
            # Never a silently wrong date: a person decides, told the date is provisional.
            plan = self._plan_for(cl.tier, request.accepted_at, provisional=True)
            calendar_doubt = (f"{err}; provisional {cl.tier} deadline "
                              f"{plan.due_at:%Y-%m-%d} counts weekdays only")
            review_reasons.insert(0, calendar_doubt)
        else:
            calendar_doubt = ""

        # Unsure (below review.min_confidence) a dispatcher decides; T2H never waits but
        # outside Beijing, where no Beijing unit can act.
        machine = Outcome(look.outcome(rules.review.min_confidence))
        merge_into = None
        if filing.answered_directly:
            outcome, reason = Outcome.ANSWERED_DIRECTLY, "answered by the operator"
        elif machine == Outcome.REDIRECTED:
            outcome, reason = Outcome.REDIRECTED, f"emergency: redirected to {cl.redirect_to}"
        elif caller and self._duplicates and (merge_into := await self._duplicates.find_open(
                caller, cl.category.code, street, filing.complaint_id)):
            outcome, reason = Outcome.MERGED, f"same caller and problem as open case {merge_into}"
        elif machine == Outcome.REVIEW and not filing.governance:
            # (A governance task goes out at once: a supervisor's scan already decided.)
            outcome, reason = Outcome.REVIEW, "; ".join(review_reasons)
        elif calendar_doubt:
            outcome, reason = Outcome.REVIEW, calendar_doubt
        else:
            outcome = Outcome.DISPATCH
            # Why a lead other than the routing table's first choice: on the case record.
            special = filing.governance or route.rule == MODEL_STREET_RULE
            reason = route.note if special and route.note else "dispatch"
        if calendar_doubt and outcome == Outcome.REVIEW:
            # Counted only where the calendar held the case (not a transfer or a merge).
            CALENDAR_REFUSALS.labels(cl.tier, "accept").inc()
            log.error("calendar_not_covered", complaint_id=filing.complaint_id, tier=cl.tier,
                      reason=calendar_doubt)

        tier_rule = rules.tiers[cl.tier]
        ext = rules.extension
        ladder = LadderPlan(
            warning_fractions=list(rules.ladder.warning_fractions),
            sign_for_misses_to_district=rules.ladder.sign_for_misses_to_district,
            city_after_overdue_fraction=rules.ladder.city_after_overdue_fraction,
            urges_to_escalate=rules.ladder.urges_to_escalate,
            max_returns=rules.ladder.max_returns,
            unreached_attempts=rules.callback.unreached_attempts,
            unreached_window_seconds=rules.callback.unreached_window.total_seconds() * self._scale,
            max_reopens=rules.reopen.max_reopens,
            weights=rules.weights.model_dump(),
            extension_tiers=list(ext.tiers),
            extension_max_per_case=ext.max_per_case,
            extension_max_days=int(tier_rule.deadline.days * ext.max_fraction_of_tier),
            extension_auto_grant_days=ext.auto_grant_max_days,
            reopen_max_tier=rules.reopen.max_tier,
        )
        decision = route if outcome == Outcome.DISPATCH else None
        review = outcome == Outcome.REVIEW
        log.info(
            "accepted", complaint_id=filing.complaint_id, outcome=outcome, tier=cl.tier,
            category=cl.category.code, confidence=doubt.confidence,
            lead_unit=decision.lead.unit_id if decision else None,
        )
        return Acceptance(
            outcome=outcome.value,
            kind=cl.kind,
            category=cl.category.code,
            category_name=cl.category.name,
            tier=cl.tier,
            reason=reason,
            district=loc.district,
            street=street,
            plan=plan,
            ladder=ladder,
            lead=decision.lead if decision else None,
            hints_used=cl.hints_used,
            redirect_to=cl.redirect_to,
            assisting=list(decision.assisting) if decision else [],
            merge_into=merge_into,
            caller_hash=caller,
            route_rule=decision.rule if decision else "",
            confidence=doubt.confidence,
            review_reasons=review_reasons,
            candidates=(candidates(cfg.registry, cl, loc, route, doubt.confidence)
                        if review else []),
            review_seconds=(rules.review.window_for(cl.tier).total_seconds() * self._scale
                            if review else 0.0),
            routing_version=look.routing_version,
        )

    @activity.defn(name="route")
    async def route(self, request: RouteRequest) -> RouteResult:
        """The routing table again: skip units that returned the case, or resolve units a
        person named (whistle, reassign)."""
        cfg = self._config
        if request.unit_ids:
            units = [cfg.registry.get(u) for u in request.unit_ids]
            missing = [u for u, unit in zip(request.unit_ids, units, strict=True) if unit is None]
            if missing:
                raise ApplicationError(f"unknown units {missing}", type="UnknownUnit",
                                       non_retryable=True)
            found = [u for u in units if u is not None]
            return RouteResult(lead=found[0], assisting=found[1:], rule="named")
        category = cfg.lexicon.category(request.category)
        if category is None:
            raise ApplicationError(f"unknown category {request.category!r}",
                                   type="UnknownCategory", non_retryable=True)
        district = cfg.registry.district(request.district)
        loc = Location(district, cfg.registry.street(district, request.street))
        decision = decide_route(cfg, category, loc, exclude=request.exclude)
        return RouteResult(lead=decision.lead, assisting=list(decision.assisting),
                           rule=decision.rule)

    @activity.defn(name="plan")
    async def plan(self, request: PlanRequest) -> TierPlan:
        """A fresh deadline plan (reopen), or the deadline moved by extra days (extension)."""
        if request.tier not in self._config.rules.tiers:
            raise ApplicationError(f"unknown tier {request.tier!r}", type="UnknownTier",
                                   non_retryable=True)
        try:
            if request.extra_days and request.due_at is not None:
                return self._extend(request.tier, request.start, request.due_at,
                                    request.extra_days)
            return self._plan_for(request.tier, request.start)
        except CalendarNotCovered as err:
            # A reopen or extension of a case already under way: refusing would strand it,
            # so the deadline is provisional and said so loudly (log, metric, alert).
            CALENDAR_REFUSALS.labels(request.tier, "plan").inc()
            info = activity.info()
            log.error("calendar_not_covered", complaint_id=info.workflow_id, tier=request.tier,
                      year=err.year, provisional=True)
            if request.extra_days and request.due_at is not None:
                return self._extend(request.tier, request.start, request.due_at,
                                    request.extra_days, provisional=True)
            return self._plan_for(request.tier, request.start, provisional=True)

    def _plan_for(self, tier: str, start: datetime, *, provisional: bool = False) -> TierPlan:
        rules = self._config.rules
        rule = rules.tiers[tier]
        due_at = rules.deadline(tier, start, self._scale, provisional=provisional)
        return TierPlan(
            tier=tier,
            deadline_seconds=(due_at - start).total_seconds(),
            sign_for_seconds=rule.sign_for.total_seconds() * self._scale,
            callback_seconds=rules.callback.due[tier].total_seconds() * self._scale,
            due_at=due_at,
            sign_by=start + rule.sign_for * self._scale,
        )

    def _extend(self, tier: str, start: datetime, due_at: datetime, days: int, *,
                provisional: bool = False) -> TierPlan:
        """``due_at`` plus ``days`` (working days where the tier counts them), scaled."""
        rules = self._config.rules
        rule = rules.tiers[tier]
        real_extra = (rules.calendar.add_workdays(due_at, days, provisional=provisional)
                      - due_at if rule.working_days else timedelta(days=days))
        new_due = due_at + real_extra * self._scale
        base = self._plan_for(tier, start, provisional=provisional)
        return replace(base, due_at=new_due,
                       deadline_seconds=(new_due - start).total_seconds())

    @activity.defn(name="record_step")
    async def record_step(self, step: StepRecord) -> StepReceipt | None:
        """Publish a step's records and write its ledger rows; safe to repeat.

        Kafka first, then PostgreSQL: a retry after a database failure re-sends records
        with the same event ids, which consumers drop; the ledger writes are upserts.
        A lean step (``workflows.steps.slim_step``) is expanded first, and answered with
        nothing: the workflow does not read the receipt, and each byte of it would stay
        in the case's history. A delta step's left-out columns come from the ledger's
        rows, which must be those of its base version, or of the step itself (a retry
        after the ledger was written: the columns it left out are the same in both).
        """
        lean = step.is_lean
        step = with_complaint_id(step, activity.info().workflow_id)
        step = expand_step(step, await self._ledger_base(step) if step.base else None)
        events = [_lifecycle_fields(ev) for ev in step.lifecycle]
        if events:
            # The step's ledger rows ride on its (last) lifecycle event, so the ledger can
            # be rebuilt from the topic with exactly the rows written here.
            events[-1].update(
                case_row=asdict(step.case) if step.case else None,
                dispatch_rows=[asdict(d) for d in step.dispatches],
                evaluation_row=asdict(step.evaluation) if step.evaluation else None,
            )
        messages: list[tuple[str, str, str, dict[str, Any]]] = [
            (self._topic_lifecycle, ev["complaint_id"], "LifecycleEvent", ev) for ev in events
        ]
        for out in step.outbound:
            messages.append((self._topic_dispatches, out.unit_id, out.record, dict(out.fields)))
        try:
            # Encoded once, before anything is sent: an invalid step fails fast.
            encoded = [(topic, key, name, codec.encode(name, fields))
                       for topic, key, name, fields in messages]
        except codec.EncodeError as err:
            raise ApplicationError(
                f"step {step.step}: {err}", type="InvalidRecord", non_retryable=True
            ) from err
        if encoded:
            await asyncio.to_thread(self._publisher.publish_encoded, encoded)
        # The ledger gets the events as the topic carries them (milliseconds, defaults
        # filled), so a ledger rebuilt from the topic is the same to the last digit.
        on_topic = [codec.decode(value).record for _, _, _, value in encoded[:len(events)]]
        async with self._pool.connection() as conn, conn.transaction():
            for ev in on_topic:
                await apply_lifecycle(conn, ev)
        observe_step(step, units=self._config.registry)  # only once the step is durable
        return None if lean else StepReceipt(step.complaint_id, step.step, len(messages))


    async def _ledger_base(self, step: StepRecord) -> LedgerRows:
        last = step.lifecycle[-1].seq if step.lifecycle else step.base
        async with self._pool.connection() as conn:
            rows = await read_rows(conn, step.complaint_id)
        # A dispatch row left out relative to a row the ledger does not hold (restored
        # without it) would be written with its placeholders: the step must come whole.
        lost = [d.dispatch_id for d in step.dispatches
                if rows is not None and d.dispatch_id not in rows.dispatches and not d.unit_id]
        if rows is None or rows.version not in (step.base, last) or lost:
            # Restored or rebuilt behind the case (or reset ahead of it): the workflow
            # sends the step again with every column.
            log.warning("ledger_base_missing", complaint_id=step.complaint_id,
                        step=step_name(step), base=step.base,
                        ledger_version=rows.version if rows else None, lost=lost)
            raise ApplicationError(
                f"step {step_name(step)}: the ledger holds version "
                f"{rows.version if rows else 'none'} of the case, not {step.base}"
                + (f", and not dispatch {', '.join(lost)}" if lost else ""),
                type=NO_LEDGER_BASE, non_retryable=True)
        return rows


def _lifecycle_fields(ev: LifecycleRecord) -> dict[str, Any]:
    return {
        "event_id": ev.event_id, "complaint_id": ev.complaint_id, "seq": ev.seq, "at": ev.at,
        "event_type": ev.event_type, "status": ev.status, "tier": ev.tier, "kind": ev.kind,
        "category": ev.category, "district": ev.district, "street": ev.street,
        "lead_unit_id": ev.lead_unit_id, "unit_id": ev.unit_id, "dispatch_id": ev.dispatch_id,
        "reason": ev.reason, "escalation_level": ev.escalation_level, "overdue": ev.overdue,
        "attributes": dict(ev.attributes),
        "candidates": [asdict(c) for c in ev.candidates] if ev.candidates is not None else None,
    }
