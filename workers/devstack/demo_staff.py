"""The hotline centre's own staff in the demo: a district supervisor and the callback
centre.

- The **supervisor** reads ``hotline.lifecycle`` and decides the extension requests
  longer than the rules grant at once, through the workflow's ``decide_extension`` update
  (a temporalio client: supervisors work in the centre's own system, not over Kafka).
- The **callback centre** reads ``hotline.lifecycle`` and answers each ``CALLBACK_DUE`` on
  ``hotline.callbacks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any

from temporalio.client import Client
from temporalio.exceptions import TemporalError

from schemas.codec import DecodeError, decode
from workers.devstack.city_plans import UNREACHED_COMMENT, CallbackPlan, ExtensionPlan
from workers.devstack.demo_actors import (
    MIN_REACTION_S,
    SEND_TIMEOUT_S,
    ActorContext,
    Scheduler,
    poll_records,
    publish,
    tail_consumer,
    utc_now,
)
from workers.runtime.temporal import connect_temporal
from workflows.ids import complaint_workflow_id
from workflows.model import UPDATE_DECIDE_EXTENSION, Ack, ExtensionDecision

SUPERVISOR = "district-supervisor"


class _Supervisor:
    """A district supervisor (督办): decides the extension requests the rules do not grant
    at once, through the workflow's ``decide_extension`` update.

    Each decision is the case's plan (grant or deny), taken a few scaled hours after the
    request. Supervisors work in the centre's own system, so this goes to Temporal
    directly, not over Kafka. A decision that fails is counted on the board, not fatal:
    the unit then completes in its original time.
    """

    def __init__(self, ctx: ActorContext) -> None:
        self.ctx = ctx
        self.sched = Scheduler()
        self.auto_grant_days = ctx.config.rules.extension.auto_grant_max_days
        self.asked: set[str] = set()
        self.loop = asyncio.new_event_loop()
        self.client: Client | None = None

    def run(self) -> None:
        ctx = self.ctx
        consumer = tail_consumer(ctx.settings, ctx.settings.topic_lifecycle, "demo-supervisor")
        try:
            self.client = self.loop.run_until_complete(asyncio.wait_for(
                connect_temporal(ctx.settings, timeout=None), timeout=SEND_TIMEOUT_S))
            ctx.ready.wait()
            while not ctx.stop.is_set():
                self.sched.run_due()
                for msg in poll_records(consumer, self.sched.wait_s(0.1)):
                    self.on_lifecycle(msg.value)
        finally:
            consumer.close(autocommit=False)
            self.loop.close()

    def on_lifecycle(self, value: bytes) -> None:
        try:
            rec = decode(value, expected=("LifecycleEvent",)).record
        except DecodeError:
            return
        cid = rec["complaint_id"]
        plan = self.ctx.plans.get(cid)
        if plan is None or plan.extension is None or cid in self.asked \
                or rec["event_type"] != "EXTENSION_REQUESTED":
            return
        try:
            days = int((rec.get("attributes") or {}).get("extra_days") or 0)
        except ValueError:
            return
        if days <= self.auto_grant_days:
            return  # granted by rule in the same step
        self.asked.add(cid)
        delay = plan.extension.supervisor_delay_hours * 3600 * self.ctx.settings.time_scale
        self.sched.at(time.time() + max(delay, MIN_REACTION_S),
                      partial(self.decide, cid, plan.extension))

    def decide(self, cid: str, extension: ExtensionPlan) -> None:
        if self.ctx.stop.is_set() or self.client is None:
            return
        decision = ExtensionDecision(
            event_id=str(uuid.uuid4()), granted=extension.supervisor_grants,
            decided_by=SUPERVISOR, reason=extension.supervisor_reason)
        handle = self.client.get_workflow_handle(complaint_workflow_id(cid))
        try:
            ack = self.loop.run_until_complete(asyncio.wait_for(
                handle.execute_update(UPDATE_DECIDE_EXTENSION, decision, result_type=Ack),
                timeout=SEND_TIMEOUT_S))
        except (TemporalError, TimeoutError):
            self.ctx.board.count_sent("decision failed")
            return
        self.ctx.board.count_sent("decision" if ack.accepted else "decision failed")


def supervisor(ctx: ActorContext) -> None:
    """The supervisor's thread body."""
    _Supervisor(ctx).run()


def callback_centre(ctx: ActorContext) -> None:
    """The callback centre's thread body: answer each ``CALLBACK_DUE`` of this run."""
    consumer = tail_consumer(ctx.settings, ctx.settings.topic_lifecycle, "demo-callback")
    try:
        ctx.ready.wait()
        sched = Scheduler()
        answered: set[tuple[str, int, int]] = set()
        reopened: set[str] = set()
        while not ctx.stop.is_set():
            sched.run_due()
            for msg in poll_records(consumer, sched.wait_s(0.1)):
                try:
                    rec = decode(msg.value, expected=("LifecycleEvent",)).record
                except DecodeError:
                    continue
                cid = rec["complaint_id"]
                plan = ctx.plans.get(cid)
                if plan is None:
                    continue
                if rec["event_type"] == "REOPENED":
                    reopened.add(cid)
                if rec["event_type"] != "CALLBACK_DUE":
                    continue
                attrs = rec.get("attributes") or {}
                attempt = int(attrs.get("attempt") or 1)
                round_ = 2 if cid in reopened else 1
                if (cid, round_, attempt) in answered:
                    continue  # a redelivered lifecycle event
                answered.add((cid, round_, attempt))
                _schedule_callback(ctx, sched, rec, attempt,
                                   plan.reopen_callback if round_ == 2 else plan.callback)
    finally:
        consumer.close(autocommit=False)


def _schedule_callback(ctx: ActorContext, sched: Scheduler, rec: Mapping[str, Any],
                       attempt: int, plan: CallbackPlan) -> None:
    """Call the citizen a few (scaled) hours later, before the answer is due."""
    now = time.time()
    delay = plan.delay_hours * 3600 * ctx.settings.time_scale
    answer_by = (rec.get("attributes") or {}).get("answer_by")
    if answer_by:
        with contextlib.suppress(ValueError):
            left = datetime.fromisoformat(answer_by).timestamp() - now
            delay = min(delay, max(0.0, 0.5 * left))
    reached = attempt > plan.unreached_attempts
    record: dict[str, Any] = {
        "complaint_id": rec["complaint_id"], "reached": reached,
        "responded": plan.responded if reached else False,
        "resolved": plan.resolved if reached else False,
        "satisfaction": plan.satisfaction if reached else None,
        "comment": plan.comment if reached else UNREACHED_COMMENT,
    }

    def send() -> None:
        if ctx.stop.is_set():
            return
        publish(ctx, ctx.settings.topic_callbacks, "CallbackResult",
                {"event_id": str(uuid.uuid4()), "at": utc_now(), **record})
        ctx.board.count_sent("reached" if reached else "unreached")

    sched.at(now + max(delay, MIN_REACTION_S), send)

