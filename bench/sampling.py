"""CPU seconds and peak RSS per process of an end-to-end bench run (psutil)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable

import psutil


class Sampler:
    """CPU seconds (process + children) and peak RSS of named processes, sampled."""

    def __init__(self, pids: dict[str, int], trees: Iterable[str] = (),
                 interval: float = 0.5) -> None:
        self._procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        # Servers whose children do their work (PostgreSQL backends); the bench's own
        # children are the processes measured apart.
        self._trees = set(trees)
        self.peak_rss: dict[str, int] = dict.fromkeys(pids, 0)
        self._interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sampler")

    def _tree(self, name: str) -> list[psutil.Process]:
        p = self._procs.get(name)
        if p is None:  # dropped while the RSS thread was going round
            return []
        if name not in self._trees:
            return [p]
        try:
            return [p, *p.children(recursive=True)]
        except psutil.Error:
            return [p]

    def cpu(self) -> dict[str, float]:
        out = {}
        for name in self._procs:
            total = 0.0
            for p in self._tree(name):
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.user + t.system
            out[name] = total
        return out

    @staticmethod
    def machine_busy() -> float:
        """CPU seconds the whole machine has been busy, every core and process (not idle)."""
        t = psutil.cpu_times()
        # Linux counts guest time inside user and nice already; steal is the host's.
        return float(sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq",
                                                       "softirq")))

    def set_pid(self, name: str, pid: int) -> None:
        with self._lock:
            self._procs[name] = psutil.Process(pid)
            self.peak_rss.setdefault(name, 0)

    def drop(self, name: str) -> None:
        """Stop measuring a process that is gone (its peak RSS stays in the report)."""
        with self._lock:
            self._procs.pop(name, None)

    def names(self) -> list[str]:
        return list(self._procs)

    def pid(self, name: str) -> int:
        return int(self._procs[name].pid)

    def rss(self, name: str) -> int:
        total = 0
        for p in self._tree(name):
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            for name in list(self._procs):
                r = self.rss(name)
                with self._lock:
                    self.peak_rss[name] = max(self.peak_rss[name], r)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
