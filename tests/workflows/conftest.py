"""Fixture: a worker for ComplaintWorkflow on the shared time-skipping server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
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
            desc = await handle.describe()
            if desc.status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test over")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A workflow test that waits on the time-skipping clock fails in minutes, not ten."""
    for item in items:
        if "tests/workflows/" in str(item.path) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(240))
