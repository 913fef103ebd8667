"""Fixture: a worker for ComplaintWorkflow on the shared time-skipping server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.workflows.harness import Harness, running_harness


@pytest_asyncio.fixture
async def harness(time_env: WorkflowEnvironment) -> AsyncIterator[Harness]:
    async with running_harness(time_env) as h:
        yield h


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A workflow test that waits on the time-skipping clock fails in minutes, not ten."""
    for item in items:
        if "tests/workflows/" in str(item.path) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(240))
