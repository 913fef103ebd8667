"""The hotline processes a demo runs next to the stack: ``hotline worker``, ``hotline
bridges`` and ``hotline projector``.

They are started, found, waited for and stopped with the stack's own process control
(:mod:`workers.devstack.processes`), with their logs and pid files in
``<state_dir>/demo/``, and their logs watched for warnings and errors while the demo runs.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from workers.devstack.processes import (
    cmdline,
    read_pid,
    spawn,
    terminate,
    terminate_all,
    wait_for_line,
)
from workers.runtime.settings import REPO_ROOT, Settings

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0

# The processes the demo runs, and the line each logs once it serves.
# The projector rebuilds the same ledger rows from hotline.lifecycle that record_step
# writes (order-free, idempotent): running it shows the ledger is a projection of the topic.
PROCESSES: dict[str, str] = {"worker": "worker ready", "bridges": "bridges ready",
                             "projector": "projector ready"}


@dataclass
class DemoProcess:
    """One hotline process the demo started."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    pid_file: Path


def is_hotline_process(pid: int, role: str) -> bool:
    """True when ``pid`` runs ``workers.cli.main <role>`` or ``hotline <role>``."""
    argv = cmdline(pid)
    for i, arg in enumerate(argv[:-1]):
        if (arg == "workers.cli.main" or arg.endswith("/hotline") or arg == "hotline") \
                and argv[i + 1] == role:
            return True
    return False


def stop_previous(demo_dir: Path, console: Console) -> None:
    """Stop a worker or bridges an earlier demo left running (by its pid file)."""
    for name in PROCESSES:
        pid_file = demo_dir / f"{name}.pid"
        pid = read_pid(pid_file)
        if pid is None:
            continue
        if is_hotline_process(pid, name):
            console.print(f"stopping the {name} of an earlier demo (pid {pid})")
            terminate(pid, None, STOP_TIMEOUT_S)
        pid_file.unlink(missing_ok=True)


def foreign(role: str, ours: Iterable[int]) -> list[int]:
    """Pids of other ``hotline <role>`` processes on this machine (not this demo's)."""
    mine = set(ours) | {os.getpid()}
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) not in mine \
                and is_hotline_process(int(entry.name), role):
            found.append(int(entry.name))
    return sorted(found)


def start(name: str, settings: Settings, demo_dir: Path) -> DemoProcess:
    """Start ``hotline <name>`` with the demo's time scale; its log starts afresh."""
    log_path = demo_dir / f"{name}.log"
    pid_file = demo_dir / f"{name}.pid"
    env = dict(os.environ)
    env["HOTLINE_TIME_SCALE"] = repr(settings.time_scale)
    env["PYTHONUNBUFFERED"] = "1"  # the ready line must reach the log at once
    env.setdefault("HOTLINE_MIGRATE_ON_START", "false")  # ensure_stack applied them, once
    # Its own session: Ctrl-C in the terminal reaches the demo, which stops it.
    popen = spawn([sys.executable, "-m", "workers.cli.main", name], log_path=log_path,
                  pid_file=pid_file, cwd=REPO_ROOT, env=env, fresh_log=True)
    return DemoProcess(name, popen, log_path, pid_file)


def wait_ready(procs: list[DemoProcess], timeout: float = READY_TIMEOUT_S) -> None:
    """Wait until each process has logged its ready line.

    Raises:
        ProcessError: One exited first, or did not get ready within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    for proc in procs:
        wait_for_line(proc.log_path, PROCESSES[proc.name], alive=_running(proc.popen),
                      timeout=max(0.0, deadline - time.monotonic()),
                      what=f"`hotline {proc.name}` (its log is {proc.log_path})")


def _running(popen: subprocess.Popen[bytes]) -> Callable[[], bool]:
    return lambda: popen.poll() is None


def stop(procs: list[DemoProcess]) -> None:
    """Stop the processes side by side (SIGTERM, SIGKILL after a timeout)."""
    terminate_all([p.popen.pid for p in procs], STOP_TIMEOUT_S)
    for proc in procs:
        # Collect the exit status (rc 134 at exit is the known temporalio teardown abort,
        # STYLE.md: not a failure).
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=10)
        proc.pid_file.unlink(missing_ok=True)


class LogWatch:
    """Counts the warning and error lines a process adds to its JSON-lines log."""

    def __init__(self, proc: DemoProcess) -> None:
        self.proc = proc
        self._offset = 0
        with contextlib.suppress(OSError):
            self._offset = proc.log_path.stat().st_size

    def new_levels(self) -> Counter[str]:
        levels: Counter[str] = Counter()
        try:
            with self.proc.log_path.open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except OSError:
            return levels
        end = chunk.rfind(b"\n") + 1  # only whole lines
        self._offset += end
        for line in chunk[:end].splitlines():
            if b"Failed activation on workflow" in line:
                levels["workflow task failures"] += 1  # a workflow bug: cases cannot move
            if b'"level": "error"' in line or b'"level": "critical"' in line:
                levels["error"] += 1
            elif b'"level": "warning"' in line:
                levels["warning"] += 1
        return levels
