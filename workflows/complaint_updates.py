"""The case's update handlers: replies from units, the citizen, supervisors, the callback centre.

Each handler de-duplicates by event id, guards who may send it in which state, applies
it and records the step; a refusal is an :class:`Ack` with its reason, recorded on the
case's lifecycle, and the state stays as it was.
No ``from __future__ import annotations`` (see ``workflows.complaint``).
"""

from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.ladder import active_dispatches
    from workflows.model import (
        LEVELS,
        SIGNAL_MERGED_FILING,
        UPDATE_CALLBACK,
        UPDATE_COMPLETE,
        UPDATE_DECIDE_DISPATCH,
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
        Ack,
        CallbackAnswer,
        Complete,
        DispatchDecision,
        DispatchState,
        Escalate,
        ExtensionDecision,
        MergedFiling,
        PlanRequest,
        Reassign,
        RejectReason,
        ReportProgress,
        RequestExtension,
        ReturnDispatch,
        RouteRequest,
        SignFor,
        Status,
        Supplement,
        TierPlan,
        Urge,
        Whistle,
        Withdraw,
    )

from workflows.complaint_base import (
    ACCEPTING_STATES,
    HANDLING_STATES,
    LEVELS,
    PATCH_EARLY_CITIZEN,
    PATCH_REPLIES_RIDE_ALONG,
    ROUTE_OPTIONS,
    WORKING_STATES,
    ComplaintBase,
    _ms,
)


class CaseUpdates(ComplaintBase):
    """Updates and signals: how the world outside changes a running case."""

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
        if event.attachments:
            # Where the case page and the callback centre find the photos of the result.
            attrs["attachments"] = " ".join(event.attachments)
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
            defer=lead and self._patched(PATCH_REPLIES_RIDE_ALONG),
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

    @workflow.update(name=UPDATE_DECIDE_DISPATCH)
    async def decide_dispatch(self, event: DispatchDecision) -> Ack:
        """派单复核: a dispatcher's answer for a case waiting at the dispatch desk."""
        if (repeat := self._repeat(event.event_id)) is not None:
            return repeat
        if self._state.status != Status.AWAITING_REVIEW or self._state.review_deciding:
            return await self._refuse(
                event.event_id, RejectReason.STATE_NOT_ALLOWED,
                f"the case is not awaiting review (state {self._state.status})")
        self._state.review_deciding = True
        try:
            settled = await self._settle_review(
                event.decision, by=event.dispatcher_id, unit_id=event.unit_id, tier=event.tier,
                category=event.category, redirect_to=event.redirect_to, note=event.note)
        finally:
            self._state.review_deciding = False
        if not isinstance(settled, Acceptance):
            return await self._refuse(event.event_id, *settled)
        if self._state.withdrawn is not None:  # withdrawn while the decision was applied
            return await self._refuse(event.event_id, RejectReason.STATE_NOT_ALLOWED,
                                      "the citizen withdrew the request")
        self._apply_review(settled)
        attrs = {"decision": event.decision, "dispatcher_id": event.dispatcher_id}
        if settled.lead is not None and event.decision == "DISPATCH":
            attrs["unit_id"] = settled.lead.unit_id
        # The run acts on the decision at once (dispatch or close): that step carries this.
        await self._record("REVIEW_DECIDED", Status.ACCEPTED, reason=event.note,
                           attributes=attrs, defer=True)
        return self._accepted(event.event_id)

    @workflow.update(name=UPDATE_WITHDRAW)
    async def withdraw(self, event: Withdraw) -> Ack:
        if (repeat := self._repeat(event.event_id)) is not None:
            return repeat
        if self._state.status not in HANDLING_STATES | {Status.ACCEPTED,
                                                        Status.AWAITING_REVIEW}:
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
                           defer=self._patched(PATCH_REPLIES_RIDE_ALONG))
        return self._accepted(event.event_id)

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
        if self._state.status in ACCEPTING_STATES and self._patched(PATCH_EARLY_CITIZEN):
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
