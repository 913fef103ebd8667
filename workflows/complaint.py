"""``ComplaintWorkflow``: one citizen request from filing to evaluation (DESIGN.md).

``run`` reads like the lifecycle: accept → dispatch → handle → callback → evaluate. The
timers of the escalation ladder live in ``_checkpoints`` alone. Everything that leaves the
workflow (Kafka records, ledger rows) goes through the ``record_step`` activity, one call
per step, so each step is durable once and repeatable without effect.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows import search_attributes as sa
    from workflows.evaluation import CaseFacts, score_case
    from workflows.model import (
        QUERY_VIEW,
        UPDATE_CALLBACK,
        UPDATE_COMPLETE,
        UPDATE_REPORT_PROGRESS,
        UPDATE_SIGN_FOR,
        UPDATE_SUPPLEMENT,
        UPDATE_URGE,
        UPDATE_WITHDRAW,
        Acceptance,
        AcceptRequest,
        Ack,
        CallbackAnswer,
        CaseResult,
        CaseRow,
        CaseView,
        Complete,
        DispatchRow,
        EvaluationRow,
        Filing,
        LifecycleRecord,
        Outbound,
        Outcome,
        RejectReason,
        ReportProgress,
        SignFor,
        Status,
        StepRecord,
        Supplement,
        Urge,
        Withdraw,
    )

# Named options per activity: start-to-close always set, bounded retries, business
# errors listed by type so they fail at once.
ACCEPT_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        maximum_interval=timedelta(seconds=30), maximum_attempts=20,
        non_retryable_error_types=["InvalidFiling"],
    ),
}
# Kafka or PostgreSQL may be down for minutes; keep trying for about an hour.
RECORD_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(
        maximum_interval=timedelta(seconds=30), maximum_attempts=150,
        non_retryable_error_types=["InvalidRecord"],
    ),
}

LEVELS = ("UNIT", "DISTRICT", "CITY")
CLOSED_STATES = {Status.CLOSED}
HANDLING_STATES = {Status.DISPATCHED, Status.SIGNED, Status.IN_PROGRESS}


def _ms(at: datetime) -> int:
    """Avro timestamp-millis: outbound fields travel to the activity as JSON."""
    return int(at.timestamp() * 1000)


@dataclass(frozen=True)
class _Checkpoint:
    """One pending rung of the escalation ladder."""

    at: datetime
    kind: str  # SIGN_FOR | WARNING | OVERDUE | CITY
    fraction: float = 0.0


@dataclass
class _Dispatch:
    dispatch_id: str
    unit_id: str
    unit_name: str
    issued_at: datetime
    sign_by: datetime
    due_at: datetime
    signed_at: datetime | None = None
    completed_at: datetime | None = None
    revoked_at: datetime | None = None
    result: str | None = None

    def row(self, complaint_id: str) -> DispatchRow:
        return DispatchRow(
            dispatch_id=self.dispatch_id, complaint_id=complaint_id, unit_id=self.unit_id,
            role="LEAD", issued_at=self.issued_at, sign_by=self.sign_by, due_at=self.due_at,
            signed_at=self.signed_at, completed_at=self.completed_at,
            revoked_at=self.revoked_at, result=self.result,
        )


@workflow.defn(name="ComplaintWorkflow")
class ComplaintWorkflow:
    @workflow.init
    def __init__(self, filing: Filing) -> None:
        # Set here, not in run: an update can arrive in the very first activation.
        self._filing: Filing | None = filing
        self._acc: Acceptance | None = None
        self._status = Status.FILED
        self._seq = 0
        self._timeline: list[LifecycleRecord] = []
        self._seen: dict[str, Ack] = {}
        self._dispatch: _Dispatch | None = None
        self._dispatch_count = 0
        self._completion: Complete | None = None
        self._first_contact_at: datetime | None = None
        self._answer: CallbackAnswer | None = None
        self._withdrawn: Withdraw | None = None
        self._level = "UNIT"
        self._overdue = False
        self._escalations = 0
        self._sign_misses = 0
        self._warnings_sent = 0
        self._urges = 0
        self._closed_at: datetime | None = None
        self._indexed: dict[str, Any] = {}
        # Steps are recorded one at a time, so Kafka sees a case's events in seq order even
        # when an update handler and the main run record at the same moment.
        self._record_lock = asyncio.Lock()

    # --- the lifecycle ------------------------------------------------------------------

    @workflow.run
    async def run(self, filing: Filing) -> CaseResult:
        self._filing = filing
        acc = await self.accept(filing)
        if acc.outcome == Outcome.DISPATCH:
            await self.dispatch()
            await self.handle()
            if self._withdrawn is None:
                await self.callback()
        result = await self.evaluate()
        # Updates still recording their step must finish before the run closes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def accept(self, filing: Filing) -> Acceptance:
        """Classify, pick the tier and lead unit; close at once unless it is dispatched."""
        acc: Acceptance = await workflow.execute_activity(
            "accept", AcceptRequest(filing, workflow.now()), result_type=Acceptance,
            **ACCEPT_OPTIONS,
        )
        self._acc = acc
        attrs = {"outcome": acc.outcome, "reason": acc.reason,
                 "hints_used": ",".join(acc.hints_used)}
        if acc.redirect_to:
            attrs["redirect_to"] = acc.redirect_to
        status = {
            Outcome.ANSWERED_DIRECTLY: Status.ANSWERED_DIRECTLY,
            Outcome.REJECTED: Status.REJECTED,
            Outcome.REDIRECTED: Status.REJECTED,
        }.get(Outcome(acc.outcome), Status.ACCEPTED)
        event = "ACCEPTED" if acc.outcome == Outcome.DISPATCH else acc.outcome
        await self._record(event, status, attributes=attrs)
        return acc

    async def dispatch(self) -> None:
        """Send the case to its lead unit (派单)."""
        acc, filing = self._require()
        assert acc.lead is not None
        self._dispatch_count += 1
        d = _Dispatch(
            dispatch_id=f"{filing.complaint_id}-d{self._dispatch_count}",
            unit_id=acc.lead.unit_id, unit_name=acc.lead.name, issued_at=workflow.now(),
            sign_by=acc.plan.sign_by, due_at=acc.plan.due_at,
        )
        self._dispatch = d
        issued = {
            "complaint_id": filing.complaint_id, "dispatch_id": d.dispatch_id,
            "unit_id": d.unit_id, "unit_name": d.unit_name, "role": "LEAD",
            "issued_at": _ms(d.issued_at), "sign_by": _ms(d.sign_by), "due_at": _ms(d.due_at),
            "tier": acc.tier, "kind": acc.kind, "category": acc.category,
            "content": filing.content, "district": acc.district, "street": acc.street,
            "address": filing.address,
            "caller_phone": None if filing.anonymous else filing.caller_phone,
            "attachments": list(filing.attachments), "reopened": False,
        }
        await self._record(
            "DISPATCHED", Status.DISPATCHED, unit_id=d.unit_id, dispatch_id=d.dispatch_id,
            outbound=[("DispatchIssued", d.unit_id, issued)], dispatch_rows=True,
            attributes={"unit_name": d.unit_name, "due_at": d.due_at.isoformat()},
        )

    async def handle(self) -> None:
        """Wait for sign-for and completion, climbing the escalation ladder on time."""
        while self._completion is None and self._withdrawn is None:
            checkpoint = self._next_checkpoint()
            if checkpoint is None:
                await workflow.wait_condition(self._handling_done)
                break
            if not await self._sleep_until(checkpoint.at, self._handling_done):
                await self._escalate(checkpoint)

    async def callback(self) -> None:
        """Ask the callback centre to call the citizen; retry while unreached (回访)."""
        acc, _ = self._require()
        attempts = acc.ladder.unreached_attempts
        spacing = timedelta(seconds=acc.ladder.unreached_window_seconds / max(attempts - 1, 1))
        answer_by = workflow.now() + timedelta(seconds=acc.plan.callback_seconds)
        for attempt in range(1, attempts + 1):
            self._answer = None
            await self._record(
                "CALLBACK_DUE", Status.CALLBACK,
                attributes={"attempt": str(attempt), "answer_by": answer_by.isoformat()},
            )
            await self._sleep_until(answer_by, lambda: self._answer is not None)
            if self._answer is not None and self._answer.reached:
                return
            answer_by = workflow.now() + spacing
        self._answer = None  # never reached: evaluate on the unit's own report

    async def evaluate(self) -> CaseResult:
        """Score the case, write the evaluation and close it (考评)."""
        acc, filing = self._require()
        counted = acc.outcome == Outcome.DISPATCH and self._withdrawn is None
        answer = self._answer
        scores = score_case(
            CaseFacts(
                counted=counted,
                callback_reached=bool(answer and answer.reached),
                callback_responded=bool(answer and answer.responded),
                callback_resolved=bool(answer and answer.resolved),
                satisfaction=answer.satisfaction if answer else None,
                unit_contacted=self._first_contact_at is not None,
                unit_result=self._completion.result if self._completion else None,
            ),
            acc.ladder.weights,
        )
        now = workflow.now()
        evaluation = EvaluationRow(
            complaint_id=filing.complaint_id, counted=counted, responded=scores.responded,
            resolved=scores.resolved, satisfied=scores.satisfied,
            satisfaction=answer.satisfaction if answer else None, overdue=self._overdue,
            returns=0, escalations=self._escalations, reopens=0, score=scores.score,
            evaluated_at=now, lead_unit_id=acc.lead.unit_id if acc.lead else None,
        )
        if counted:
            await self._record(
                "EVALUATED", Status.EVALUATED, evaluation=evaluation,
                attributes={
                    "counted": str(counted).lower(), "responded": str(scores.responded).lower(),
                    "resolved": str(scores.resolved).lower(),
                    "satisfied": str(scores.satisfied).lower(), "score": f"{scores.score:g}",
                },
            )
        else:
            evaluation = replace(evaluation, responded=False, resolved=False, satisfied=False,
                                 score=0.0)
        self._closed_at = now
        await self._record(
            "CLOSED", Status.CLOSED, evaluation=None if counted else evaluation,
            attributes={"counted": str(counted).lower()},
        )
        return CaseResult(
            complaint_id=filing.complaint_id, status=self._status.value, outcome=acc.outcome,
            counted=counted, responded=evaluation.responded, resolved=evaluation.resolved,
            satisfied=evaluation.satisfied, overdue=self._overdue,
        )

    # --- the escalation ladder: every timer of a handled case ---------------------------

    def _next_checkpoint(self) -> _Checkpoint | None:
        acc, _ = self._require()
        d = self._dispatch
        assert d is not None
        span = d.due_at - d.issued_at
        pending: list[_Checkpoint] = []
        if d.signed_at is None and self._sign_misses < acc.ladder.sign_for_misses_to_district:
            pending.append(_Checkpoint(d.sign_by, "SIGN_FOR"))
        fractions = acc.ladder.warning_fractions
        if self._warnings_sent < len(fractions):
            f = fractions[self._warnings_sent]
            pending.append(_Checkpoint(d.issued_at + span * f, "WARNING", f))
        if not self._overdue:
            pending.append(_Checkpoint(d.due_at, "OVERDUE", 1.0))
        if self._level != "CITY":
            f = 1.0 + acc.ladder.city_after_overdue_fraction
            pending.append(_Checkpoint(d.issued_at + span * f, "CITY", f))
        return min(pending, key=lambda c: c.at) if pending else None

    async def _escalate(self, cp: _Checkpoint) -> None:
        acc, _ = self._require()
        d = self._dispatch
        assert d is not None
        if cp.kind == "SIGN_FOR":
            self._sign_misses += 1
            if self._sign_misses >= acc.ladder.sign_for_misses_to_district:
                await self._notice("DISTRICT_SUPERVISION", self._raise_level("DISTRICT"),
                                   f"{d.unit_name} has not signed for the case twice")
            else:
                # Re-notify: the unit gets another sign-for window.
                d.sign_by = workflow.now() + timedelta(seconds=acc.plan.sign_for_seconds)
                await self._notice("SIGN_OVERDUE", self._level,
                                   f"sign for before {d.sign_by.isoformat()}")
        elif cp.kind == "WARNING":
            self._warnings_sent += 1
            await self._notice("WARNING", self._level,
                               f"{cp.fraction:.0%} of the time used", fraction=cp.fraction)
        elif cp.kind == "OVERDUE":
            self._overdue = True
            await self._notice("OVERDUE", self._raise_level("DISTRICT"),
                               "deadline passed: district supervision", fraction=1.0)
        else:
            await self._notice("CITY_SUPERVISION", self._raise_level("CITY"),
                               "long overdue: city supervision", fraction=cp.fraction)

    def _raise_level(self, level: str) -> str:
        if LEVELS.index(level) > LEVELS.index(self._level):
            self._level = level
            self._escalations += 1
        return self._level

    async def _notice(
        self, notice_type: str, level: str, message: str, fraction: float | None = None
    ) -> None:
        _, filing = self._require()
        d = self._dispatch
        assert d is not None
        notice = {
            "complaint_id": filing.complaint_id, "dispatch_id": d.dispatch_id,
            "unit_id": d.unit_id, "at": _ms(workflow.now()), "notice_type": notice_type,
            "level": level, "due_at": _ms(d.due_at), "message": message, "fraction_used": fraction,
        }
        await self._record(
            "NOTICE", self._status, unit_id=d.unit_id, dispatch_id=d.dispatch_id,
            reason=message, outbound=[("SupervisionNotice", d.unit_id, notice)],
            attributes={"notice_type": notice_type, "level": level},
        )

    def _handling_done(self) -> bool:
        return self._completion is not None or self._withdrawn is not None

    async def _sleep_until(self, at: datetime, done: Any) -> bool:
        """Wait until ``done()`` or ``at``; True when ``done()`` came first."""
        remaining = (at - workflow.now()).total_seconds()
        if remaining <= 0:
            return bool(done())
        try:
            await workflow.wait_condition(done, timeout=timedelta(seconds=remaining))
            return True
        except TimeoutError:
            return bool(done())

    # --- updates from units, citizens and the callback centre ---------------------------

    @workflow.update(name=UPDATE_SIGN_FOR)
    async def sign_for(self, event: SignFor) -> Ack:
        return await self._unit_reply(
            event.event_id, event.dispatch_id, event.unit_id, "SIGNED",
            allowed={Status.DISPATCHED}, apply=lambda d: self._apply_sign(d, event.at),
        )

    @workflow.update(name=UPDATE_REPORT_PROGRESS)
    async def report_progress(self, event: ReportProgress) -> Ack:
        def apply(d: _Dispatch) -> Status:
            if event.contacted_citizen and self._first_contact_at is None:
                self._first_contact_at = event.at
            return Status.IN_PROGRESS

        return await self._unit_reply(
            event.event_id, event.dispatch_id, event.unit_id, "PROGRESS",
            allowed={Status.SIGNED, Status.IN_PROGRESS}, apply=apply,
            attributes={"contacted_citizen": str(event.contacted_citizen).lower()},
        )

    @workflow.update(name=UPDATE_COMPLETE)
    async def complete(self, event: Complete) -> Ack:
        def apply(d: _Dispatch) -> Status:
            d.completed_at = event.at
            d.result = event.result
            self._completion = event
            return Status.COMPLETED

        return await self._unit_reply(
            event.event_id, event.dispatch_id, event.unit_id, "COMPLETED",
            allowed={Status.SIGNED, Status.IN_PROGRESS}, apply=apply,
            attributes={"result": event.result}, reason=event.reply_text[:500],
        )

    @workflow.update(name=UPDATE_CALLBACK)
    async def receive_callback(self, event: CallbackAnswer) -> Ack:
        if event.event_id in self._seen:
            return replace(self._seen[event.event_id], duplicate=True)
        if self._status != Status.CALLBACK or self._answer is not None:
            return await self._refuse(event.event_id, RejectReason.STATE_NOT_ALLOWED,
                                      f"no callback is due in state {self._status}")
        self._answer = event
        attrs = {"reached": str(event.reached).lower(),
                 "responded": str(event.responded).lower(),
                 "resolved": str(event.resolved).lower(),
                 "satisfaction": event.satisfaction or ""}
        await self._record("CALLBACK", Status.CALLBACK, attributes=attrs)
        return self._accepted(event.event_id)

    @workflow.update(name=UPDATE_SUPPLEMENT)
    async def supplement(self, event: Supplement) -> Ack:
        return await self._citizen_forward(event.event_id, "SUPPLEMENTED", event.content,
                                           list(event.attachments), urge=False)

    @workflow.update(name=UPDATE_URGE)
    async def urge(self, event: Urge) -> Ack:
        return await self._citizen_forward(event.event_id, "URGED",
                                           event.content or "市民催办", [], urge=True)

    @workflow.update(name=UPDATE_WITHDRAW)
    async def withdraw(self, event: Withdraw) -> Ack:
        if event.event_id in self._seen:
            return replace(self._seen[event.event_id], duplicate=True)
        if self._status not in HANDLING_STATES | {Status.ACCEPTED}:
            return await self._refuse(event.event_id, RejectReason.STATE_NOT_ALLOWED,
                                      f"cannot withdraw in state {self._status}")
        self._withdrawn = event
        d = self._dispatch
        outbound = []
        if d is not None:
            d.revoked_at = event.at
            outbound.append(("DispatchRevoked", d.unit_id, {
                "complaint_id": self._require()[1].complaint_id, "dispatch_id": d.dispatch_id,
                "unit_id": d.unit_id, "at": _ms(event.at), "reason": "withdrawn by the citizen",
            }))
        await self._record("WITHDRAWN", Status.WITHDRAWN, outbound=outbound,
                           dispatch_rows=d is not None, reason=event.reason)
        return self._accepted(event.event_id)

    @workflow.query(name=QUERY_VIEW)
    def view(self) -> CaseView:
        acc = self._acc
        d = self._dispatch
        return CaseView(
            complaint_id=self._filing.complaint_id if self._filing else "",
            status=self._status.value, outcome=acc.outcome if acc else None,
            tier=acc.tier if acc else None, kind=acc.kind if acc else None,
            category=acc.category if acc else None, district=acc.district if acc else None,
            street=acc.street if acc else None,
            lead_unit_id=acc.lead.unit_id if acc and acc.lead else None,
            dispatch_id=d.dispatch_id if d else None, sign_by=d.sign_by if d else None,
            due_at=d.due_at if d else None, overdue=self._overdue,
            escalation_level=self._level, urges=self._urges, timeline=list(self._timeline),
        )

    # --- helpers --------------------------------------------------------------------------

    def _apply_sign(self, d: _Dispatch, at: datetime) -> Status:
        d.signed_at = at
        return Status.SIGNED

    async def _unit_reply(
        self, event_id: str, dispatch_id: str, unit_id: str, event_type: str, *,
        allowed: set[Status], apply: Any, attributes: dict[str, str] | None = None,
        reason: str | None = None,
    ) -> Ack:
        """Guard a unit's reply (holder, state), apply it and record the step."""
        if event_id in self._seen:
            return replace(self._seen[event_id], duplicate=True)
        d = self._dispatch
        if d is None or d.dispatch_id != dispatch_id or d.unit_id != unit_id:
            return await self._refuse(
                event_id, RejectReason.UNIT_NOT_HOLDING,
                f"unit {unit_id} does not hold dispatch {dispatch_id}", unit_id=unit_id,
            )
        if self._status not in allowed:
            return await self._refuse(
                event_id, RejectReason.STATE_NOT_ALLOWED,
                f"{event_type} not allowed in state {self._status}", unit_id=unit_id,
            )
        status = apply(d)
        await self._record(event_type, status, unit_id=unit_id, dispatch_id=dispatch_id,
                           dispatch_rows=True, attributes=attributes, reason=reason)
        return self._accepted(event_id)

    async def _citizen_forward(
        self, event_id: str, event_type: str, content: str, attachments: list[str], urge: bool
    ) -> Ack:
        if event_id in self._seen:
            return replace(self._seen[event_id], duplicate=True)
        if self._status not in HANDLING_STATES:
            return await self._refuse(event_id, RejectReason.STATE_NOT_ALLOWED,
                                      f"{event_type} not allowed in state {self._status}")
        d = self._dispatch
        assert d is not None
        if urge:
            self._urges += 1
        forwarded = {
            "complaint_id": self._require()[1].complaint_id, "dispatch_id": d.dispatch_id,
            "unit_id": d.unit_id, "at": _ms(workflow.now()), "content": content,
            "attachments": attachments, "urge": urge,
        }
        await self._record(event_type, self._status, unit_id=d.unit_id,
                           dispatch_id=d.dispatch_id,
                           outbound=[("SupplementForwarded", d.unit_id, forwarded)],
                           attributes={"urges": str(self._urges)})
        return self._accepted(event_id)

    def _accepted(self, event_id: str) -> Ack:
        ack = Ack(accepted=True)
        self._seen[event_id] = ack
        return ack

    async def _refuse(
        self, event_id: str, reason: RejectReason, detail: str, unit_id: str | None = None
    ) -> Ack:
        """Record a refused event on the case's lifecycle; the state stays as it was."""
        ack = Ack(accepted=False, reason=reason.value, detail=detail)
        self._seen[event_id] = ack
        await self._record("REPLY_REFUSED", self._status, unit_id=unit_id, reason=detail,
                           attributes={"refused_event_id": event_id, "code": reason.value})
        return ack

    def _require(self) -> tuple[Acceptance, Filing]:
        assert self._acc is not None and self._filing is not None
        return self._acc, self._filing

    async def _record(
        self, event_type: str, status: Status, *, unit_id: str | None = None,
        dispatch_id: str | None = None, reason: str | None = None,
        outbound: list[tuple[str, str, dict[str, Any]]] | None = None,
        dispatch_rows: bool = False, evaluation: EvaluationRow | None = None,
        attributes: dict[str, str] | None = None,
    ) -> None:
        """Make one lifecycle step durable: its lifecycle event, records and ledger rows."""
        # The state changes now, so guards of updates arriving meanwhile see it.
        self._status = status
        async with self._record_lock:
            filing = self._filing
            acc = self._acc
            assert filing is not None
            self._seq += 1
            seq = self._seq
            now = workflow.now()
            cid = filing.complaint_id
            lead = acc.lead.unit_id if acc and acc.lead else None
            event = LifecycleRecord(
                event_id=f"{cid}:{seq}", complaint_id=cid, seq=seq, at=now,
                event_type=event_type, status=status.value, tier=acc.tier if acc else None,
                kind=acc.kind if acc else None, category=acc.category if acc else None,
                district=acc.district if acc else None, street=acc.street if acc else None,
                lead_unit_id=lead, unit_id=unit_id, dispatch_id=dispatch_id, reason=reason,
                escalation_level=self._level, overdue=self._overdue,
                attributes=dict(attributes or {}),
            )
            self._timeline.append(event)
            self._upsert_search_attributes()
            d = self._dispatch
            case = CaseRow(
                complaint_id=cid, version=seq, status=status.value, filed_at=filing.filed_at,
                channel=filing.channel, kind=acc.kind if acc else filing.kind,
                category=acc.category if acc else None, tier=acc.tier if acc else None,
                district=acc.district if acc else None, street=acc.street if acc else None,
                lead_unit_id=lead, due_at=d.due_at if d else None, overdue=self._overdue,
                escalation_level=self._level, closed_at=self._closed_at,
                outcome=acc.outcome if acc else None,
            )
            step = StepRecord(
                complaint_id=cid, step=f"{seq}-{event_type}", lifecycle=[event],
                outbound=[
                    Outbound(record=name, unit_id=unit,
                             fields={"event_id": f"{cid}:{seq}:{name}:{unit}", **fields})
                    for name, unit, fields in (outbound or [])
                ],
                case=case, dispatches=[d.row(cid)] if (dispatch_rows and d) else [],
                evaluation=evaluation,
            )
            try:
                await workflow.execute_activity("record_step", step, **RECORD_OPTIONS)
            except ActivityError as err:
                # Retries ran out or the step is invalid: a bug or a long outage, not a
                # business outcome. Failing the task (not the case) lets a fix resume it.
                raise RuntimeError(f"record_step {step.step} failed: {err.cause or err}") from err

    def _upsert_search_attributes(self) -> None:
        """Index what supervisors filter on; only changed values, to keep history short."""
        acc = self._acc
        wanted: dict[Any, Any] = {
            sa.STATUS: self._status.value, sa.OVERDUE: self._overdue,
            sa.ESCALATION_LEVEL: self._level,
        }
        if acc is not None:
            wanted[sa.TIER] = acc.tier
            wanted[sa.CATEGORY] = acc.category
            if acc.district:
                wanted[sa.DISTRICT] = acc.district
            if acc.lead:
                wanted[sa.LEAD_UNIT] = acc.lead.unit_id
        changed = [k.value_set(v) for k, v in wanted.items() if self._indexed.get(k.name) != v]
        if changed:
            workflow.upsert_search_attributes(changed)
            self._indexed.update({k.name: v for k, v in wanted.items()})
