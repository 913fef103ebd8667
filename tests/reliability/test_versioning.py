"""Fault 10: a new worker version deployed while cases wait in handling.

Cases filed under the current worker wait (units silent); the worker is replaced by
``worker_v2`` (a patched change); more cases are filed; then the units answer. No
workflow task may fail for non-determinism; old cases finish without the patch marker,
new ones with it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType

from tests.reliability.conftest import record
from tests.reliability.harness import Harness, Proc, scaled
from tests.reliability.worker_v2 import PATCH_V2
from workers.runtime.settings import REPO_ROOT

pytestmark = pytest.mark.stack


async def markers(h: Harness, cid: str) -> int:
    assert h.client is not None
    history = await h.client.get_workflow_handle(f"complaint-{cid}").fetch_history()
    return sum(
        1 for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and PATCH_V2.encode() in e.SerializeToString())


async def new_version(h: Harness, cases: int) -> None:
    old = [f"V1{h.run_id}-{i:04d}" for i in range(cases)]
    new = [f"V2{h.run_id}-{i:04d}" for i in range(cases)]
    v1 = h.start("worker")
    h.start("bridges")
    responder = h.start_responder(hold=True)
    await h.file(old)
    await h.wait_count(old, {"DISPATCHED"}, cases)
    await asyncio.to_thread(v1.terminate)
    log = h.dir / "worker-v2.log"
    v2 = ProcModule("tests.reliability.worker_v2", h, log)
    h.procs.append(v2)
    v2.wait_for_line("worker ready")
    await h.file(new)
    responder.released.set()
    h.mark_fault_end()
    fig = await h.check(f"10. new worker version with {cases} cases waiting in handling",
                        dict.fromkeys(old + new, "CLOSED"), timeout=900)
    text = log.read_text(errors="replace")
    nondeterminism = text.count("Nondeterminism") + text.count("nondeterminism")
    failed_tasks = text.count("Failed activation")
    old_marked = sum([await markers(h, c) > 0 for c in old])
    new_marked = sum([await markers(h, c) > 0 for c in new])
    fig.notes.append(f"{nondeterminism} non-determinism errors, {failed_tasks} failed "
                     f"activations; patch marker in {old_marked}/{cases} old and "
                     f"{new_marked}/{cases} new cases")
    record(fig)
    assert (fig.lost, fig.duplicated, fig.dlq) == (0, 0, 0), fig.line()
    assert (nondeterminism, failed_tasks) == (0, 0)
    assert (old_marked, new_marked) == (0, cases)


class ProcModule(Proc):
    """``python -m <module>`` with the test's environment (a worker variant)."""

    def __init__(self, module: str, h: Harness, log_path: Path) -> None:
        self.kind = "worker"
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in wait()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", module], env={**h.env(), "HOTLINE_LOG_LEVEL": "INFO"},
            stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
            start_new_session=True)


@pytest.mark.reliability
async def test_new_worker_version_with_cases_waiting(harness: Harness) -> None:
    await new_version(harness, scaled(100))
