"""The demo's unit systems: the departments' own systems answering their dispatches.

They read ``hotline.dispatches`` and sign for, return, report progress on, whistle
departments in for, ask an extension of and complete each dispatch at wall-clock times
derived from its ``sign_by`` / ``due_at`` (already time-scaled by the worker) and the
case's plan; assisting units sign and reply.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from schemas.codec import DecodeError, decode
from workers.devstack.city_plans import CasePlan, ExtensionPlan, HandlingPlan, WhistlePlan
from workers.devstack.demo_actors import (
    MIN_REACTION_S,
    REPLY_GAP_S,
    ActorContext,
    Scheduler,
    poll_records,
    publish,
    tail_consumer,
    utc_now,
)

# An assisting unit replies when the lead has used this share of its own handling time.
ASSIST_SHARE = 0.6
ASSIST_REPLY = "协办单位已配合主办单位现场核查，职责范围内的事项已处理完毕。"
# After a whistle the lead completes only once the units it called in have been
# dispatched and have replied, or this long after the whistle should the case refuse it.
# (A unit's replies share the case's partition, so the bridge applies them in the order
# sent: a whistle or an extension request after the signature finds the case signed.)
WHISTLE_JOIN_TIMEOUT_S = 20.0

UNIT_RECORDS = ("DispatchIssued", "DispatchRevoked", "SupervisionNotice",
                "SupplementForwarded", "ExtensionDecided")


class _UnitSystems:
    """The units' own systems: sign for, return, report progress on, whistle for, ask an
    extension of and complete each dispatch.

    Times come from the ``DispatchIssued`` (``issued_at``, ``sign_by``, ``due_at``, already
    time-scaled by the worker) and the case's plan. A lead unit planned to return the case
    returns it instead of signing; the unit of the next dispatch handles it. An assisting
    unit (协办, by routing or whistled in) signs and sends its part; the lead unit completes
    only once the assisting units of the case have replied (or were revoked), as a lead
    collects its partners' input before it answers. A unit that asked for an extension
    completes within the added time once granted, else just in time.
    """

    def __init__(self, ctx: ActorContext) -> None:
        self.ctx = ctx
        self.sched = Scheduler()
        self.handled: set[str] = set()
        self.revoked: set[str] = set()
        self.completed: set[str] = set()
        # complaint id → assisting dispatches that have not replied yet
        self.assisting: dict[str, set[str]] = {}
        # complaint id → {dispatch id: unit id} of the dispatches still open
        self.holding: dict[str, dict[str, str]] = {}
        # complaint id → lead dispatches seen (not counting reopens): the returns plan
        self.leads_seen: Counter[str] = Counter()
        # lead dispatch id → (its DispatchIssued, the extension plan) while it may be decided
        self.extensions: dict[str, tuple[Mapping[str, Any], ExtensionPlan]] = {}
        self.extended: set[str] = set()
        # complaint id → (units whistled in and not dispatched yet, give up at epoch s)
        self.joining: dict[str, tuple[set[str], float]] = {}

    def run(self) -> None:
        ctx = self.ctx
        consumer = tail_consumer(ctx.settings, ctx.settings.topic_dispatches, "demo-units")
        try:
            ctx.ready.wait()
            while not ctx.stop.is_set():
                self.sched.run_due()
                for msg in poll_records(consumer, self.sched.wait_s(0.1)):
                    self.on_message(msg.value)
        finally:
            consumer.close(autocommit=False)

    def on_message(self, value: bytes) -> None:
        try:
            decoded = decode(value, expected=UNIT_RECORDS)
        except DecodeError:
            self.ctx.board.count_undecodable()
            return
        rec = decoded.record
        cid = rec["complaint_id"]
        plan = self.ctx.plans.get(cid)
        if plan is None:
            return  # another run's case
        if decoded.name == "DispatchIssued" and rec["event_id"] not in self.handled:
            self.handled.add(rec["event_id"])  # Kafka may deliver a record twice
            self.holding.setdefault(cid, {})[rec["dispatch_id"]] = rec["unit_id"]
            if rec.get("role", "LEAD") != "LEAD":
                self.joining.get(cid, (set(), 0.0))[0].discard(rec["unit_id"])
                self.schedule_assisting(rec, plan.handling)
            elif rec.get("reopened"):
                self.schedule_lead(rec, plan.reopen_handling)
            else:
                self.leads_seen[cid] += 1
                k = self.leads_seen[cid]
                if k <= len(plan.returns):
                    self.schedule_return(rec, plan.returns[k - 1], plan.return_fraction)
                else:
                    self.schedule_lead(rec, plan.handling, plan)
        elif decoded.name == "DispatchRevoked":
            self.revoked.add(rec["dispatch_id"])
            self.assisting.get(cid, set()).discard(rec["dispatch_id"])
            self.holding.get(cid, {}).pop(rec["dispatch_id"], None)
        elif decoded.name == "ExtensionDecided":
            self.on_extension_decided(rec)

    @staticmethod
    def _windows(rec: Mapping[str, Any]) -> tuple[float, float, float]:
        """``issued_at`` (epoch seconds), the sign-for window and the deadline (seconds)."""
        issued = rec["issued_at"].timestamp()
        sign_window = max(0.0, rec["sign_by"].timestamp() - issued)
        deadline = max(0.0, rec["due_at"].timestamp() - issued)
        return issued, sign_window, deadline

    def schedule_return(self, rec: Mapping[str, Any], reason: str, fraction: float) -> None:
        """退单: "not ours", within the sign-for window instead of signing."""
        issued, sign_window, _ = self._windows(rec)
        when = max(issued + fraction * sign_window, time.time() + MIN_REACTION_S)
        self.sched.at(when, self._reply(rec, "DispatchReturned", {"reason": reason}))

    def schedule_assisting(self, rec: Mapping[str, Any], plan: HandlingPlan) -> None:
        """An assisting unit signs, and sends its part before the lead completes."""
        issued, sign_window, deadline = self._windows(rec)
        when = max(issued + plan.sign_fraction * sign_window, time.time() + MIN_REACTION_S)
        self.sched.at(when, self._reply(rec, "DispatchSigned",
                                        {"signer": f"{rec['unit_name']}值班员"}))
        self.assisting.setdefault(rec["complaint_id"], set()).add(rec["dispatch_id"])
        when = max(issued + ASSIST_SHARE * min(plan.complete_fraction, 1.0) * deadline,
                   when + REPLY_GAP_S)
        self.sched.at(when, self._reply(rec, "HandlingCompleted", {
            "result": "RESOLVED", "reply_text": ASSIST_REPLY}))

    def schedule_lead(self, rec: Mapping[str, Any], handling: HandlingPlan,
                      plan: CasePlan | None = None) -> None:
        """Schedule the lead's replies: sign, progress, whistle, extension, completion.

        ``plan`` is given for the first handling round only (a reopened case is handled
        plainly).
        """
        issued, sign_window, deadline = self._windows(rec)
        signed = max(issued + handling.sign_fraction * sign_window,
                     time.time() + MIN_REACTION_S)
        self.sched.at(signed, self._reply(rec, "DispatchSigned",
                                          {"signer": f"{rec['unit_name']}值班员"}))
        # (planned time, action), placed in planned order after the signature.
        steps: list[tuple[float, Callable[[], None]]] = []
        if handling.progress_fraction is not None and rec.get("tier") != "T2H":
            steps.append((issued + handling.progress_fraction * deadline,
                          self._reply(rec, "ProgressReported", {
                              "text": handling.progress_text,
                              "contacted_citizen": handling.contacted_citizen})))
        whistle = plan.whistle if plan else None
        if whistle is not None:
            steps.append((issued + whistle.fraction * deadline, self._whistle(rec, whistle)))
        extension = plan.extension if plan else None
        if extension is not None:
            steps.append((issued + extension.request_fraction * deadline,
                          self._reply(rec, "ExtensionRequested", {
                              "extra_days": extension.extra_days,
                              "reason": extension.reason})))
            self.extensions[rec["dispatch_id"]] = (rec, extension)
        when = signed
        for planned, action in sorted(steps, key=lambda s: s[0]):
            when = max(planned, when + REPLY_GAP_S)
            self.sched.at(when, action)
        when = max(issued + handling.complete_fraction * deadline, when + REPLY_GAP_S)
        dispatch_id = rec["dispatch_id"]
        # With an extension granted the unit completes later (on_extension_decided).
        self.sched.at(when, self._reply(rec, "HandlingCompleted", {
            "result": handling.result, "reply_text": handling.reply_text},
            skip_if=lambda: dispatch_id in self.extended))

    def on_extension_decided(self, rec: Mapping[str, Any]) -> None:
        dispatch_id = rec["dispatch_id"]
        entry = self.extensions.pop(dispatch_id, None)
        if entry is None or not rec["granted"] or rec.get("due_at") is None:
            return  # denied: the unit completes as planned, just in time
        if dispatch_id in self.completed or dispatch_id in self.revoked:
            return
        issued_rec, extension = entry
        plan = self.ctx.plans[rec["complaint_id"]]
        old_due = issued_rec["due_at"].timestamp()
        new_due = rec["due_at"].timestamp()
        self.extended.add(dispatch_id)
        when = max(old_due + extension.complete_share * max(0.0, new_due - old_due),
                   time.time() + MIN_REACTION_S)
        self.sched.at(when, self._reply(issued_rec, "HandlingCompleted", {
            "result": plan.handling.result, "reply_text": plan.handling.reply_text}))

    def _whistle(self, rec: Mapping[str, Any], whistle: WhistlePlan) -> Callable[[], None]:
        """吹哨: call in the planned departments that do not hold the case yet."""
        ctx = self.ctx
        cid, dispatch_id = rec["complaint_id"], rec["dispatch_id"]

        def send() -> None:
            if dispatch_id in self.revoked or dispatch_id in self.completed \
                    or ctx.stop.is_set():
                return
            holding = set(self.holding.get(cid, {}).values())
            units = [u for u in whistle.units if u not in holding]
            if not units:
                return
            self.joining[cid] = (set(units), time.time() + WHISTLE_JOIN_TIMEOUT_S)
            publish(ctx, ctx.settings.topic_unit_replies, "UnitsWhistled", {
                "event_id": str(uuid.uuid4()), "complaint_id": cid,
                "dispatch_id": dispatch_id, "unit_id": rec["unit_id"], "at": utc_now(),
                "units": units, "reason": whistle.reason,
            })
            ctx.board.count_sent("UnitsWhistled")

        return send

    def _reply(self, rec: Mapping[str, Any], name: str, fields: dict[str, Any],
               skip_if: Callable[[], bool] | None = None) -> Callable[[], None]:
        ctx = self.ctx
        cid, dispatch_id = rec["complaint_id"], rec["dispatch_id"]
        lead_completion = name == "HandlingCompleted" and rec.get("role", "LEAD") == "LEAD"

        def send() -> None:
            if dispatch_id in self.revoked or dispatch_id in self.completed \
                    or ctx.stop.is_set() or (skip_if is not None and skip_if()):
                return
            if lead_completion and self._partners_pending(cid):
                self.sched.at(time.time() + REPLY_GAP_S, send)  # wait for the partners
                return
            publish(ctx, ctx.settings.topic_unit_replies, name, {
                "event_id": str(uuid.uuid4()), "complaint_id": cid,
                "dispatch_id": dispatch_id, "unit_id": rec["unit_id"], "at": utc_now(), **fields,
            })
            if name in ("HandlingCompleted", "DispatchReturned"):
                self.completed.add(dispatch_id)
                self.assisting.get(cid, set()).discard(dispatch_id)
                self.holding.get(cid, {}).pop(dispatch_id, None)
            ctx.board.count_sent(name)

        return send

    def _partners_pending(self, cid: str) -> bool:
        """Assisting units of the case have not replied, or whistled ones not joined yet."""
        if self.assisting.get(cid):
            return True
        units, give_up_at = self.joining.get(cid, (set(), 0.0))
        return bool(units) and time.time() < give_up_at


def unit_systems(ctx: ActorContext) -> None:
    """The unit systems' thread body."""
    _UnitSystems(ctx).run()

