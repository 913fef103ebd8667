"""The static guard against non-deterministic workflow code.

The worker runs workflows outside the SDK's sandbox by default (HOTLINE_WORKFLOW_SANDBOX),
so between test runs nothing at runtime refuses a clock read or a random number in
workflow code. ruff's banned-API rule (TID251, pyproject.toml) does, for workflows/ only.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from workers.runtime.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RUFF = Path(sys.executable).with_name("ruff")

PROBE = """\
import random
import threading
import time
import uuid
from datetime import date, datetime


def f() -> object:
    return (time.time(), datetime.now(), datetime.utcnow(), date.today(),
            random.random(), uuid.uuid4(), threading.Thread)
"""

BANNED = {"time", "random", "threading", "datetime.datetime.now", "datetime.datetime.utcnow",
          "datetime.date.today", "uuid.uuid4"}


def _banned_in(path: str) -> set[str]:
    out = subprocess.run(
        # No --select: the rule must be on in the project's own config, as `make lint` runs it.
        [str(RUFF), "check", "--output-format", "concise", "--stdin-filename", path, "-"],
        input=PROBE, capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert out.returncode in (0, 1), out.stderr
    # "workflows/probe.py:1:8: TID251 `random` is banned: ..."
    return {line.split("`")[1] for line in out.stdout.splitlines() if "TID251" in line}


@pytest.mark.skipif(not RUFF.exists(), reason="ruff is installed by make install")
def test_clocks_randomness_and_threads_are_refused_in_workflow_code() -> None:
    assert _banned_in("workflows/probe.py") == BANNED


@pytest.mark.skipif(not RUFF.exists(), reason="ruff is installed by make install")
def test_activities_and_workers_may_use_them() -> None:
    assert _banned_in("activities/probe.py") == set()
    assert _banned_in("workers/probe.py") == set()


def test_the_worker_runs_unsandboxed_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOTLINE_WORKFLOW_SANDBOX", raising=False)
    assert Settings().workflow_sandbox is False
    monkeypatch.setenv("HOTLINE_WORKFLOW_SANDBOX", "true")
    assert Settings().workflow_sandbox is True
