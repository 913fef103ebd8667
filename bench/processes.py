"""The processes the end-to-end bench starts, waits for and stops.

Each runs apart (its own session, its own log in the run's folder) so that its CPU
seconds and peak RSS can be measured on their own (:mod:`bench.sampling`).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workers.runtime.settings import REPO_ROOT


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path


# A variant's setting, not the processes': run the worker and bridges from another
# checkout of the code (e.g. `git archive` of an earlier commit), so a change and the code
# before it are measured in one run. `python -m` puts the working directory first on
# sys.path, ahead of the editable install.
CHECKOUT = "BENCH_CHECKOUT"
# A variant's setting too: run N `hotline worker` processes on the one task queue (the
# scale-out check), named worker, worker-2, ... so each is measured apart.
WORKERS = "BENCH_WORKERS"


def worker_names(env: Mapping[str, str]) -> list[str]:
    """The worker processes a variant's environment asks for (``BENCH_WORKERS``, default 1)."""
    raw = env.get(WORKERS, "1").strip()
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{WORKERS} must be a whole number of at least 1, not {raw!r}")
    return ["worker", *(f"worker-{i}" for i in range(2, int(raw) + 1))]


def role(name: str) -> str:
    """The role a measured process plays: ``worker-2`` is a ``worker``."""
    head, _, tail = name.rpartition("-")
    return head if head and tail.isdigit() else name


def start_proc(name: str, argv: list[str], env: dict[str, str], log_dir: Path,
               cwd: Path = REPO_ROOT) -> Proc:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as fh:
        popen = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                 stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    return Proc(name, popen, log_path)


def wait_ready(procs: Sequence[tuple[Proc, str]], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    for proc, line in procs:
        while line not in proc.log_path.read_text(errors="replace"):
            if proc.popen.poll() is not None or time.monotonic() > deadline:
                tail = proc.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{proc.name} not ready ({line!r}):\n{tail}")
            time.sleep(0.2)


def stop_procs(procs: Iterable[Proc], sig: int = signal.SIGTERM) -> None:
    procs = list(procs)
    for p in procs:
        if p.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.popen.send_signal(sig)
    for p in procs:
        try:
            p.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.popen.kill()
            p.popen.wait(timeout=10)


@dataclass
class Hotline:
    """The worker(s) and bridges processes, restartable with extra environment (variants)."""

    env: dict[str, str]
    log_dir: Path
    procs: dict[str, Proc] = field(default_factory=dict)
    variant: str = ""

    def start(self, extra: dict[str, str] | None = None, label: str = "") -> None:
        self.stop()
        env = self.env | (extra or {})
        cwd = Path(env.pop(CHECKOUT, REPO_ROOT))
        names = worker_names(env)
        env.pop(WORKERS, None)
        suffix = f"-{label}" if label else ""
        py = sys.executable
        for name in [*names, "bridges"]:
            self.procs[name] = start_proc(f"{name}{suffix}",
                                          [py, "-m", "workers.cli.main", role(name)],
                                          env, self.log_dir, cwd)
        wait_ready([(p, f"{role(name)} ready") for name, p in self.procs.items()])
        self.variant = label

    def stop(self) -> None:
        stop_procs(self.procs.values())
        self.procs.clear()
