"""``ComplaintWorkflow``: one citizen request from filing to evaluation (DESIGN.md).

``run`` reads like the lifecycle: accept → dispatch → handle → callback → (reopen →
handle → callback) → evaluate. Every timer of a handled case comes from one place,
:func:`workflows.ladder.next_checkpoint` (the escalation ladder), and is climbed by
``_escalate`` here. Everything that leaves the workflow (Kafka records, ledger rows) goes
through the ``record_step`` activity, one call per step, so a step is durable once and
repeatable without effect.

The class reads in three files: this one (the lifecycle and the ladder), the update
handlers in ``workflows.complaint_updates`` (units, citizens, supervisors, the callback
centre), and the moves both share in ``workflows.complaint_base`` (recording a step,
dispatch bookkeeping, refusals). The case's state is one ``CaseState``.

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

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.evaluation import CaseFacts, score_case
    from workflows.ids import complaint_workflow_id
    from workflows.ladder import next_checkpoint
    from workflows.model import (
        QUERY_VIEW,
        SIGNAL_MERGED_FILING,
        TIER_ORDER,
        Acceptance,
        AcceptRequest,
        CaseResult,
        CaseView,
        Checkpoint,
        EvaluationRow,
        Filing,
        MergedFiling,
        Outcome,
        PlanRequest,
        Status,
        TierPlan,
        Unit,
    )
    from workflows.state import CaseState, restore, snapshot

from workflows.complaint_base import (
    ACCEPT_OPTIONS,
    HISTORY_EVENTS_LIMIT,
    PATCH_FEWER_STEPS,
    PATCH_LOCAL_ACCEPT,
    PATCH_REOPEN,
    ROUTE_OPTIONS,
    STATUS_OF_OUTCOME,
)
from workflows.complaint_updates import CaseUpdates


class _ContinueAsNew(Exception):
    """Raised inside a stage when the server suggests a fresh run."""


@workflow.defn(name="ComplaintWorkflow")
class ComplaintWorkflow(CaseUpdates):
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
                if acc.outcome == Outcome.REVIEW:
                    acc = await self.review()
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
        self._state.accepted_at = workflow.now()
        request = AcceptRequest(filing, self._state.accepted_at)
        acc: Acceptance
        if self._patched(PATCH_LOCAL_ACCEPT):
            acc = await workflow.execute_local_activity(
                "accept", request, result_type=Acceptance, **ACCEPT_OPTIONS)
        else:
            acc = await workflow.execute_activity(
                "accept", request, result_type=Acceptance, **ACCEPT_OPTIONS)
        self._state.acceptance = acc
        self._state.plan = acc.plan
        attrs = {"outcome": acc.outcome, "reason": acc.reason,
                 "hints_used": ",".join(acc.hints_used)}
        if acc.redirect_to:
            attrs["redirect_to"] = acc.redirect_to
        if acc.merge_into:
            attrs["merged_into"] = acc.merge_into
        status = STATUS_OF_OUTCOME.get(Outcome(acc.outcome), Status.ACCEPTED)
        event = {Outcome.DISPATCH: "ACCEPTED", Outcome.REVIEW: "REVIEW_REQUESTED"}.get(
            Outcome(acc.outcome), acc.outcome)
        # A dispatched case records DISPATCHED at once: ACCEPTED goes out with it.
        defer = acc.outcome == Outcome.DISPATCH and self._patched(PATCH_FEWER_STEPS)
        if acc.outcome == Outcome.REVIEW:
            attrs["confidence"] = f"{acc.confidence:g}"
            attrs["review_by"] = (workflow.now()
                                  + timedelta(seconds=acc.review_seconds)).isoformat()
        review = acc.outcome == Outcome.REVIEW
        await self._record(event, status, attributes=attrs, defer=defer,
                           reason=acc.reason if review else None,
                           candidates=list(acc.candidates) if review else None)
        return acc

    async def review(self) -> Acceptance:
        """Unsure: a dispatcher decides (派单复核, ``decide_dispatch``); when the window
        ends first, the top candidate is dispatched and the case marked so. A case
        withdrawn meanwhile stays undispatched."""
        acc, _ = self._require()
        window_end = workflow.now() + timedelta(seconds=acc.review_seconds)
        decided = await self._sleep_until(window_end, self._reviewed)
        if not decided:
            # A decision already being applied wins over the window's end.
            await workflow.wait_condition(lambda: not self._state.review_deciding)
        acc, _ = self._require()
        if self._state.withdrawn is not None or acc.outcome != Outcome.REVIEW:
            if acc.outcome not in (Outcome.REVIEW, Outcome.DISPATCH):
                await self._record(acc.outcome, STATUS_OF_OUTCOME[Outcome(acc.outcome)],
                                   reason=acc.reason)
            return acc
        top = acc.candidates[0] if acc.candidates else None
        settled = await self._settle_review("DISPATCH", unit_id=top.unit_id if top else None,
                                            by="review-window")
        if not isinstance(settled, Acceptance):
            # accept always names candidates, and they are units of the registry: a bug.
            # Failing the task (not the case) lets a fix resume it.
            raise RuntimeError(f"the review window ended and its top candidate cannot be "
                               f"dispatched: {settled[1]}")
        self._apply_review(settled)
        await self._record("REVIEW_EXPIRED", Status.ACCEPTED, defer=True,
                           reason="no dispatcher decided in time: the top candidate leads",
                           attributes={"unit_id": settled.lead.unit_id if settled.lead else ""})
        return settled

    def _reviewed(self) -> bool:
        acc = self._state.acceptance
        return ((acc is not None and acc.outcome != Outcome.REVIEW)
                or self._state.withdrawn is not None)

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
                and self._patched(PATCH_REOPEN))

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
                defer=self._patched(PATCH_FEWER_STEPS),
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
