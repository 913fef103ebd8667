"""Fixture: a worker for ComplaintWorkflow on the shared time-skipping server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, cast

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.case import CaseActivities
from tests.workflows.harness import CONFIG, FakeDuplicates, Harness, Recorder
from workflows.complaint import ComplaintWorkflow
from workflows.model import StepReceipt, StepRecord


@pytest_asyncio.fixture
async def harness(time_env: WorkflowEnvironment) -> AsyncIterator[Harness]:
    recorder = Recorder()
    duplicates = FakeDuplicates()

    @activity.defn(name="record_step")
    async def record_step(step: StepRecord) -> StepReceipt:
        recorder.steps.append(step)
        return StepReceipt(step.complaint_id, step.step, len(step.lifecycle))

    acts = CaseActivities(CONFIG, cast(Any, None), cast(Any, None),
                          topic_lifecycle="l", topic_dispatches="d", duplicates=duplicates,
                          caller_key=b"test")
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(time_env.client, task_queue=task_queue, workflows=[ComplaintWorkflow],
                      activities=[acts.accept, acts.route, acts.plan, record_step]):
        h = Harness(time_env, task_queue, recorder, duplicates)
        yield h
        # A case left open with no worker would hold the shared server's clock still.
        for handle in h.started:
            if await _settled(handle):
                await handle.terminate("test over")
        await _clock_is_free(time_env)


async def _settled(handle: WorkflowHandle[Any, Any]) -> bool:
    """Wait until the case has no activity or workflow task in flight; False once closed.

    The time-skipping server locks its clock for each scheduled activity and workflow task
    and unlocks it when that task completes. Terminating a case with one in flight leaves
    that lock held for good (test server 1.40), and every later test in the module that
    sleeps then waits in real time until the RPC gives up ("Timeout expired"). The test
    server's describe does not report a pending workflow task, so the history tells.
    """
    for _ in range(250):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return False
        in_flight = await _in_flight(handle)
        if not in_flight:
            return True
        await asyncio.sleep(0.02)
    raise AssertionError(f"{handle.id} still has {in_flight} in flight after 5 s")


async def _clock_is_free(env: WorkflowEnvironment) -> None:
    """Fail the test that left the shared clock locked, not a later one that sleeps."""
    try:
        # Thirty virtual seconds pass at once on a free clock, in real time on a locked one.
        await asyncio.wait_for(env.sleep(timedelta(seconds=30)), 5)
    except TimeoutError:
        raise AssertionError("this test left the time-skipping clock locked: a task was "
                             "still in flight when its case ended") from None


async def _in_flight(handle: WorkflowHandle[Any, Any]) -> set[int]:
    """Event ids of the activities and workflow task scheduled and not yet closed."""
    open_ids: set[int] = set()
    async for event in handle.fetch_history_events():
        kind = event.WhichOneof("attributes") or ""
        if kind in ("activity_task_scheduled_event_attributes",
                    "workflow_task_scheduled_event_attributes"):
            open_ids.add(event.event_id)
        elif kind.startswith(("activity_task_", "workflow_task_")) and (
                kind.split("_")[2] in ("completed", "failed", "timed", "canceled")):
            open_ids.discard(getattr(event, kind).scheduled_event_id)
    return open_ids


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A workflow test that waits on the time-skipping clock fails in minutes, not ten."""
    for item in items:
        if "tests/workflows/" in str(item.path) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(240))
