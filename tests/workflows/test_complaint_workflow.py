"""ComplaintWorkflow on the time-skipping server: the five stages and their guards.

The real ``accept`` activity runs (it is pure: classification and deadlines from the
config folder); ``record_step`` is replaced under its real name by one that keeps the
steps, so each test can read exactly what the case made durable.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.case import CaseActivities
from activities.config import load_config
from workers.settings import Settings
from workflows.complaint import ComplaintWorkflow
from workflows.model import (
    QUERY_VIEW,
    UPDATE_CALLBACK,
    UPDATE_COMPLETE,
    UPDATE_REPORT_PROGRESS,
    UPDATE_SIGN_FOR,
    UPDATE_WITHDRAW,
    Ack,
    CallbackAnswer,
    CaseResult,
    CaseView,
    Complete,
    Filing,
    ReportProgress,
    SignFor,
    StepReceipt,
    StepRecord,
    Withdraw,
)

CONFIG = load_config(Settings().config_dir)


@dataclass
class Recorder:
    steps: list[StepRecord] = field(default_factory=list)

    def events(self, complaint_id: str) -> list[str]:
        return [ev.event_type for s in self.steps if s.complaint_id == complaint_id
                for ev in s.lifecycle]

    def outbound(self, complaint_id: str, record: str) -> list[dict[str, Any]]:
        return [o.fields for s in self.steps if s.complaint_id == complaint_id
                for o in s.outbound if o.record == record]


@dataclass
class Harness:
    env: WorkflowEnvironment
    task_queue: str
    recorder: Recorder
    started: list[WorkflowHandle[Any, CaseResult]] = field(default_factory=list)

    async def file(self, content: str, **kw: Any) -> WorkflowHandle[Any, CaseResult]:
        cid = f"T-{uuid.uuid4().hex[:10]}"
        filing = Filing(
            event_id=f"ev-{cid}", complaint_id=cid, filed_at=datetime.now(UTC),
            channel="PHONE", content=content, caller_phone="13800000000", **kw,
        )
        handle = await self.env.client.start_workflow(
            ComplaintWorkflow.run, filing, id=f"complaint-{cid}", task_queue=self.task_queue,
        )
        self.started.append(handle)
        return handle

    async def until(self, handle: WorkflowHandle[Any, Any], event_type: str,
                    count: int = 1) -> CaseView:
        """Poll the case's own view until ``event_type`` happened ``count`` times."""
        for _ in range(400):
            view = await handle.query(QUERY_VIEW, result_type=CaseView)
            if sum(e.event_type == event_type for e in view.timeline) >= count:
                return view
            await asyncio.sleep(0.02)
        raise AssertionError(f"{event_type} never happened; timeline: {view.timeline}")


@pytest_asyncio.fixture
async def harness(time_env: WorkflowEnvironment) -> AsyncIterator[Harness]:
    recorder = Recorder()

    @activity.defn(name="record_step")
    async def record_step(step: StepRecord) -> StepReceipt:
        recorder.steps.append(step)
        return StepReceipt(step.complaint_id, step.step, len(step.lifecycle))

    acts = CaseActivities(CONFIG, cast(Any, None), cast(Any, None),
                          topic_lifecycle="l", topic_dispatches="d")
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(time_env.client, task_queue=task_queue, workflows=[ComplaintWorkflow],
                      activities=[acts.accept, record_step]):
        h = Harness(time_env, task_queue, recorder)
        yield h
        # A case left open with no worker would hold the shared server's clock still.
        for handle in h.started:
            desc = await handle.describe()
            if desc.status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test over")


def _reply(view: CaseView, cls: Callable[..., Any], **kw: Any) -> Any:
    assert view.dispatch_id and view.lead_unit_id
    return cls(event_id=f"e-{uuid.uuid4().hex[:8]}", dispatch_id=view.dispatch_id,
               unit_id=view.lead_unit_id, at=datetime.now(UTC), **kw)


async def _update(handle: WorkflowHandle[Any, Any], name: str, arg: Any) -> Ack:
    return cast(Ack, await handle.execute_update(name, arg, result_type=Ack))


async def test_happy_path_goes_through_all_five_stages(harness: Harness) -> None:
    h = await harness.file("朝阳区望京街道阜通东大街6号院3号楼电梯又坏了，老人上下楼很困难")
    view = await harness.until(h, "DISPATCHED")
    assert view.tier == "T24H" and view.category == "housing.lift"
    assert view.lead_unit_id == "110105026"  # 望京街道, straight to the street

    assert (await _update(h, UPDATE_SIGN_FOR, _reply(view, SignFor))).accepted
    assert (await _update(h, UPDATE_REPORT_PROGRESS,
                          _reply(view, ReportProgress, text="已联系物业"))).accepted
    assert (await _update(h, UPDATE_COMPLETE, _reply(
        view, Complete, result="RESOLVED", reply_text="电梯已修复"))).accepted
    await harness.until(h, "CALLBACK_DUE")
    ack = await _update(h, UPDATE_CALLBACK, CallbackAnswer(
        event_id="cb-1", at=datetime.now(UTC), reached=True, responded=True, resolved=True,
        satisfaction="SATISFIED"))
    assert ack.accepted

    result = await h.result()
    assert result.counted and result.responded and result.resolved and result.satisfied
    assert not result.overdue
    cid = view.complaint_id
    assert harness.recorder.events(cid) == [
        "ACCEPTED", "DISPATCHED", "SIGNED", "PROGRESS", "COMPLETED", "CALLBACK_DUE",
        "CALLBACK", "EVALUATED", "CLOSED",
    ]
    seqs = [ev.seq for s in harness.recorder.steps if s.complaint_id == cid
            for ev in s.lifecycle]
    assert seqs == list(range(1, len(seqs) + 1))
    issued = harness.recorder.outbound(cid, "DispatchIssued")
    assert len(issued) == 1 and issued[0]["unit_id"] == "110105026"
    evaluation = next(s.evaluation for s in harness.recorder.steps if s.evaluation)
    assert evaluation.score == 100.0 and evaluation.counted


async def test_answered_directly_closes_without_dispatch_and_is_not_counted(
    harness: Harness,
) -> None:
    h = await harness.file("请问办理居住证需要什么材料？", answered_directly=True)
    result = await h.result()
    assert result.outcome == "ANSWERED_DIRECTLY" and not result.counted
    cid = result.complaint_id
    assert harness.recorder.events(cid) == ["ANSWERED_DIRECTLY", "CLOSED"]
    assert harness.recorder.outbound(cid, "DispatchIssued") == []


async def test_emergency_for_the_police_is_redirected_and_closed(harness: Harness) -> None:
    h = await harness.file("小区门口有人持刀打架斗殴，快来人！")
    result = await h.result()
    assert result.outcome == "REDIRECTED" and not result.counted
    accepted = next(ev for s in harness.recorder.steps for ev in s.lifecycle
                    if ev.complaint_id == result.complaint_id)
    assert accepted.attributes["redirect_to"] == "110"


async def test_reply_from_a_unit_that_does_not_hold_the_case_is_refused(
    harness: Harness,
) -> None:
    h = await harness.file("海淀区中关村街道中关村大街路灯不亮")
    view = await harness.until(h, "DISPATCHED")
    wrong = SignFor(event_id="x1", dispatch_id=view.dispatch_id or "", unit_id="110105026",
                    at=datetime.now(UTC))
    ack = await _update(h, UPDATE_SIGN_FOR, wrong)
    assert not ack.accepted and ack.reason == "UNIT_NOT_HOLDING"
    # The case is unharmed: still waiting for its own unit, which can sign.
    view = await harness.until(h, "REPLY_REFUSED")
    assert view.status == "DISPATCHED"
    assert (await _update(h, UPDATE_SIGN_FOR, _reply(view, SignFor))).accepted


async def test_reply_the_state_does_not_allow_is_refused(harness: Harness) -> None:
    h = await harness.file("海淀区中关村街道中关村大街路灯不亮")
    view = await harness.until(h, "DISPATCHED")
    ack = await _update(h, UPDATE_COMPLETE, _reply(view, Complete, result="RESOLVED",
                                                    reply_text="修好了"))
    assert not ack.accepted and ack.reason == "STATE_NOT_ALLOWED"
    view = await h.query(QUERY_VIEW, result_type=CaseView)
    assert view.status == "DISPATCHED"


async def test_a_repeated_event_is_applied_once(harness: Harness) -> None:
    h = await harness.file("西城区金融街街道某小区垃圾堆放三天没人清运")
    view = await harness.until(h, "DISPATCHED")
    sign = _reply(view, SignFor)
    first = await _update(h, UPDATE_SIGN_FOR, sign)
    second = await _update(h, UPDATE_SIGN_FOR, sign)
    assert first.accepted and not first.duplicate
    assert second.accepted and second.duplicate
    view = await h.query(QUERY_VIEW, result_type=CaseView)
    assert [e.event_type for e in view.timeline].count("SIGNED") == 1


async def test_escalation_ladder_fires_every_rung_when_the_unit_does_nothing(
    harness: Harness,
) -> None:
    h = await harness.file("东城区东华门街道某胡同夜间施工噪音扰民")  # T24H, sign for in 1 h
    view = await harness.until(h, "DISPATCHED")
    assert view.tier == "T24H"
    # Nobody answers: the time-skipping server jumps to each timer.
    await harness.env.sleep(timedelta(hours=37))
    view = await h.query(QUERY_VIEW, result_type=CaseView)
    notices = [e.attributes["notice_type"] for e in view.timeline if e.event_type == "NOTICE"]
    assert notices == ["SIGN_OVERDUE", "DISTRICT_SUPERVISION", "WARNING", "WARNING",
                       "OVERDUE", "CITY_SUPERVISION"]
    assert view.overdue and view.escalation_level == "CITY"
    sent = harness.recorder.outbound(view.complaint_id, "SupervisionNotice")
    assert [n["notice_type"] for n in sent] == notices
    # Every rung fired when it was due, not before: OVERDUE at the deadline, the city at
    # the deadline plus half the tier.
    assert view.due_at is not None
    at = {e.attributes["notice_type"]: e.at for e in view.timeline if e.event_type == "NOTICE"}
    assert view.due_at <= at["OVERDUE"] < view.due_at + timedelta(minutes=1)
    assert at["CITY_SUPERVISION"] >= view.due_at + timedelta(hours=12) - timedelta(seconds=1)


async def test_unreached_citizen_is_called_three_times_then_evaluated_on_the_unit_report(
    harness: Harness,
) -> None:
    h = await harness.file("丰台区卢沟桥街道某小区单元门坏了")
    view = await harness.until(h, "DISPATCHED")
    await _update(h, UPDATE_SIGN_FOR, _reply(view, SignFor))
    await _update(h, UPDATE_COMPLETE, _reply(view, Complete, result="RESOLVED",
                                              reply_text="已更换门锁"))
    for attempt in (1, 2, 3):
        await harness.until(h, "CALLBACK_DUE", count=attempt)
        ack = await _update(h, UPDATE_CALLBACK, CallbackAnswer(
            event_id=f"cb-{attempt}", at=datetime.now(UTC), reached=False,
            responded=False, resolved=False))
        assert ack.accepted
    result = await h.result()
    assert result.counted and result.resolved and not result.satisfied


async def test_withdrawn_case_revokes_the_dispatch_and_is_not_counted(
    harness: Harness,
) -> None:
    h = await harness.file("通州区某小区楼道堆物堵塞消防通道")
    view = await harness.until(h, "DISPATCHED")
    ack = await _update(h, UPDATE_WITHDRAW, Withdraw(event_id="w1", at=datetime.now(UTC)))
    assert ack.accepted
    result = await h.result()
    assert not result.counted
    revoked = harness.recorder.outbound(view.complaint_id, "DispatchRevoked")
    assert [r["dispatch_id"] for r in revoked] == [view.dispatch_id]


@pytest.mark.parametrize("content", ["家里停水一整天了", "小区电梯困人，有人被困电梯里"])
async def test_emergencies_get_the_two_hour_tier(harness: Harness, content: str) -> None:
    h = await harness.file(content)
    view = await harness.until(h, "DISPATCHED")
    assert view.tier == "T2H"
    assert view.due_at and view.sign_by
    assert view.due_at - view.sign_by == timedelta(hours=2) - timedelta(minutes=15)
