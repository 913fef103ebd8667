"""Long cases on the real Temporal dev server: continue-as-new loses nothing.

The dev server (not the time-skipping one) is what suggests continue-as-new, so this runs
on the real stack. ``record_step`` is replaced by one that keeps the steps: the point is
the workflow's history, not Kafka or PostgreSQL.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from activities.case import CaseActivities
from activities.dispatch.config import load_config
from workers.devstack.stack import ensure_stack
from workers.runtime.settings import Settings
from workflows.complaint import ComplaintWorkflow
from workflows.model import (
    QUERY_VIEW,
    UPDATE_CALLBACK,
    UPDATE_COMPLETE,
    UPDATE_SIGN_FOR,
    UPDATE_SUPPLEMENT,
    Ack,
    CallbackAnswer,
    CaseResult,
    CaseView,
    Complete,
    Filing,
    SignFor,
    StepReceipt,
    StepRecord,
    Supplement,
)

pytestmark = pytest.mark.stack

SUPPLEMENTS = 5000         # the fault suite's case (tests/reliability): 14 runs
QUICK_SUPPLEMENTS = 1200   # `make test`'s: about 360 supplements a run, so 3 or 4 runs
EVENTS_PER_RUN_LIMIT = 10_240


async def test_a_long_case_continues_as_new_and_loses_none() -> None:
    await run_long_case(QUICK_SUPPLEMENTS)


async def run_long_case(supplements: int) -> None:
    """File one case, send it ``supplements`` supplements one at a time, close it, and
    check that every run's history stayed short and nothing was lost or repeated."""
    settings = Settings()
    await asyncio.to_thread(ensure_stack, settings)
    client = await Client.connect(settings.temporal_address,
                                  namespace=settings.temporal_namespace)
    steps: list[StepRecord] = []

    @activity.defn(name="record_step")
    async def record_step(step: StepRecord) -> StepReceipt:
        steps.append(step)
        return StepReceipt(step.complaint_id, step.step, 0)

    acts = CaseActivities(load_config(settings.config_dir), cast(Any, None), cast(Any, None),
                          topic_lifecycle="l", topic_dispatches="d")
    tq = f"long-{uuid.uuid4().hex[:8]}"
    cid = f"LONG-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=tq, workflows=[ComplaintWorkflow],
                      activities=[acts.accept, acts.route, acts.plan, record_step]):
        handle = await client.start_workflow(
            ComplaintWorkflow.run,
            Filing(event_id="f", complaint_id=cid, filed_at=datetime.now(UTC),
                   channel="WEB", content="丰台区卢沟桥街道某小区楼顶漏雨，请尽快修缮"),
            id=f"complaint-{cid}", task_queue=tq)
        view = await handle.query(QUERY_VIEW, result_type=CaseView)
        while view.dispatch_id is None:
            view = await handle.query(QUERY_VIEW, result_type=CaseView)
        # One at a time, as the bridge delivers a case's events (one partition, in order).
        latest = client.get_workflow_handle(f"complaint-{cid}", result_type=CaseResult)
        for n in range(supplements):
            ack = await latest.execute_update(
                UPDATE_SUPPLEMENT, Supplement(event_id=f"sup-{n}", at=datetime.now(UTC),
                                              content=f"第{n}次补充：又漏了"),
                result_type=Ack)
            assert ack.accepted and not ack.duplicate, (n, ack)
        # A redelivered supplement from before the last continue-as-new is still a repeat.
        again = await latest.execute_update(
            UPDATE_SUPPLEMENT, Supplement(event_id=f"sup-{supplements - 1}",
                                          at=datetime.now(UTC), content="重复"),
            result_type=Ack)
        assert again.duplicate
        view = await latest.query(QUERY_VIEW, result_type=CaseView)
        reply = {"dispatch_id": view.dispatch_id, "unit_id": view.lead_unit_id,
                 "at": datetime.now(UTC)}
        assert (await latest.execute_update(UPDATE_SIGN_FOR, SignFor(event_id="s", **reply),
                                            result_type=Ack)).accepted
        assert (await latest.execute_update(UPDATE_COMPLETE, Complete(
            event_id="c", result="RESOLVED", reply_text="已修缮", **reply),
            result_type=Ack)).accepted
        while (await latest.query(QUERY_VIEW, result_type=CaseView)).status != "CALLBACK":
            await asyncio.sleep(0.05)
        await latest.execute_update(UPDATE_CALLBACK, CallbackAnswer(
            event_id="cb", at=datetime.now(UTC), reached=True, responded=True, resolved=True,
            satisfaction="SATISFIED"), result_type=Ack)
        result = await latest.result()

    assert result.counted and result.satisfied
    supplemented = [ev for s in steps for ev in s.lifecycle if ev.event_type == "SUPPLEMENTED"]
    assert len(supplemented) == supplements
    seqs = sorted(ev.seq for s in steps for ev in s.lifecycle)
    assert seqs == list(range(1, len(seqs) + 1))  # one sequence across every run

    runs = 0
    longest = 0
    async for wf in client.list_workflows(f"WorkflowId = 'complaint-{cid}'"):
        runs += 1
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        longest = max(longest, len(history.events))
        if wf.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            assert history.events[-1].event_type == (
                EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW)
    print(f"\n{supplements} supplements: {runs} runs, longest history {longest} events")
    assert runs > 1 and longest < EVENTS_PER_RUN_LIMIT
