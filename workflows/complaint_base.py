"""What every step of a case does alike: record it, dispatch and revoke, refuse.

:class:`ComplaintBase` holds the case's state (one :class:`~workflows.state.CaseState`)
and the moves the lifecycle (``workflows.complaint``) and the update handlers
(``workflows.complaint_updates``) share: ``_record`` makes one lifecycle step durable
through the ``record_step`` activity; dispatch bookkeeping; refusals with their reason.
No ``from __future__ import annotations`` (see ``workflows.complaint``).
"""

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import search_attributes as sa
    from workflows.ids import complaint_workflow_id
    from workflows.model import (
        LEVELS,
        Acceptance,
        Ack,
        DispatchState,
        EvaluationRow,
        Filing,
        Outcome,
        PlanRequest,
        RejectReason,
        ReviewCandidate,
        RouteRequest,
        RouteResult,
        Status,
        StepRecord,
        TierPlan,
        Unit,
    )
    from workflows.state import CaseState
    from workflows.steps import (
        LEAN_DISPATCHES,
        LEAN_EVENTS,
        LEAN_IDS,
        LEAN_REFS,
        NO_LEDGER_BASE,
        OutboundSpec,
        StepFacts,
        build_step,
        ledger_after,
        merge_steps,
        slim_step,
        step_name,
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
# The index changes only when a supervisor's filter would (the desk, dispatch, lead
# unit, level, overdue, close), not at every step: 5 status upserts of a happy-path case
# become 2 (dispatched, closed). See workflows/search_attributes.py. It also stands for
# every patch above: a case recorded with it writes one version marker, not one per
# patch (``ComplaintBase._patched``).
PATCH_LEAN_INDEX = "lean-index"
# record_step gets its step lean (``workflows.steps.slim_step``: no complaint id on every
# row, no case row fields the last lifecycle event says, no classification repeated by a
# later event of the same step), and answers a lean step with nothing. Like
# PATCH_LEAN_INDEX before it, it stands for every older patch: one marker per case.
PATCH_LEAN_STEPS = "lean-steps"
# accept runs as a local activity: its result is a marker in the history, its input (the
# filing, already the workflow's input) is not there twice, and the first record_step
# goes out in the workflow task that started the case. Stands for every older patch.
PATCH_LOCAL_ACCEPT = "local-accept"
# A case does not index its close (HotlineStatus=CLOSED): Temporal's ExecutionStatus says
# it, and a supervisor's filter for open cases names ExecutionStatus = 'Running'
# (workflows/search_attributes.py). One billed upsert fewer per case. Stands for every
# older patch.
PATCH_CLOSE_UNINDEXED = "close-unindexed"
# A lean step also leaves out the case's and dispatches' columns unchanged since the last
# recorded step, and record_step reads them from the ledger (``workflows.steps``:
# ``slim_step`` with the ledger's rows). Where the ledger does not hold that step's rows
# (restored, rebuilt), record_step says so and the step goes again without them. Stands
# for every older patch.
PATCH_DELTA_STEPS = "delta-steps"
# Steps go in the events form (``workflows.steps.LEAN_EVENTS``): a step's later events
# without the time of the one before, statuses their type names left out, the EVALUATED
# event's attributes and the evaluation's time, lead unit and overdue said once, the
# close time by the CLOSED event alone, no step name. Only record_step's input changes
# (no command does), but the patch says which histories hold which form. Stands for
# every older patch.
PATCH_LEAN_EVENTS = "lean-events"
# Steps go in the dispatches form (``workflows.steps.LEAN_DISPATCHES``): a step's new
# dispatch rows say their common times once, its DispatchIssued records leave out their
# dispatch id and role (the unit's row says them), the usual empty values, and for an
# assisting unit the filing the lead's record of the step already says; a DispatchRevoked
# its time (the row's). Only record_step's input changes. Stands for every older patch.
PATCH_LEAN_DISPATCHES = "lean-dispatches"
# Steps go in the ids form (``workflows.steps.LEAN_IDS``): no complaint id (record_step
# reads it from the workflow's id), no event id of the step's own seq on its records, a
# new dispatch's issue time by the step's, a dispatch event's deadline by the case row.
# Only record_step's input changes. Stands for every older patch.
PATCH_LEAN_IDS = "lean-ids"
# Steps go in the references form (``workflows.steps.LEAN_REFS``): dispatch ids as their
# suffix after the complaint id, an event's unit only where its dispatch's row in the
# step does not say it, no unchanged case row in a delta step. Only record_step's input
# changes. Stands for every older patch.
PATCH_LEAN_REFS = "lean-refs"
# Newest first: a history holding one of these markers has every patch after it here,
# and every patch older than them all (``ComplaintBase._patched``).
UMBRELLA_PATCHES = (PATCH_LEAN_REFS, PATCH_LEAN_IDS, PATCH_LEAN_DISPATCHES,
                    PATCH_LEAN_EVENTS, PATCH_DELTA_STEPS, PATCH_CLOSE_UNINDEXED,
                    PATCH_LOCAL_ACCEPT, PATCH_LEAN_STEPS, PATCH_LEAN_INDEX)
# What a case started on each ``Filing.workflow_version`` holds without asking
# ``workflow.patched``: version 1, every patch above (a new patch after it is asked as
# usual, or goes with a version 2 listed here).
PATCHES_OF_VERSION: dict[int, frozenset[str]] = {
    1: frozenset({PATCH_REOPEN, PATCH_FEWER_STEPS, PATCH_EARLY_CITIZEN,
                  PATCH_REPLIES_RIDE_ALONG, *UMBRELLA_PATCHES}),
}
# AWAITING_REVIEW too: a supplement behind a filing that waits at the dispatch desk
# reaches the unit it is then dispatched to. (No landed history has that state.)
ACCEPTING_STATES = {Status.FILED, Status.ACCEPTED, Status.AWAITING_REVIEW}
# The state a case closes in when acceptance (or the dispatch desk) does not dispatch it.
STATUS_OF_OUTCOME = {
    Outcome.ANSWERED_DIRECTLY: Status.ANSWERED_DIRECTLY,
    Outcome.REJECTED: Status.REJECTED,
    Outcome.REDIRECTED: Status.REJECTED,
    Outcome.MERGED: Status.MERGED,
    Outcome.REVIEW: Status.AWAITING_REVIEW,
}


def _ms(at: datetime) -> int:
    """Avro timestamp-millis: outbound fields travel to the activity as JSON."""
    return int(at.timestamp() * 1000)


class ComplaintBase:
    """The case's state and the moves its lifecycle and its update handlers share."""

    _filing: Filing
    _state: CaseState
    _record_lock: asyncio.Lock

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

    async def _settle_review(
        self, decision: str, *, by: str, unit_id: str | None = None, tier: str | None = None,
        category: str | None = None, redirect_to: str | None = None, note: str | None = None,
    ) -> Acceptance | tuple[RejectReason, str]:
        """The acceptance a dispatcher's decision (or the window's end) makes of a case at
        the desk, or why it cannot be applied. The deadline still counts from acceptance.
        Nothing of the case changes here: the caller applies it (``_apply_review``)."""
        acc, filing = self._require()
        said = f"decided by {by}" + (f": {note}" if note else "")
        if decision == "ANSWER_DIRECTLY":
            return replace(acc, outcome=Outcome.ANSWERED_DIRECTLY.value, reason=said)
        if decision == "REJECT":
            return replace(acc, outcome=Outcome.REJECTED.value, reason=said)
        if decision == "REDIRECT":
            if not redirect_to:
                return RejectReason.STATE_NOT_ALLOWED, "REDIRECT names no service (redirect_to)"
            return replace(acc, outcome=Outcome.REDIRECTED.value, redirect_to=redirect_to,
                           reason=f"redirected to {redirect_to}, {said}")
        top = acc.candidates[0] if acc.candidates else None
        unit_id = unit_id or (top.unit_id if top else None)
        if unit_id is None:
            return RejectReason.UNKNOWN_UNIT, "no unit named and no candidate to take"
        category = category or acc.category
        routed = await self._route(RouteRequest(
            complaint_id=filing.complaint_id, category=category, district=acc.district,
            street=acc.street, unit_ids=[unit_id]))
        if routed is None:
            return RejectReason.UNKNOWN_UNIT, f"unknown unit {unit_id}"
        tier = tier or acc.tier
        plan = acc.plan
        if tier != acc.tier:
            assert self._state.accepted_at is not None
            plan = await workflow.execute_activity(
                "plan", PlanRequest(tier=tier, start=self._state.accepted_at),
                result_type=TierPlan, **ROUTE_OPTIONS)
        return replace(
            acc, outcome=Outcome.DISPATCH.value, lead=routed.lead, assisting=[], tier=tier,
            plan=plan, category=category,
            category_name=acc.category_name if category == acc.category else category,
            route_rule=f"dispatch desk ({by})", reason=said)

    def _apply_review(self, settled: Acceptance) -> None:
        """The desk's decision becomes the case's acceptance, and its deadline plan."""
        self._state.acceptance = settled
        self._state.plan = settled.plan

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
        defer: bool = False, candidates: list[ReviewCandidate] | None = None,
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
                attributes=dict(attributes or {}), candidates=candidates,
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
        full, form = step, 0
        if self._patched(PATCH_LEAN_STEPS):
            delta = self._patched(PATCH_DELTA_STEPS)
            # Asked after delta-steps, newest first: a history from before a form meets no
            # marker of it.
            if delta:
                form = (LEAN_REFS if self._patched(PATCH_LEAN_REFS) else
                        LEAN_IDS if self._patched(PATCH_LEAN_IDS) else
                        LEAN_DISPATCHES if self._patched(PATCH_LEAN_DISPATCHES) else
                        LEAN_EVENTS if self._patched(PATCH_LEAN_EVENTS) else 0)
            step = self._without_id(slim_step(full, self._state.ledger if delta else None,
                                              form))
            if delta:
                # Before the activity runs: an update recording meanwhile waits for the
                # lock, and a failed step fails the task, so nothing reads it too early.
                self._state.ledger = ledger_after(self._state.ledger, full)
        try:
            await workflow.execute_activity("record_step", step, **RECORD_OPTIONS)
        except ActivityError as err:
            if (step.base and isinstance(err.cause, ApplicationError)
                    and err.cause.type == NO_LEDGER_BASE):
                # The ledger lacks the rows the step left out: send it with them, and from
                # now on count only on the rows that whole step writes (a restored ledger
                # may lack or hold older versions of the others: they go whole next time).
                await self._send_alone(self._without_id(slim_step(full, form=form)))
                self._state.ledger = ledger_after(None, full)
                return
            # Retries ran out or the step is invalid: a bug or a long outage, not a
            # business outcome. Failing the task (not the case) lets a fix resume it.
            raise RuntimeError(f"record_step {full.step} failed: {err.cause or err}") from err

    def _without_id(self, step: StepRecord) -> StepRecord:
        """A step in the ids form without its complaint id, which ``record_step`` reads
        from this workflow's id (``workflows.steps.with_complaint_id``): only where that id
        spells it (a case started under another id keeps it)."""
        if (step.form >= LEAN_IDS and workflow.info().workflow_id
                == complaint_workflow_id(step.complaint_id)):
            return replace(step, complaint_id="")
        return step

    async def _send_alone(self, step: StepRecord) -> None:
        try:
            await workflow.execute_activity("record_step", step, **RECORD_OPTIONS)
        except ActivityError as err:
            raise RuntimeError(
                f"record_step {step_name(step)} failed: {err.cause or err}") from err

    def _patched(self, patch_id: str) -> bool:
        """``workflow.patched(patch_id)``, or a newer patch of ``UMBRELLA_PATCHES``; always
        true on a case started for a ``workflow_version`` that holds the patch.

        Code that records an umbrella patch has every older patch, so where a history has
        it, the older ones hold without a marker of their own: a fresh case writes one
        version marker (and one TemporalChangeVersion upsert) instead of one per patch.
        A history recorded before (v1–v7 in tests/histories) has the older patch's marker
        where its code asked, and replay must meet it there: asked oldest first when
        replaying. Live, the newest is asked first, so an older one is asked only in a run
        whose history already said no to the newer ones.
        """
        version = self._filing.workflow_version
        if any(patch_id in held for v, held in PATCHES_OF_VERSION.items() if v <= version):
            return True  # started for code that has it: no marker, no upsert
        newer = UMBRELLA_PATCHES[:UMBRELLA_PATCHES.index(patch_id)] if (
            patch_id in UMBRELLA_PATCHES) else UMBRELLA_PATCHES
        order = (patch_id, *reversed(newer)) if workflow.unsafe.is_replaying() else (
            *newer, patch_id)
        # Lazily, in order: each call asked may write a marker.
        return any(workflow.patched(p) for p in order)

    def _upsert_search_attributes(self) -> None:
        """Index what supervisors filter on; only changed values, to keep history short.

        Histories recorded before ``PATCH_LEAN_INDEX`` indexed every status change and
        replay so; a case on it indexes phases only (``search_attributes.PHASE``), and on
        ``PATCH_CLOSE_UNINDEXED`` not its close.
        """
        lean = self._patched(PATCH_LEAN_INDEX)
        # Asked only at the close, so a history from before it meets no marker elsewhere.
        close = not (lean and self._state.status == Status.CLOSED
                     and self._patched(PATCH_CLOSE_UNINDEXED))
        changed = sa.changed(self._state, lean=lean, close=close)
        if changed:
            workflow.upsert_search_attributes([k.value_set(v) for k, v in changed.items()])
            self._state.indexed.update({k.name: v for k, v in changed.items()})
