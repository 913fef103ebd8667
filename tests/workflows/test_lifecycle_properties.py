"""Property: whatever well-formed events a case receives, in whatever order, it ends well.

Hypothesis throws random sequences of unit, citizen, supervisor and callback events (and
the passing of time) at a case on the time-skipping server, then lets it finish. The
invariants: the case always ends CLOSED; no workflow task ever fails; the evaluation
matches what happened; every escalation notice fired when it was due, never before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from tests.workflows.harness import Harness, event_id, reply, update
from workflows.model import (
    UPDATE_CALLBACK,
    UPDATE_COMPLETE,
    UPDATE_REPORT_PROGRESS,
    UPDATE_REQUEST_EXTENSION,
    UPDATE_RETURN_DISPATCH,
    UPDATE_SIGN_FOR,
    UPDATE_SUPPLEMENT,
    UPDATE_URGE,
    UPDATE_WHISTLE,
    UPDATE_WITHDRAW,
    CallbackAnswer,
    CaseResult,
    Complete,
    ReportProgress,
    RequestExtension,
    ReturnDispatch,
    SignFor,
    Supplement,
    Urge,
    Whistle,
    Withdraw,
)

CONTENTS = [
    "西城区金融街街道某小区门口垃圾堆放三天没人清运",  # T24H, street
    "海淀区中关村街道中关村大街路灯不亮好几天了",  # T7D, street
    "朝阳区某工地老板拖欠工资三个月了",  # T15D, department
    "东城区东华门街道家里停水一整天了",  # T2H, utility
]

ACTIONS = st.sampled_from([
    "sign", "progress", "complete", "complete_partly", "return", "extend_short",
    "extend_long", "urge", "supplement", "whistle", "withdraw", "wait_hour", "wait_day",
    "callback_ok", "callback_unhappy", "callback_unreached",
])


async def _act(h: Harness, handle: WorkflowHandle[Any, CaseResult], action: str) -> None:
    """Send one event; refusals are fine (the guard's job), errors are not."""
    view = await h.view(handle)
    if view.status == "CLOSED":
        return
    now = datetime.now(UTC)
    lead_ready = view.dispatch_id is not None and view.lead_unit_id is not None
    unit_events = {
        "sign": (UPDATE_SIGN_FOR, lambda: reply(view, SignFor)),
        "progress": (UPDATE_REPORT_PROGRESS,
                     lambda: reply(view, ReportProgress, text="处理中")),
        "complete": (UPDATE_COMPLETE,
                     lambda: reply(view, Complete, result="RESOLVED", reply_text="已办结")),
        "complete_partly": (UPDATE_COMPLETE, lambda: reply(
            view, Complete, result="PARTLY_RESOLVED", reply_text="部分解决")),
        "return": (UPDATE_RETURN_DISPATCH, lambda: reply(view, ReturnDispatch,
                                                         reason="非本单位职责")),
        "extend_short": (UPDATE_REQUEST_EXTENSION,
                         lambda: reply(view, RequestExtension, extra_days=2, reason="协调")),
        "extend_long": (UPDATE_REQUEST_EXTENSION,
                        lambda: reply(view, RequestExtension, extra_days=5, reason="招标")),
        "whistle": (UPDATE_WHISTLE, lambda: reply(view, Whistle, units=["bj-chengguan"],
                                                  reason="执法协同")),
    }
    if action in unit_events:
        if lead_ready:
            name, build = unit_events[action]
            await update(handle, name, build())
    elif action == "urge":
        await update(handle, UPDATE_URGE, Urge(event_id=event_id(), at=now))
    elif action == "supplement":
        await update(handle, UPDATE_SUPPLEMENT,
                     Supplement(event_id=event_id(), at=now, content="补充情况"))
    elif action == "withdraw":
        await update(handle, UPDATE_WITHDRAW, Withdraw(event_id=event_id(), at=now))
    elif action.startswith("wait_"):
        await h.env.sleep(timedelta(hours=1) if action == "wait_hour" else timedelta(days=1))
    else:
        await update(handle, UPDATE_CALLBACK, CallbackAnswer(
            event_id=event_id(), at=now, reached=action != "callback_unreached",
            responded=True, resolved=action == "callback_ok",
            satisfaction="SATISFIED" if action == "callback_ok" else "UNSATISFIED"))


async def _finish(h: Harness, handle: WorkflowHandle[Any, CaseResult]) -> CaseResult:
    """A cooperative unit and citizen from here on: the case must then close."""
    for _ in range(12):
        view = await h.view(handle)
        if view.status == "CLOSED":
            break
        if view.status in ("DISPATCHED",):
            await update(handle, UPDATE_SIGN_FOR, reply(view, SignFor))
        elif view.status in ("SIGNED", "IN_PROGRESS"):
            await update(handle, UPDATE_COMPLETE,
                         reply(view, Complete, result="RESOLVED", reply_text="已办结"))
        elif view.status == "CALLBACK":
            await update(handle, UPDATE_CALLBACK, CallbackAnswer(
                event_id=event_id(), at=datetime.now(UTC), reached=True, responded=True,
                resolved=True, satisfaction="SATISFIED"))
        else:
            await h.env.sleep(timedelta(hours=1))
    return await handle.result()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(content=st.sampled_from(CONTENTS), actions=st.lists(ACTIONS, max_size=12))
async def test_any_sequence_of_events_ends_closed_with_a_true_evaluation(
    harness: Harness, content: str, actions: list[str],
) -> None:
    handle = await harness.file(content)
    await harness.until(handle, "DISPATCHED")
    for action in actions:
        await _act(harness, handle, action)
    result = await _finish(harness, handle)

    view = await harness.view(handle)
    events = [e.event_type for e in view.timeline]
    assert view.status == "CLOSED" and events[-1] == "CLOSED"

    history = await handle.fetch_history()
    failed = [e for e in history.events
              if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert failed == []

    withdrawn = "WITHDRAWN" in events
    assert result.counted == (not withdrawn)
    callbacks = [e for e in view.timeline if e.event_type == "CALLBACK"]
    if result.counted and callbacks and callbacks[-1].attributes["reached"] == "true":
        last = callbacks[-1].attributes
        assert result.resolved == (last["resolved"] == "true")
        assert result.satisfied == (last["satisfaction"] in ("SATISFIED",
                                                              "BASICALLY_SATISFIED"))
    assert view.reopens <= 1 and view.returns <= 2

    # Every notice was due when it fired.
    notices = harness.recorder.outbound(result.complaint_id, "SupervisionNotice")
    for n in notices:
        due = datetime.fromtimestamp(n["due_at"] / 1000, UTC)
        at = datetime.fromtimestamp(n["at"] / 1000, UTC)
        if n["notice_type"] in ("OVERDUE", "CITY_SUPERVISION"):
            assert at >= due - timedelta(milliseconds=1), n
        if n["notice_type"] == "WARNING":
            assert at < due + timedelta(milliseconds=1), n
    issued = {d["dispatch_id"]: d for d in
              harness.recorder.outbound(result.complaint_id, "DispatchIssued")}
    for n in notices:
        if n["notice_type"] == "SIGN_OVERDUE":
            d = issued[n["dispatch_id"]]
            assert n["at"] >= d["sign_by"] - 1, (n, d)
