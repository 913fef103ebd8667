"""The end-to-end bench's open-cases pacing and its report (pure logic, no stack)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from bench import report
from bench.e2e import parse
from bench.open_cases import open_cases
from bench.processes import WORKERS, role, worker_names


@dataclass
class _SlowCity:
    """Signs for each parked case a little after it is filed, on a thread of its own."""

    sign_after_s: float
    parked_dispatched: int = 0
    parked_signed: int = 0
    notices: list[dict[str, Any]] = field(default_factory=list)
    max_waiting: int = 0
    _filed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def producer(self) -> _SlowCity:
        return self

    def flush(self) -> None:
        pass

    def file(self, cid: str, *, park: bool = False) -> None:
        assert park
        with self._lock:
            self._filed += 1
            self.max_waiting = max(self.max_waiting, self._filed - self.parked_signed)
        self.parked_dispatched += 1
        threading.Timer(self.sign_after_s, self._sign).start()

    def _sign(self) -> None:
        with self._lock:
            self.parked_signed += 1


class _Sampler:
    def rss(self, name: str) -> int:
        return 100 * 2**20


def test_open_cases_never_has_more_than_the_backlog_waiting_to_be_signed_for() -> None:
    city = _SlowCity(sign_after_s=0.05)
    started = time.monotonic()
    out = open_cases(city, _Sampler(), 60, None, "t", settle_s=0,  # type: ignore[arg-type]
                     backlog=5)
    assert out["filed"] == out["signed"] == 60
    assert city.max_waiting == 5
    # 60 cases, 5 at a time, each signed 50 ms after filing: at least 12 rounds of waiting.
    assert time.monotonic() - started >= 12 * 0.05


def _open_result(**open_cases: Any) -> dict[str, Any]:
    return {
        "started": "2026-12-02T00:00:00+00:00", "time_scale": 0.01, "cpus": 2,
        "peak_rss_mib": {"worker": 731.0, "temporal": 431.0},
        "open_cases": {
            "open": 3000, "filed": 3000, "filing_s": 235.0, "dispatched": 3000,
            "worker_rss_bytes": {"1000": {"worker_bytes": 441 * 2**20,
                                          "temporal_bytes": 332 * 2**20,
                                          "elapsed_s": 84.0, "open_at_read": 1061}},
            "notices": 0, "notice_late_s": {"p50": None, "p95": None, "p99": None,
                                            "max": None},
            **open_cases,
        },
    }


def test_a_run_without_bursts_reports_peak_rss_alone_and_counts_signed_cases() -> None:
    text = report.markdown(_open_result(signed=3000, backlog=200))
    assert "| process | peak RSS MiB (whole run) |\n|---|---|\n| worker | 731 |" in text
    assert "CPU s / case" not in text and "**total**" not in text
    assert ("| parked T15D cases signed for | 3000/3000 filed (3000 asked, at most 200 "
            "waiting) in 235 s |") in text


def test_a_stored_run_from_before_the_backlog_bound_still_reports_dispatched() -> None:
    text = report.markdown(_open_result())
    assert "| parked T15D cases dispatched | 3000/3000 filed (3000 asked) in 235 s |" in text


def test_a_long_run_writes_its_pace_between_marks(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr("bench.open_cases.PROGRESS_EVERY_S", 0.02)
    progress = tmp_path / "progress.json"
    seen: list[dict[str, Any]] = []
    write = type(progress).write_text

    def keep(path: Any, text: str, *args: Any, **kwargs: Any) -> int:
        seen.append(json.loads(text))
        return write(path, text, *args, **kwargs)

    monkeypatch.setattr(type(progress), "write_text", keep)
    # 300 cases: below the first mark (1,000), so only the heartbeat writes.
    open_cases(_SlowCity(sign_after_s=0.01), _Sampler(), 300, None,  # type: ignore[arg-type]
               "t", settle_s=0, progress=progress, backlog=5)
    between = [s for s in seen if not s["worker_rss_bytes"]]
    assert len(between) >= 2
    assert [s["open_now"] for s in between] == sorted(s["open_now"] for s in between)
    assert between[-1]["open_now"] > between[0]["open_now"]
    assert all(s["open"] == 300 and s["elapsed_s"] >= 0 for s in between)


def test_a_variant_asks_for_worker_processes_by_number() -> None:
    assert worker_names({}) == ["worker"]
    assert worker_names({WORKERS: "3"}) == ["worker", "worker-2", "worker-3"]
    assert [role(n) for n in ("worker-3", "bare-worker", "bridges")] == [
        "worker", "bare-worker", "bridges"]
    for bad in ("0", "two", "-1", ""):
        with pytest.raises(ValueError, match=WORKERS):
            worker_names({WORKERS: bad})


def test_a_bad_worker_count_stops_the_run_before_it_starts(capsys: Any) -> None:
    assert parse(["--variant", "two:BENCH_WORKERS=2"]).variant == ["two:BENCH_WORKERS=2"]
    with pytest.raises(SystemExit):
        parse(["--variant", "two:BENCH_WORKERS=none"])
    assert "BENCH_WORKERS must be a whole number" in capsys.readouterr().err


def test_two_workers_are_listed_apart_and_summed_with_the_cores_they_kept_busy() -> None:
    result = {
        "started": "2026-12-06T19:45:00+00:00", "time_scale": 0.01, "cpus": 2,
        "peak_rss_mib": {"temporal": 400.0, "worker": 220.0, "worker-2": 200.0},
        "cpu_s_per_case": {"hotline": {"temporal": 0.08, "worker": 0.05},
                           "two-workers": {"temporal": 0.08, "worker": 0.03, "worker-2": 0.03}},
        "cores_busy": {"hotline": {"temporal": 0.9, "worker": 0.6, "machine": 1.9},
                       "two-workers": {"temporal": 0.9, "worker": 0.4, "worker-2": 0.4,
                                       "machine": 1.95}},
    }
    text = report.markdown(result)
    assert "| worker-2 | - | 0.0300 | 200 |" in text
    assert "| worker, 2 processes summed | 0.0500 | 0.0600 | 420 (sum of peaks) |" in text
    # The sum is a view of the rows above it, not counted again in the total.
    assert "| **total** | 0.1300 | 0.1400 |" in text
    assert "| worker-2 | - | 0.40 |" in text
    assert "| **machine** (every process on it) | 1.90 | 1.95 |" in text
