"""``ComplaintWorkflow``: one citizen request from filing to evaluation (DESIGN.md).

``run`` reads like the lifecycle: accept → dispatch → handle → callback → (reopen →
handle → callback) → evaluate. Every timer of a handled case comes from one place,
``_next_checkpoint`` (the escalation ladder). Everything that leaves the workflow (Kafka
records, ledger rows) goes through the ``record_step`` activity, one call per step, so a
step is durable once and repeatable without effect.

Versioning: histories recorded by earlier versions are replayed in tests
(``tests/histories``). Paths that did not exist then are either reachable only through
events older versions refused, or guarded by ``workflow.patched``.

The sandbox runs this module afresh for every workflow instance (each new case, each case
back from outside the sticky cache), so it holds the workflow class and little else: no
dataclasses (``workflows.model`` is passed through), and no ``from __future__ import
annotations``, whose string annotations the SDK's handler decorators compile again on
every run of the module.
"""

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import search_attributes as sa
    from workflows.evaluation import CaseFacts, score_case
    from workflows.ids import complaint_workflow_id
    from workflows.ladder import active_dispatches, next_checkpoint
    from workflows.model import (
        LEVELS,
        QUERY_VIEW,
        SIGNAL_MERGED_FILING,
        TIER_ORDER,
        UPDATE_CALLBACK,
        UPDATE_COMPLETE,
        UPDATE_DECIDE_EXTENSION,
        UPDATE_ESCALATE,
        UPDATE_REASSIGN,
        UPDATE_REPORT_PROGRESS,
        UPDATE_REQUEST_EXTENSION,
        UPDATE_RETURN_DISPATCH,
        UPDATE_SIGN_FOR,
        UPDATE_SUPPLEMENT,
        UPDATE_URGE,
        UPDATE_WHISTLE,
        UPDATE_WITHDRAW,
        Acceptance,
        AcceptRequest,
        Ack,
        CallbackAnswer,
        CaseResult,
        CaseView,
        Checkpoint,
        Complete,
        DispatchState,
        Escalate,
        EvaluationRow,
        ExtensionDecision,
        Filing,
        MergedFiling,
        Outcome,
        PlanRequest,
        Reassign,
        RejectReason,
        ReportProgress,
        RequestExtension,
        ReturnDispatch,
        RouteRequest,
        RouteResult,
        SignFor,
        Status,
        StepRecord,
        Supplement,
        TierPlan,
        Unit,
        Urge,
        Whistle,
        Withdraw,
    )
    from workflows.state import CaseState, restore, snapshot
    from workflows.steps import OutboundSpec, StepFacts, build_step, lead_unit_id, merge_steps

# Named options per activity: start-to-close always set, bounded retries, business
# errors listed by type so they fail at once.
ACCEPT_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        maximum_interval=timedelta(seconds=30), maximum_attempts=20,
        non_retryable_error_types=["InvalidFiling"],
    ),
}
ROUTE_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        maximum_interval=timedelta(seconds=30), maximum_attempts=20,
        non_retryable_error_types=["UnknownUnit", "UnknownCategory"],
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

HANDLING_STATES = {Status.DISPATCHED, Status.SIGNED, Status.IN_PROGRESS}
WORKING_STATES = {Status.SIGNED, Status.IN_PROGRESS}
# A fresh run well before Temporal's 10,240-event warning even if the server's own
# suggestion (about 4,000 events by default) is configured higher.
HISTORY_EVENTS_LIMIT = 8000
PATCH_REOPEN = "reopen-once"
# ACCEPTED rides with DISPATCHED and EVALUATED with CLOSED in one record_step: two
# activities (and their search-attribute upserts) fewer per happy-path case.
PATCH_FEWER_STEPS = "fewer-steps"
# Supplements and urges that reach a case still being accepted wait for its dispatch;
# before, they failed the workflow task (FILED) or were refused (ACCEPTED).
PATCH_EARLY_CITIZEN = "early-citizen-waits"
# The lead's COMPLETED rides with CALLBACK_DUE and the callback answer with the step after
# it (CLOSED, REOPENED or the next CALLBACK_DUE): two activities and the COMPLETED upsert
# fewer per happy-path case.
PATCH_REPLIES_RIDE_ALONG = "replies-ride-along"
ACCEPTING_STATES = {Status.FILED, Status.ACCEPTED}


def _ms(at: datetime) -> int:
    """Avro timestamp-millis: outbound fields travel to the activity as JSON."""
    return int(at.timestamp() * 1000)


class _ContinueAsNew(Exception):
    """Raised inside a stage when the server suggests a fresh run."""


@workflow.defn(name="ComplaintWorkflow")
class ComplaintWorkflow:
    @workflow.init
    def __init__(self, filing: Filing) -> None:
        # Set here, not in run: an update can arrive in the very first activation.
        self._filing = replace(filing, carried=None)
        self._state = CaseState() if filing.carried is None else restore(filing.carried)
        # Steps are recorded one at a time, so Kafka sees a case's events in seq order even
        # when an update handler and the main run record at the same moment.
        self._record_lock = asyncio.Lock()

    # --- the lifecycle ------------------------------------------------------------------

    @workflow.run
    async def run(self, filing: Filing) -> CaseResult:
        try:
            if filing.carried is None:
                acc = await self.accept(filing)
                if acc.outcome == Outcome.DISPATCH:
                    await self.dispatch()
                    self._state.stage = "handle"
                elif acc.outcome == Outcome.MERGED:
                    await self.merge()
            while self._state.stage in ("handle", "callback"):
                if self._state.stage == "handle":
                    await self.handle()
                    self._state.stage = "callback" if self._state.withdrawn is None else "evaluate"
                if self._state.stage == "callback":
                    await self.callback()
                    self._state.stage = "evaluate"
                    if self._should_reopen():
                        await self.reopen()
                        self._state.stage = "handle"
        except _ContinueAsNew:
            # A handler finishing during the flush may hold a step of its own; the loop
            # ends with nothing held and no await between that check and the new run.
            while True:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._state.deferred is None:
                    break
                await self._flush_deferred()
            workflow.continue_as_new(replace(filing, carried=snapshot(self._state)))
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
        self._state.acceptance = acc
        self._state.plan = acc.plan
        attrs = {"outcome": acc.outcome, "reason": acc.reason,
                 "hints_used": ",".join(acc.hints_used)}
        if acc.redirect_to:
            attrs["redirect_to"] = acc.redirect_to
        if acc.merge_into:
            attrs["merged_into"] = acc.merge_into
        status = {
            Outcome.ANSWERED_DIRECTLY: Status.ANSWERED_DIRECTLY,
            Outcome.REJECTED: Status.REJECTED,
            Outcome.REDIRECTED: Status.REJECTED,
            Outcome.MERGED: Status.MERGED,
        }.get(Outcome(acc.outcome), Status.ACCEPTED)
        event = "ACCEPTED" if acc.outcome == Outcome.DISPATCH else acc.outcome
        # A dispatched case records DISPATCHED at once: ACCEPTED goes out with it.
        defer = acc.outcome == Outcome.DISPATCH and workflow.patched(PATCH_FEWER_STEPS)
        await self._record(event, status, attributes=attrs, defer=defer)
        return acc

    async def merge(self) -> None:
        """A duplicate of an open case: the new filing urges that case instead (合并)."""
        acc, filing = self._require()
        assert acc.merge_into
        await workflow.get_external_workflow_handle(
            complaint_workflow_id(acc.merge_into)).signal(
            SIGNAL_MERGED_FILING,
            MergedFiling(event_id=filing.event_id, complaint_id=filing.complaint_id,
                         at=filing.filed_at, content=filing.content),
        )

    async def dispatch(self) -> None:
        """Send the case to its lead unit, and to assisting units the routing names (派单)."""
        acc, _ = self._require()
        assert acc.lead is not None
        lead = self._new_dispatch(acc.lead, "LEAD")
        self._state.lead_dispatch_id = lead.dispatch_id
        assisting = [self._new_dispatch(u, "ASSISTING") for u in acc.assisting]
        await self._record(
            "DISPATCHED", Status.DISPATCHED, unit_id=lead.unit_id,
            dispatch_id=lead.dispatch_id,
            outbound=[self._issued(d) for d in (lead, *assisting)],
            dispatch_rows=[lead, *assisting],
            attributes=self._dispatch_attributes(lead, assisting),
        )

    async def handle(self) -> None:
        """Wait for completion, climbing the escalation ladder on time."""
        while self._state.completion is None and self._state.withdrawn is None:
            version = self._state.timers_version
            wake = self._waker(self._handling_done, version)
            checkpoint = next_checkpoint(self._state)
            if checkpoint is None:
                await workflow.wait_condition(wake)
            elif not await self._sleep_until(checkpoint.at, wake):
                await self._escalate(checkpoint)
            self._check_continue_as_new()

    async def callback(self) -> None:
        """Ask the callback centre to call the citizen; retry while unreached (回访)."""
        acc, _ = self._require()
        plan = self._require_plan()
        attempts = acc.ladder.unreached_attempts
        spacing = timedelta(seconds=acc.ladder.unreached_window_seconds / max(attempts - 1, 1))
        if self._state.callback_attempt == 0:
            self._state.callback_attempt = 1
            self._state.answer_by = workflow.now() + timedelta(seconds=plan.callback_seconds)
        while self._state.callback_attempt <= attempts:
            if not self._state.callback_requested:
                self._state.answer = None
                self._state.callback_requested = True
                assert self._state.answer_by is not None
                await self._record(
                    "CALLBACK_DUE", Status.CALLBACK,
                    attributes={"attempt": str(self._state.callback_attempt),
                                "answer_by": self._state.answer_by.isoformat()},
                )
            assert self._state.answer_by is not None
            await self._sleep_until(self._state.answer_by, self._waker(self._answered, None))
            self._check_continue_as_new()
            if self._state.answer is not None and self._state.answer.reached:
                return
            self._state.callback_attempt += 1
            self._state.callback_requested = False
            self._state.answer_by = workflow.now() + spacing
        self._state.answer = None  # never reached: evaluate on the unit's own report

    def _should_reopen(self) -> bool:
        acc, _ = self._require()
        answer = self._state.answer
        unhappy = answer is not None and answer.reached and (
            not answer.resolved or answer.satisfaction == "UNSATISFIED")
        # Cases recorded before reopening existed evaluate as they did then.
        return (unhappy and self._state.reopens < acc.ladder.max_reopens
                and workflow.patched(PATCH_REOPEN))

    async def reopen(self) -> None:
        """Unresolved or unsatisfied: back to the same lead unit, tier at most T7D (重办)."""
        acc, _ = self._require()
        lead = self._lead()
        tier = min(acc.tier, acc.ladder.reopen_max_tier, key=TIER_ORDER.index)
        self._state.plan = await workflow.execute_activity(
            "plan", PlanRequest(tier=tier, start=workflow.now()), result_type=TierPlan,
            **ROUTE_OPTIONS,
        )
        self._state.reopens += 1
        self._state.completion = None
        self._state.answer = None
        self._state.callback_attempt = 0
        self._state.callback_requested = False
        self._state.warnings_sent = 0
        self._state.round_overdue = False
        self._state.city_sent = False
        self._state.timers_version += 1
        new = self._new_dispatch(Unit(lead.unit_id, lead.unit_name, "lead"), "LEAD")
        self._state.lead_dispatch_id = new.dispatch_id
        await self._record(
            "REOPENED", Status.DISPATCHED, unit_id=new.unit_id, dispatch_id=new.dispatch_id,
            outbound=[self._issued(new, reopened=True)], dispatch_rows=[new],
            attributes={"reopens": str(self._state.reopens), "tier": tier,
                        "due_at": new.due_at.isoformat()},
        )

    async def evaluate(self) -> CaseResult:
        """Score the case, write the evaluation and close it (考评)."""
        acc, filing = self._require()
        counted = acc.outcome == Outcome.DISPATCH and self._state.withdrawn is None
        answer = self._state.answer
        scores = score_case(
            CaseFacts(
                counted=counted,
                callback_reached=bool(answer and answer.reached),
                callback_responded=bool(answer and answer.responded),
                callback_resolved=bool(answer and answer.resolved),
                satisfaction=answer.satisfaction if answer else None,
                unit_contacted=self._state.first_contact_at is not None,
                unit_result=self._state.completion.result if self._state.completion else None,
            ),
            acc.ladder.weights,
        )
        now = workflow.now()
        evaluation = EvaluationRow(
            complaint_id=filing.complaint_id, counted=counted, responded=scores.responded,
            resolved=scores.resolved, satisfied=scores.satisfied,
            satisfaction=answer.satisfaction if answer else None, overdue=self._state.overdue,
            returns=self._state.returns, escalations=self._state.escalations,
            reopens=self._state.reopens,
            score=scores.score, evaluated_at=now,
            lead_unit_id=self._lead().unit_id if self._state.lead_dispatch_id else None,
        )
        if counted:
            await self._record(
                "EVALUATED", Status.EVALUATED, evaluation=evaluation,
                defer=workflow.patched(PATCH_FEWER_STEPS),
                attributes={
                    "counted": str(counted).lower(), "responded": str(scores.responded).lower(),
                    "resolved": str(scores.resolved).lower(),
                    "satisfied": str(scores.satisfied).lower(), "score": f"{scores.score:g}",
                },
            )
        else:
            evaluation = replace(evaluation, responded=False, resolved=False, satisfied=False,
                                 score=0.0)
        self._state.closed_at = now
        await self._record(
            "CLOSED", Status.CLOSED, evaluation=None if counted else evaluation,
            attributes={"counted": str(counted).lower()},
        )
        return CaseResult(
            complaint_id=filing.complaint_id, status=self._state.status.value, outcome=acc.outcome,
            counted=counted, responded=evaluation.responded, resolved=evaluation.resolved,
            satisfied=evaluation.satisfied, overdue=self._state.overdue,
        )

    # --- the escalation ladder: every timer of a handled case ---------------------------

    async def _escalate(self, cp: Checkpoint) -> None:
        acc, _ = self._require()
        plan = self._require_plan()
        if cp.kind == "SIGN_FOR":
            d = self._state.dispatches[cp.dispatch_id]
            if d.signed_at is not None or not d.active:
                # Signed (or revoked) while this timer ran: a signature does not move the
                # timers, so the ladder checks the rung is still due when it fires.
                return
            d.sign_misses += 1
            if d.sign_misses >= acc.ladder.sign_for_misses_to_district:
                await self._notice("DISTRICT_SUPERVISION", self._raise_level("DISTRICT"),
                                   f"{d.unit_name} has not signed for the case twice", d)
            else:
                # Re-notify: the unit gets another sign-for window.
                d.sign_by = workflow.now() + timedelta(seconds=plan.sign_for_seconds)
                await self._notice("SIGN_OVERDUE", self._state.level,
                                   f"sign for before {d.sign_by.isoformat()}", d)
        elif cp.kind == "WARNING":
            self._state.warnings_sent += 1
            await self._notice("WARNING", self._state.level, f"{cp.fraction:.0%} of the time used",
                               fraction=cp.fraction)
        elif cp.kind == "OVERDUE":
            self._state.overdue = self._state.round_overdue = True
            await self._notice("OVERDUE", self._raise_level("DISTRICT"),
                               "deadline passed: district supervision", fraction=1.0)
        else:
            self._state.city_sent = True
            await self._notice("CITY_SUPERVISION", self._raise_level("CITY"),
                               "long overdue: city supervision", fraction=cp.fraction)

    def _raise_level(self, level: str) -> str:
        if LEVELS.index(level) > LEVELS.index(self._state.level):
            self._state.level = level
            self._state.escalations += 1
        return self._state.level

    async def _notice(
        self, notice_type: str, level: str, message: str, d: DispatchState | None = None,
        fraction: float | None = None,
    ) -> None:
        """A supervision notice to the unit, and the same on the case's lifecycle."""
        _, filing = self._require()
        d = d or self._lead()
        notice = {
            "complaint_id": filing.complaint_id, "dispatch_id": d.dispatch_id,
            "unit_id": d.unit_id, "at": _ms(workflow.now()), "notice_type": notice_type,
            "level": level, "due_at": _ms(d.due_at), "message": message,
            "fraction_used": fraction,
        }
        await self._record(
            "NOTICE", self._state.status, unit_id=d.unit_id, dispatch_id=d.dispatch_id,
            reason=message, outbound=[("SupervisionNotice", d.unit_id, notice)],
            attributes={"notice_type": notice_type, "level": level},
        )

    def _handling_done(self) -> bool:
        return self._state.completion is not None or self._state.withdrawn is not None

    def _answered(self) -> bool:
        return self._state.answer is not None

    def _waker(self, done: Callable[[], bool], version: int | None) -> Callable[[], bool]:
        """``done``, or timers moved, or the history wants a fresh run."""
        def wake() -> bool:
            return (done() or (version is not None and self._state.timers_version != version)
                    or self._history_full())
        return wake

    def _history_full(self) -> bool:
        info = workflow.info()
        return (info.is_continue_as_new_suggested()
                or info.get_current_history_length() > HISTORY_EVENTS_LIMIT)

    def _check_continue_as_new(self) -> None:
        if self._history_full():
            raise _ContinueAsNew()

    async def _sleep_until(self, at: datetime, done: Callable[[], bool]) -> bool:
        """Wait until ``done()`` or ``at``; True when ``done()`` came first."""
        remaining = (at - workflow.now()).total_seconds()
        if remaining <= 0:
            return bool(done())
        try:
            await workflow.wait_condition(done, timeout=timedelta(seconds=remaining))
            return True
        except TimeoutError:
            return bool(done())

    # --- updates from units ---------------------------------------------------------------

    @workflow.update(name=UPDATE_SIGN_FOR)
    async def sign_for(self, event: SignFor) -> Ack:
        def apply(d: DispatchState) -> Status:
            d.signed_at = event.at
            return Status.SIGNED if d.role == "LEAD" else self._state.status

        return await self._unit_reply(
            event.event_id, event.dispatch_id, event.unit_id, "SIGNED",
            lead_states={Status.DISPATCHED}, assisting_ok=lambda d: d.signed_at is None,
            apply=apply,
        )

    @workflow.update(name=UPDATE_REPORT_PROGRESS)
    async def report_progress(self, event: ReportProgress) -> Ack:
        def apply(d: DispatchState) -> Status:
            d.progressed = True
            if event.contacted_citizen and self._state.first_contact_at is None:
                self._state.first_contact_at = event.at
            return Status.IN_PROGRESS if d.role == "LEAD" else self._state.status

        return await self._unit_reply(
            event.event_id, event.dispatch_id, event.unit_id, "PROGRESS",
            lead_states=WORKING_STATES, assisting_ok=lambda d: d.signed_at is not None,
            apply=apply, attributes={"contacted_citizen": str(event.contacted_citizen).lower()},
        )

    @workflow.update(name=UPDATE_COMPLETE)
    async def complete(self, event: Complete) -> Ack:
        """The lead's completion completes the case; an assisting unit's is attached."""
        _, filing = self._require()

        def apply(d: DispatchState) -> Status:
            d.completed_at = event.at
            d.result = event.result
            d.reply_text = event.reply_text
            if d.role != "LEAD":
                return self._state.status
            self._state.completion = event
            return Status.COMPLETED

        d = self._state.dispatches.get(event.dispatch_id)
        closing: list[DispatchState] = []
        if d is not None and d.role == "LEAD":
            closing = [a for a in active_dispatches(self._state) if a.role == "ASSISTING"]
        attrs = {"result": event.result, "role": d.role if d else ""}
        for a in self._state.dispatches.values():
            if a.role == "ASSISTING" and a.reply_text:
                attrs[f"assist:{a.unit_id}"] = a.reply_text[:200]
        lead = d is not None and d.role == "LEAD"
        ack = await self._unit_reply(
            event.event_id, event.dispatch_id, event.unit_id,
            "COMPLETED" if lead else "ASSIST_REPLIED",
            lead_states=WORKING_STATES, assisting_ok=lambda x: x.signed_at is not None,
            apply=apply, attributes=attrs, reason=event.reply_text[:500],
            also_revoke=closing, revoke_reason="the lead unit completed the case",
            # The run asks for the callback at once: CALLBACK_DUE carries this step.
            defer=lead and workflow.patched(PATCH_REPLIES_RIDE_ALONG),
        )
        del filing
        return ack

    @workflow.update(name=UPDATE_RETURN_DISPATCH)
    async def return_dispatch(self, event: ReturnDispatch) -> Ack:
        """退单: reviewed against the routing data, then re-dispatched (改派)."""
        acc, filing = self._require()
        if (repeat := self._repeat(event.event_id)) is not None:
            return repeat
        refusal = self._guard_lead(event.dispatch_id, event.unit_id, HANDLING_STATES)
        if refusal:
            return await self._refuse(event.event_id, *refusal, unit_id=event.unit_id)
        if self._state.returns >= acc.ladder.max_returns:
            return await self._refuse(
                event.event_id, RejectReason.LIMIT_REACHED,
                "city coordination assigned this unit: no further return", event.unit_id)
        self._state.returns += 1
        self._state.excluded_units.append(event.unit_id)
        await self._record("RETURNED", self._state.status, unit_id=event.unit_id,
                           dispatch_id=event.dispatch_id, reason=event.reason,
                           attributes={"returns": str(self._state.returns)})
        city = self._state.returns >= acc.ladder.max_returns
        decision = await self._route(RouteRequest(
            complaint_id=filing.complaint_id, category=acc.category, district=acc.district,
            street=acc.street, exclude=list(self._state.excluded_units)))
        if decision is None:  # pragma: no cover - the router always finds the city centre
            return self._accepted(event.event_id)
        if city:
            await self._notice("CITY_COORDINATION", self._raise_level("CITY"),
                               f"returned {self._state.returns} times: city coordination assigns "
                               f"{decision.lead.name}")
        await self._redispatch(decision.lead, f"returned: {event.reason}",
                               "city-coordination" if city else decision.rule)
        return self._accepted(event.event_id)

    @workflow.update(name=UPDATE_REQUEST_EXTENSION)
    async def request_extension(self, event: RequestExtension) -> Ack:
        """延期: at most once, T7D/T15D only, at most the tier's length again."""
        acc, _ = self._require()
        ladder = acc.ladder
        if (repeat := self._repeat(event.event_id)) is not None:
            return repeat
        refusal = self._guard_lead(event.dispatch_id, event.unit_id, WORKING_STATES)
        why = None
        tier = self._require_plan().tier
        if refusal:
            return await self._refuse(event.event_id, *refusal, unit_id=event.unit_id)
        if tier not in ladder.extension_tiers:
            why = f"tier {tier} cannot be extended"
        elif (self._state.extensions >= ladder.extension_max_per_case
              or self._state.pending_extension):
            why = "the case already had its extension"
        elif self._state.round_overdue:
            why = "the case is already overdue"
        elif not 0 < event.extra_days <= (ladder.extension_max_days or event.extra_days):
            why = f"at most {ladder.extension_max_days} extra days"
        if why:
            return await self._refuse(event.event_id, RejectReason.LIMIT_REACHED, why,
                                      event.unit_id)
        self._state.pending_extension = event
        await self._record("EXTENSION_REQUESTED", self._state.status, unit_id=event.unit_id,
                           dispatch_id=event.dispatch_id, reason=event.reason,
                           attributes={"extra_days": str(event.extra_days)})
        if event.extra_days <= ladder.extension_auto_grant_days:
            await self._decide_extension(True, event.extra_days, "rule",
                                         "within the days granted by rule")
        return self._accepted(event.event_id)

    @workflow.update(name=UPDATE_WHISTLE)
    async def whistle(self, event: Whistle) -> Ack:
        """吹哨报到: the lead calls departments in; they join as assisting units."""
        acc, filing = self._require()
        if (repeat := self._repeat(event.event_id)) is not None:
            return repeat
        refusal = self._guard_lead(event.dispatch_id, event.unit_id, WORKING_STATES)
        if refusal:
            return await self._refuse(event.event_id, *refusal, unit_id=event.unit_id)
        holding = {d.unit_id for d in active_dispatches(self._state)}
        wanted = [u for u in dict.fromkeys(event.units) if u not in holding]
        if not wanted:
            return await self._refuse(event.event_id, RejectReason.STATE_NOT_ALLOWED,
                                      "every named unit already holds the case", event.unit_id)
        decision = await self._route(RouteRequest(
            complaint_id=filing.complaint_id, category=acc.category, district=acc.district,
            street=acc.street, unit_ids=wanted))
        if decision is None:
            return await self._refuse(event.event_id, RejectReason.UNKNOWN_UNIT,
                                      f"unknown unit among {wanted}", event.unit_id)
        joined = [self._new_dispatch(u, "ASSISTING") for u in [decision.lead,
                                                                  *decision.assisting]]
        self._state.timers_version += 1
        await self._record(
            "WHISTLED", self._state.status, unit_id=event.unit_id, dispatch_id=event.dispatch_id,
            reason=event.reason, outbound=[self._issued(d) for d in joined],
            dispatch_rows=joined,
            attributes={"units": ",".join(d.unit_id for d in joined)},
        )
        return self._accepted(event.event_id)

    # --- updates from citizens (through the call centre) ---------------------------------

    @workflow.update(name=UPDATE_SUPPLEMENT)
    async def supplement(self, event: Supplement) -> Ack:
        return await self._citizen_forward(event.event_id, "SUPPLEMENTED", event.content,
                                           list(event.attachments), urge=False)

    @workflow.update(name=UPDATE_URGE)
    async def urge(self, event: Urge) -> Ack:
        return await self._citizen_forward(event.event_id, "URGED",
                                           event.content or "市民催办", [], urge=True)

    @workflow.signal(name=SIGNAL_MERGED_FILING)
    async def merged_filing(self, event: MergedFiling) -> None:
        """A duplicate filing counts as an urge of this case."""
        if self._state.status in HANDLING_STATES:
            await self._citizen_forward(event.event_id, "URGED",
                                        f"重复来电（{event.complaint_id}）：{event.content}", [],
                                        urge=True)

    @workflow.update(name=UPDATE_WITHDRAW)
    async def withdraw(self, event: Withdraw) -> Ack:
        if (repeat := self._repeat(event.event_id)) is not None:
            return repeat
        if self._state.status not in HANDLING_STATES | {Status.ACCEPTED}:
            return await self._refuse(event.event_id, RejectReason.STATE_NOT_ALLOWED,
                                      f"cannot withdraw in state {self._state.status}")
        self._state.withdrawn = event
        active = active_dispatches(self._state)
        outbound = [self._revoked(d, event.at, "withdrawn by the citizen") for d in active]
        await self._record("WITHDRAWN", Status.WITHDRAWN, outbound=outbound,
                           dispatch_rows=active, reason=event.reason)
        return self._accepted(event.event_id)

    # --- updates from supervisors and the callback centre -------------------------------

    @workflow.update(name=UPDATE_REASSIGN)
    async def reassign(self, event: Reassign) -> Ack:
        """A supervisor sends the case to another unit (the review of a return, or any time)."""
        acc, filing = self._require()
        if (repeat := self._repeat(event.event_id)) is not None:
            return repeat
        if self._state.status not in HANDLING_STATES:
            return await self._refuse(event.event_id, RejectReason.STATE_NOT_ALLOWED,
                                      f"cannot reassign in state {self._state.status}")
        decision = await self._route(RouteRequest(
            complaint_id=filing.complaint_id, category=acc.category, district=acc.district,
            street=acc.street, unit_ids=[event.unit_id]))
        if decision is None:
            return await self._refuse(event.event_id, RejectReason.UNKNOWN_UNIT,
                                      f"unknown unit {event.unit_id}")
        if decision.lead.unit_id == self._lead().unit_id:
            return await self._refuse(event.event_id, RejectReason.STATE_NOT_ALLOWED,
                                      f"{event.unit_id} already leads the case")
        await self._redispatch(decision.lead, f"reassigned by {event.decided_by}: "
                               f"{event.reason}", "supervisor")
        return self._accepted(event.event_id)

    @workflow.update(name=UPDATE_DECIDE_EXTENSION)
    async def decide_extension(self, event: ExtensionDecision) -> Ack:
        if (repeat := self._repeat(event.event_id)) is not None:
            return repeat
        pending = self._state.pending_extension
        if pending is None or self._state.status not in HANDLING_STATES:
            return await self._refuse(event.event_id, RejectReason.STATE_NOT_ALLOWED,
                                      "no extension request is pending")
        days = event.extra_days or pending.extra_days
        await self._decide_extension(event.granted, days, event.decided_by, event.reason)
        return self._accepted(event.event_id)

    @workflow.update(name=UPDATE_ESCALATE)
    async def escalate(self, event: Escalate) -> Ack:
        if (repeat := self._repeat(event.event_id)) is not None:
            return repeat
        if self._state.status not in HANDLING_STATES or self._state.level == "CITY":
            return await self._refuse(event.event_id, RejectReason.STATE_NOT_ALLOWED,
                                      f"cannot escalate at level {self._state.level} in "
                                      f"state {self._state.status}")
        level = LEVELS[LEVELS.index(self._state.level) + 1]
        await self._notice(f"{level}_SUPERVISION", self._raise_level(level),
                           f"escalated by {event.decided_by}: {event.reason}")
        return self._accepted(event.event_id)

    @workflow.update(name=UPDATE_CALLBACK)
    async def receive_callback(self, event: CallbackAnswer) -> Ack:
        if (repeat := self._repeat(event.event_id)) is not None:
            return repeat
        if self._state.status != Status.CALLBACK or self._state.answer is not None:
            return await self._refuse(event.event_id, RejectReason.STATE_NOT_ALLOWED,
                                      f"no callback is due in state {self._state.status}")
        self._state.answer = event
        attrs = {"reached": str(event.reached).lower(),
                 "responded": str(event.responded).lower(),
                 "resolved": str(event.resolved).lower(),
                 "satisfaction": event.satisfaction or ""}
        # The run acts on the answer at once (close, reopen or call again): that step
        # carries this one.
        await self._record("CALLBACK", Status.CALLBACK, attributes=attrs,
                           defer=workflow.patched(PATCH_REPLIES_RIDE_ALONG))
        return self._accepted(event.event_id)

    @workflow.query(name=QUERY_VIEW)
    def view(self) -> CaseView:
        s = self._state
        acc = s.acceptance
        lead = s.dispatches.get(s.lead_dispatch_id)
        return CaseView(
            complaint_id=self._filing.complaint_id,
            status=s.status.value, outcome=acc.outcome if acc else None,
            tier=s.plan.tier if s.plan else None, kind=acc.kind if acc else None,
            category=acc.category if acc else None, district=acc.district if acc else None,
            street=acc.street if acc else None,
            lead_unit_id=lead.unit_id if lead else None,
            dispatch_id=lead.dispatch_id if lead else None,
            sign_by=lead.sign_by if lead else None, due_at=lead.due_at if lead else None,
            overdue=s.overdue, escalation_level=s.level, urges=s.urges,
            timeline=list(s.timeline), returns=s.returns, reopens=s.reopens,
            extensions=s.extensions, extension_pending=s.pending_extension is not None,
            dispatches=list(s.dispatches.values()),
        )

    # --- helpers --------------------------------------------------------------------------

    def _guard_lead(
        self, dispatch_id: str, unit_id: str, states: set[Status]
    ) -> tuple[RejectReason, str] | None:
        lead = self._state.dispatches.get(self._state.lead_dispatch_id)
        if lead is None or lead.dispatch_id != dispatch_id or lead.unit_id != unit_id:
            return (RejectReason.UNIT_NOT_HOLDING,
                    f"unit {unit_id} does not lead through dispatch {dispatch_id}")
        if self._state.status not in states:
            return RejectReason.STATE_NOT_ALLOWED, f"not allowed in state {self._state.status}"
        return None

    async def _unit_reply(
        self, event_id: str, dispatch_id: str, unit_id: str, event_type: str, *,
        lead_states: set[Status], assisting_ok: Callable[[DispatchState], bool],
        apply: Callable[[DispatchState], Status], attributes: dict[str, str] | None = None,
        reason: str | None = None, also_revoke: list[DispatchState] | None = None,
        revoke_reason: str = "", defer: bool = False,
    ) -> Ack:
        """Guard a unit's reply (holder, state), apply it and record the step."""
        if (repeat := self._repeat(event_id)) is not None:
            return repeat
        d = self._state.dispatches.get(dispatch_id)
        if d is None or d.unit_id != unit_id or not d.active:
            return await self._refuse(
                event_id, RejectReason.UNIT_NOT_HOLDING,
                f"unit {unit_id} does not hold dispatch {dispatch_id}", unit_id=unit_id,
            )
        allowed = self._state.status in lead_states if d.role == "LEAD" else (
            self._state.status in HANDLING_STATES and assisting_ok(d))
        if not allowed:
            return await self._refuse(
                event_id, RejectReason.STATE_NOT_ALLOWED,
                f"{event_type} not allowed in state {self._state.status}", unit_id=unit_id,
            )
        status = apply(d)
        outbound = []
        for other in also_revoke or []:
            outbound.append(self._revoked(other, workflow.now(), revoke_reason))
        await self._record(event_type, status, unit_id=unit_id, dispatch_id=dispatch_id,
                           dispatch_rows=[d, *(also_revoke or [])], attributes=attributes,
                           reason=reason, outbound=outbound, defer=defer)
        return self._accepted(event_id)

    async def _citizen_forward(
        self, event_id: str, event_type: str, content: str, attachments: list[str], urge: bool
    ) -> Ack:
        """Supplements and urges go to every unit holding the case; urges may escalate."""
        if (repeat := self._repeat(event_id)) is not None:
            return repeat
        if self._state.status in ACCEPTING_STATES and workflow.patched(PATCH_EARLY_CITIZEN):
            # The call centre sends a supplement right behind its filing: it is the
            # citizen's, and must reach the unit, not fail or be refused for being early.
            await workflow.wait_condition(lambda: self._state.status not in ACCEPTING_STATES)
            if (repeat := self._repeat(event_id)) is not None:
                return repeat
        acc, filing = self._require()
        if self._state.status not in HANDLING_STATES:
            return await self._refuse(event_id, RejectReason.STATE_NOT_ALLOWED,
                                      f"{event_type} not allowed in state {self._state.status}")
        lead = self._lead()
        escalate = False
        if urge:
            self._state.urges += 1
            escalate = (self._state.urges % acc.ladder.urges_to_escalate == 0
                        and self._state.level != "CITY")
        now = _ms(workflow.now())
        outbound = [
            ("SupplementForwarded", d.unit_id, {
                "complaint_id": filing.complaint_id, "dispatch_id": d.dispatch_id,
                "unit_id": d.unit_id, "at": now, "content": content,
                "attachments": attachments, "urge": urge,
            })
            for d in active_dispatches(self._state)
        ]
        await self._record(event_type, self._state.status, unit_id=lead.unit_id,
                           dispatch_id=lead.dispatch_id, outbound=outbound,
                           attributes={"urges": str(self._state.urges)})
        # Re-read the level: concurrent urges may have raised it while this one recorded.
        # (Before, a case already at CITY here failed its task for ever; a history that
        # completed never saw CITY here, so old histories replay unchanged.)
        if escalate and self._state.level != LEVELS[-1]:
            level = LEVELS[LEVELS.index(self._state.level) + 1]
            await self._notice("URGED", self._raise_level(level),
                               f"urged {self._state.urges} times by the citizen: "
                               f"{level} supervision")
        return self._accepted(event_id)

    async def _decide_extension(self, granted: bool, days: int, by: str, reason: str) -> None:
        pending = self._state.pending_extension
        assert pending is not None
        self._state.pending_extension = None
        lead = self._lead()
        plan = self._require_plan()
        if granted:
            extended: TierPlan = await workflow.execute_activity(
                "plan", PlanRequest(tier=plan.tier, start=lead.issued_at, extra_days=days,
                                    due_at=lead.due_at),
                result_type=TierPlan, **ROUTE_OPTIONS,
            )
            self._state.extensions += 1
            # Every pending timer derives from the lead's deadline: moving it moves them.
            lead.due_at = extended.due_at
            for d in active_dispatches(self._state):
                d.due_at = extended.due_at
            self._state.timers_version += 1
        _, filing = self._require()
        decided = {
            "complaint_id": filing.complaint_id, "dispatch_id": lead.dispatch_id,
            "unit_id": lead.unit_id, "at": _ms(workflow.now()), "granted": granted,
            "extra_days": days, "due_at": _ms(lead.due_at) if granted else None,
            "reason": reason or ("granted" if granted else "denied"), "decided_by": by,
        }
        await self._record(
            "EXTENSION_DECIDED", self._state.status, unit_id=lead.unit_id,
            dispatch_id=lead.dispatch_id, reason=reason,
            outbound=[("ExtensionDecided", lead.unit_id, decided)], dispatch_rows=[lead],
            attributes={"granted": str(granted).lower(), "extra_days": str(days),
                        "decided_by": by, "due_at": lead.due_at.isoformat()},
        )

    async def _route(self, request: RouteRequest) -> RouteResult | None:
        """Ask the routing activity; None when it names a unit that does not exist."""
        try:
            result: RouteResult = await workflow.execute_activity(
                "route", request, result_type=RouteResult, **ROUTE_OPTIONS)
            return result
        except ActivityError as err:
            if isinstance(err.cause, ApplicationError) and err.cause.type == "UnknownUnit":
                return None
            raise

    async def _redispatch(self, unit: Unit, reason: str, rule: str) -> None:
        """Revoke the lead's dispatch and issue a new one; the case's deadline stays."""
        old = self._lead()
        old.revoked_at = workflow.now()
        new = self._new_dispatch(unit, "LEAD", due_at=old.due_at)
        self._state.lead_dispatch_id = new.dispatch_id
        self._state.timers_version += 1
        await self._record(
            "REDISPATCHED", Status.DISPATCHED, unit_id=new.unit_id,
            dispatch_id=new.dispatch_id, reason=reason,
            outbound=[self._revoked(old, old.revoked_at, reason), self._issued(new)],
            dispatch_rows=[old, new],
            attributes={"from_unit": old.unit_id, "rule": rule, "unit_name": new.unit_name},
        )

    def _new_dispatch(self, unit: Unit, role: str,
                      due_at: datetime | None = None) -> DispatchState:
        _, filing = self._require()
        plan = self._require_plan()
        now = workflow.now()
        self._state.dispatch_count += 1
        first = self._state.dispatch_count == 1
        d = DispatchState(
            dispatch_id=f"{filing.complaint_id}-d{self._state.dispatch_count}",
            unit_id=unit.unit_id, unit_name=unit.name, role=role, issued_at=now,
            # A unit's sign-for window opens when it receives the case; the completion
            # deadline is the citizen's, counted from acceptance.
            sign_by=now + timedelta(seconds=plan.sign_for_seconds),
            due_at=due_at or (plan.due_at if first or self._state.reopens else
                              self._lead().due_at),
        )
        self._state.dispatches[d.dispatch_id] = d
        return d

    def _issued(self, d: DispatchState, reopened: bool = False) -> tuple[str, str, dict[str, Any]]:
        acc, filing = self._require()
        return ("DispatchIssued", d.unit_id, {
            "complaint_id": filing.complaint_id, "dispatch_id": d.dispatch_id,
            "unit_id": d.unit_id, "unit_name": d.unit_name, "role": d.role,
            "issued_at": _ms(d.issued_at), "sign_by": _ms(d.sign_by), "due_at": _ms(d.due_at),
            "tier": self._require_plan().tier, "kind": acc.kind, "category": acc.category,
            "content": filing.content, "district": acc.district, "street": acc.street,
            "address": filing.address,
            "caller_phone": None if filing.anonymous else filing.caller_phone,
            "attachments": list(filing.attachments), "reopened": reopened,
        })

    def _revoked(self, d: DispatchState, at: datetime,
                 reason: str) -> tuple[str, str, dict[str, Any]]:
        d.revoked_at = d.revoked_at or at
        return ("DispatchRevoked", d.unit_id, {
            "complaint_id": self._filing.complaint_id, "dispatch_id": d.dispatch_id,
            "unit_id": d.unit_id, "at": _ms(at), "reason": reason,
        })

    def _dispatch_attributes(self, lead: DispatchState,
                             assisting: list[DispatchState]) -> dict[str, str]:
        attrs = {"unit_name": lead.unit_name, "due_at": lead.due_at.isoformat()}
        if assisting:
            attrs["assisting"] = ",".join(d.unit_id for d in assisting)
        return attrs

    def _lead(self) -> DispatchState:
        return self._state.dispatches[self._state.lead_dispatch_id]

    def _accepted(self, event_id: str) -> Ack:
        ack = Ack(accepted=True)
        self._state.remember(event_id, ack)
        return ack

    def _repeat(self, event_id: str) -> Ack | None:
        """The answer already given to ``event_id``, marked as a duplicate (Kafka redelivers)."""
        ack = self._state.seen.get(event_id)
        return None if ack is None else replace(ack, duplicate=True)

    async def _refuse(
        self, event_id: str, reason: RejectReason, detail: str, unit_id: str | None = None
    ) -> Ack:
        """Record a refused event on the case's lifecycle; the state stays as it was."""
        if self._state.status in (Status.EVALUATED, Status.CLOSED):
            # The case is closing: CLOSED stays its last lifecycle event.
            ack = Ack(accepted=False, reason=RejectReason.CASE_CLOSED.value,
                      detail=f"the case is closed ({detail})")
            self._state.remember(event_id, ack)
            return ack
        ack = Ack(accepted=False, reason=reason.value, detail=detail)
        self._state.remember(event_id, ack)
        await self._record("REPLY_REFUSED", self._state.status, unit_id=unit_id, reason=detail,
                           attributes={"refused_event_id": event_id, "code": reason.value})
        return ack

    def _require(self) -> tuple[Acceptance, Filing]:
        if self._state.acceptance is None:
            # Only an update can get here (run calls this after accept): a reply or a
            # supervisor's decision before the case was accepted. Failing the update,
            # not the workflow task (an AssertionError would retry the task for ever).
            raise ApplicationError("the case is still being accepted",
                                   type=RejectReason.STATE_NOT_ALLOWED.value,
                                   non_retryable=True)
        return self._state.acceptance, self._filing

    def _require_plan(self) -> TierPlan:
        assert self._state.plan is not None
        return self._state.plan

    async def _record(
        self, event_type: str, status: Status, *, unit_id: str | None = None,
        dispatch_id: str | None = None, reason: str | None = None,
        outbound: list[OutboundSpec] | None = None,
        dispatch_rows: list[DispatchState] | None = None,
        evaluation: EvaluationRow | None = None, attributes: dict[str, str] | None = None,
        defer: bool = False,
    ) -> None:
        """Make one lifecycle step durable: its lifecycle event, records and ledger rows.

        ``defer``: only when the next step follows at once, with no wait between: this
        step then goes out with that one, in one activity (records in seq order). A
        continue-as-new in between sends it alone first (``_flush_deferred``).
        """
        # The state changes now, so guards of updates arriving meanwhile see it.
        self._state.status = status
        async with self._record_lock:
            state = self._state
            state.seq += 1
            facts = StepFacts(
                event_type=event_type, status=status, unit_id=unit_id, dispatch_id=dispatch_id,
                reason=reason, outbound=list(outbound or []),
                dispatch_rows=list(dispatch_rows or []), evaluation=evaluation,
                attributes=dict(attributes or {}),
            )
            step = build_step(state, self._filing, facts, workflow.now())
            state.timeline.extend(step.lifecycle)
            if not defer:
                self._upsert_search_attributes()
            held, state.deferred = state.deferred, None
            if held is not None:
                step = merge_steps(held, step)
            if defer:
                state.deferred = step
                return
            await self._send(step)

    async def _flush_deferred(self) -> None:
        """A held step goes out alone when the run ends before the step meant to carry it."""
        async with self._record_lock:
            held, self._state.deferred = self._state.deferred, None
            if held is not None:
                self._upsert_search_attributes()
                await self._send(held)

    async def _send(self, step: StepRecord) -> None:
        try:
            await workflow.execute_activity("record_step", step, **RECORD_OPTIONS)
        except ActivityError as err:
            # Retries ran out or the step is invalid: a bug or a long outage, not a
            # business outcome. Failing the task (not the case) lets a fix resume it.
            raise RuntimeError(f"record_step {step.step} failed: {err.cause or err}") from err

    def _upsert_search_attributes(self) -> None:
        """Index what supervisors filter on; only changed values, to keep history short."""
        acc = self._state.acceptance
        wanted: dict[Any, Any] = {
            sa.STATUS: self._state.status.value, sa.OVERDUE: self._state.overdue,
            sa.ESCALATION_LEVEL: self._state.level,
        }
        if acc is not None:
            wanted[sa.TIER] = acc.tier
            wanted[sa.CATEGORY] = acc.category
            if acc.district:
                wanted[sa.DISTRICT] = acc.district
            lead_unit = lead_unit_id(self._state)
            if lead_unit:
                wanted[sa.LEAD_UNIT] = lead_unit
        indexed = self._state.indexed
        changed = [k.value_set(v) for k, v in wanted.items() if indexed.get(k.name) != v]
        if changed:
            workflow.upsert_search_attributes(changed)
            self._state.indexed.update({k.name: v for k, v in wanted.items()})

