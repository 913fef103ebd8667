"""Activities of a case: ``accept`` (classify, deadline plan, lead unit) and ``record_step``
(publish a step's Kafka records and write its ledger rows, idempotently).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any, Protocol

import structlog
from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.classify import classify, locate, route
from activities.config import HotlineConfig
from schemas import codec
from workflows.model import (
    Acceptance,
    AcceptRequest,
    CaseRow,
    DispatchRow,
    EvaluationRow,
    LadderPlan,
    LifecycleRecord,
    Outcome,
    StepReceipt,
    StepRecord,
    TierPlan,
)

log = structlog.get_logger(__name__)


class Publisher(Protocol):
    """What ``record_step`` needs from Kafka: send keyed records and wait for the acks."""

    def publish(self, messages: Sequence[tuple[str, str, str, dict[str, Any]]]) -> None:
        """Send ``(topic, key, record name, fields)`` tuples; return once all are acked."""


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
    ) -> None:
        self._config = config
        self._publisher = publisher
        self._pool = pool
        self._topic_lifecycle = topic_lifecycle
        self._topic_dispatches = topic_dispatches
        self._scale = time_scale

    @activity.defn(name="accept")
    async def accept(self, request: AcceptRequest) -> Acceptance:
        """Validate and classify a filing, pick its tier, deadlines and lead unit (受理)."""
        filing = request.filing
        if not filing.content.strip():
            raise ApplicationError("empty content", type="InvalidFiling", non_retryable=True)
        cfg = self._config
        rules = cfg.rules
        cl = classify(
            cfg.lexicon, filing.content, kind_hint=filing.kind,
            category_hint=filing.category_hint, urgency_hint=filing.urgency_hint,
        )
        loc = locate(cfg.registry, filing.district, filing.street, filing.address, filing.content)
        street_unit = cfg.registry.get(loc.street_id) if loc.street_id else None

        if filing.answered_directly:
            outcome, reason = Outcome.ANSWERED_DIRECTLY, "answered by the operator"
        elif cl.redirect_to:
            outcome, reason = Outcome.REDIRECTED, f"emergency: redirected to {cl.redirect_to}"
        elif cl.unreasonable:
            outcome, reason = Outcome.REJECTED, "unreasonable request"
        else:
            outcome, reason = Outcome.DISPATCH, "dispatch"

        # Deadlines run from the workflow's acceptance time, not this activity's clock, so
        # a retried accept computes the same plan.
        start = request.accepted_at
        tier_rule = rules.tiers[cl.tier]
        due_at = rules.deadline(cl.tier, start, self._scale)
        plan = TierPlan(
            tier=cl.tier,
            deadline_seconds=(due_at - start).total_seconds(),
            sign_for_seconds=tier_rule.sign_for.total_seconds() * self._scale,
            callback_seconds=rules.callback.due[cl.tier].total_seconds() * self._scale,
            due_at=due_at,
            sign_by=start + tier_rule.sign_for * self._scale,
        )
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
        )
        lead = route(cfg.registry, cl.category, loc) if outcome == Outcome.DISPATCH else None
        log.info(
            "accepted", complaint_id=filing.complaint_id, outcome=outcome, tier=cl.tier,
            category=cl.category.code, lead_unit=lead.unit_id if lead else None,
        )
        return Acceptance(
            outcome=outcome.value,
            kind=cl.kind,
            category=cl.category.code,
            category_name=cl.category.name,
            tier=cl.tier,
            reason=reason,
            district=loc.district,
            street=street_unit.name if street_unit else filing.street,
            plan=plan,
            ladder=ladder,
            lead=lead,
            hints_used=cl.hints_used,
            redirect_to=cl.redirect_to,
        )

    @activity.defn(name="record_step")
    async def record_step(self, step: StepRecord) -> StepReceipt:
        """Publish a step's records and write its ledger rows; safe to repeat.

        Kafka first, then PostgreSQL: a retry after a database failure re-sends records
        with the same event ids, which consumers drop; the ledger writes are upserts.
        """
        messages: list[tuple[str, str, str, dict[str, Any]]] = []
        for ev in step.lifecycle:
            messages.append(
                (self._topic_lifecycle, ev.complaint_id, "LifecycleEvent", _lifecycle_fields(ev))
            )
        for out in step.outbound:
            messages.append((self._topic_dispatches, out.unit_id, out.record, dict(out.fields)))
        try:
            for _, _, name, fields in messages:
                codec.encode(name, fields)  # fail fast, before anything is sent
        except codec.EncodeError as err:
            raise ApplicationError(
                f"step {step.step}: {err}", type="InvalidRecord", non_retryable=True
            ) from err
        if messages:
            await asyncio.to_thread(self._publisher.publish, messages)
        await self._write_ledger(step)
        return StepReceipt(step.complaint_id, step.step, len(messages))

    async def _write_ledger(self, step: StepRecord) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            for ev in step.lifecycle:
                await conn.execute(
                    """INSERT INTO case_events (event_id, complaint_id, seq, at, event_type,
                           status, unit_id, dispatch_id, reason, attributes)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                       ON CONFLICT DO NOTHING""",
                    (ev.event_id, ev.complaint_id, ev.seq, ev.at, ev.event_type, ev.status,
                     ev.unit_id, ev.dispatch_id, ev.reason, json.dumps(ev.attributes)),
                )
            if step.case:
                await _upsert_case(conn, step.case)
            for d in step.dispatches:
                await _upsert_dispatch(conn, d)
            if step.evaluation:
                await _insert_evaluation(conn, step.evaluation)


def _lifecycle_fields(ev: LifecycleRecord) -> dict[str, Any]:
    return {
        "event_id": ev.event_id, "complaint_id": ev.complaint_id, "seq": ev.seq, "at": ev.at,
        "event_type": ev.event_type, "status": ev.status, "tier": ev.tier, "kind": ev.kind,
        "category": ev.category, "district": ev.district, "street": ev.street,
        "lead_unit_id": ev.lead_unit_id, "unit_id": ev.unit_id, "dispatch_id": ev.dispatch_id,
        "reason": ev.reason, "escalation_level": ev.escalation_level, "overdue": ev.overdue,
        "attributes": dict(ev.attributes),
    }


async def _upsert_case(conn: Any, row: CaseRow) -> None:
    # The version guard keeps a late retry of an older step from overwriting newer state.
    await conn.execute(
        """INSERT INTO cases AS c (complaint_id, version, status, outcome, channel, kind,
               category, tier, district, street, lead_unit_id, filed_at, due_at, closed_at,
               overdue, escalation_level, updated_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
           ON CONFLICT (complaint_id) DO UPDATE SET
               version = EXCLUDED.version, status = EXCLUDED.status,
               outcome = EXCLUDED.outcome, kind = EXCLUDED.kind,
               category = EXCLUDED.category, tier = EXCLUDED.tier,
               district = EXCLUDED.district, street = EXCLUDED.street,
               lead_unit_id = EXCLUDED.lead_unit_id, due_at = EXCLUDED.due_at,
               closed_at = EXCLUDED.closed_at, overdue = EXCLUDED.overdue,
               escalation_level = EXCLUDED.escalation_level, updated_at = now()
           WHERE c.version < EXCLUDED.version""",
        (row.complaint_id, row.version, row.status, row.outcome, row.channel, row.kind,
         row.category, row.tier, row.district, row.street, row.lead_unit_id, row.filed_at,
         row.due_at, row.closed_at, row.overdue, row.escalation_level),
    )


async def _upsert_dispatch(conn: Any, d: DispatchRow) -> None:
    # Timestamps only ever go from NULL to a value, so COALESCE makes repeats harmless.
    await conn.execute(
        """INSERT INTO dispatches AS d (dispatch_id, complaint_id, unit_id, role, issued_at,
               sign_by, due_at, signed_at, completed_at, revoked_at, result)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (dispatch_id) DO UPDATE SET
               due_at = EXCLUDED.due_at,
               signed_at = COALESCE(d.signed_at, EXCLUDED.signed_at),
               completed_at = COALESCE(d.completed_at, EXCLUDED.completed_at),
               revoked_at = COALESCE(d.revoked_at, EXCLUDED.revoked_at),
               result = COALESCE(d.result, EXCLUDED.result)""",
        (d.dispatch_id, d.complaint_id, d.unit_id, d.role, d.issued_at, d.sign_by, d.due_at,
         d.signed_at, d.completed_at, d.revoked_at, d.result),
    )


async def _insert_evaluation(conn: Any, e: EvaluationRow) -> None:
    await conn.execute(
        """INSERT INTO evaluations (complaint_id, lead_unit_id, counted, responded, resolved,
               satisfied, satisfaction, overdue, returns, escalations, reopens, score,
               evaluated_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (complaint_id) DO NOTHING""",
        (e.complaint_id, e.lead_unit_id, e.counted, e.responded, e.resolved, e.satisfied,
         e.satisfaction, e.overdue, e.returns, e.escalations, e.reopens, e.score,
         e.evaluated_at),
    )
