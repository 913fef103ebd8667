"""The workflow runner, and byte-code for the code the workflow sandbox imports.

Temporal's sandbox imports the workflow modules afresh for every workflow instance it
creates: each new case, and each case that comes back after it left the worker's sticky
cache (a timer firing on a parked case, a reply after hours). Without a ``.pyc`` next to
the source, every one of those imports compiles the source again — ~18 ms for
``workflows/complaint.py``, a quarter of the worker's CPU with 10,000 parked cases
(py-spy). ``PYTHONDONTWRITEBYTECODE=1`` (common on CI machines and in images) with an
editable install means no ``.pyc`` is ever written, so the worker writes them once at
start. Python still checks each ``.pyc`` against its source, so an edited file is
recompiled here on the next start, never served stale.
"""

from __future__ import annotations

import compileall
import importlib
from collections.abc import Iterable
from pathlib import Path

import structlog
from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

log = structlog.get_logger(__name__)

# First-party packages: the workflows, and what they import inside the sandbox.
SANDBOXED_PACKAGES = ("workflows", "activities", "schemas")


def workflow_runner(sandbox: bool) -> WorkflowRunner:
    """The SDK's sandbox, or none (``HOTLINE_WORKFLOW_SANDBOX``).

    Every worker picks its runner here, so the bench's bare worker runs its workflow the
    way the hotline worker does and the ratio compares like with like.
    """
    return SandboxedWorkflowRunner() if sandbox else UnsandboxedWorkflowRunner()


def ensure_bytecode(packages: Iterable[str] = SANDBOXED_PACKAGES) -> list[str]:
    """Compile ``packages`` where their byte-code is missing or stale.

    Returns the packages whose byte-code could not be written (a read-only tree); the
    worker still runs, slower, and says so in its log.
    """
    failed = []
    for name in packages:
        module = importlib.import_module(name)
        folder = Path(next(iter(module.__path__)))
        # compileall writes even under PYTHONDONTWRITEBYTECODE: this is the one place
        # the worker means to.
        if not compileall.compile_dir(folder, quiet=2, workers=1):
            failed.append(name)
    if failed:
        log.warning("byte-code not written: the workflow sandbox will compile these "
                    "packages for every workflow instance it creates", packages=failed)
    return failed
