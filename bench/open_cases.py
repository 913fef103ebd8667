"""Open cases: parks T15D cases whose escalation timers stay armed, and measures them.

Worker RSS as the number of open cases passes each mark, and how late escalation
notices reach Kafka while cases are being filed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.city import City, wait_until
from bench.report import fmt, pct
from bench.sampling import Sampler

PROGRESS_EVERY_S = 300
OPEN_MARKS = (1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 75_000, 100_000)


def by_minute(notices: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Notice lateness per minute of deadlines: a stall shows as the minutes it hit."""
    if not notices:
        return []
    first = min(x["deadline"] for x in notices)
    minutes: dict[int, list[float]] = {}
    for x in notices:
        minutes.setdefault(int((x["deadline"] - first) // 60), []).append(x["late_s"])
    return [{"minute": m, "notices": len(v), "p50": pct(v, 50), "p99": pct(v, 99),
             "max": max(v)} for m, v in sorted(minutes.items())]


def open_cases(city: City, sampler: Sampler, n: int, rate: float | None, tag: str,
               settle_s: float, max_s: float = 0, progress: Path | None = None,
               backlog: int = 200) -> dict[str, Any]:
    """Park up to ``n`` T15D cases; worker RSS as each mark is passed.

    A parked case counts as open once its unit has signed for it (its SIGNED lifecycle
    event is on Kafka): from then on only the escalation ladder's timers wake it. RSS is
    read the moment the ``m``-th parked case is signed for, while filing goes on, so each
    mark sees that many open cases. At most ``backlog`` cases are filed and not yet
    signed for: filing faster than the stack parks them only queues work, and a case
    queued past its scaled sign-for deadline (2 h, 72 s at time scale 0.01) escalates,
    which adds work and slows the parking further. ``max_s`` (0 = none) stops filing
    after that many seconds: the marks reached are reported, the rest are not. After
    each mark the figures so far are written to ``progress`` so a run cut short still
    leaves them.
    """
    ids = [f"O{tag}-{i:06d}" for i in range(n)]
    marks = sorted({m for m in OPEN_MARKS if m <= n} | {n})
    rss: dict[str, dict[str, float]] = {}
    mine = set(ids)
    t0 = written = time.time()  # written: when progress was last written

    def lateness() -> dict[str, Any]:
        notices = [x for x in list(city.notices) if x["complaint_id"] in mine]
        late = [x["late_s"] for x in notices]
        return {"notices": len(late),
                "notice_late_s": {f"p{q}": pct(late, q) for q in (50, 95, 99)}
                | {"max": max(late) if late else None},
                "notice_late_by_minute": by_minute(notices)}

    def take_marks() -> None:
        while len(rss) < len(marks):
            m = marks[len(rss)]
            if city.parked_signed < m:
                return
            time.sleep(2)  # let the sign-for updates of the last few land
            rss[str(m)] = {"worker_bytes": sampler.rss("worker"),
                           "temporal_bytes": sampler.rss("temporal"),
                           "elapsed_s": round(time.time() - t0, 1),
                           "open_at_read": city.parked_signed}
            so_far = lateness()
            print(f"  {m:>7} open after {rss[str(m)]['elapsed_s']:.0f} s: worker RSS "
                  f"{rss[str(m)]['worker_bytes'] / 2**20:.0f} MiB, Temporal RSS "
                  f"{rss[str(m)]['temporal_bytes'] / 2**20:.0f} MiB, notices "
                  f"{so_far['notices']}, late p99 {fmt(so_far['notice_late_s']['p99'])} s",
                  flush=True)
            write_progress(so_far)

    def write_progress(so_far: dict[str, Any]) -> None:
        nonlocal written
        written = time.time()
        if progress:
            progress.write_text(json.dumps(
                {"open": n, "worker_rss_bytes": rss, "open_now": city.parked_signed,
                 "elapsed_s": round(written - t0, 1), **so_far}, indent=2))

    filed = 0
    for i, cid in enumerate(ids):
        if max_s and time.time() - t0 > max_s:
            print(f"  --open-max-s {max_s:.0f} reached: stopped filing at {filed} cases",
                  flush=True)
            break
        if rate:
            delay = t0 + i / rate - time.time()
            if delay > 0:
                time.sleep(delay)
        if filed - city.parked_signed >= backlog:
            city.producer.flush()
            wait_until(lambda k=filed: k - city.parked_signed < backlog, 600)
        city.file(cid, park=True)
        filed += 1
        # Every filing: a mark read late would count more open cases than it says.
        take_marks()
        if time.time() - written > PROGRESS_EVERY_S:  # a long run cut short keeps its pace
            write_progress(lateness())
    city.producer.flush()
    wait_until(lambda: city.parked_signed >= filed, 1800)
    take_marks()
    filed_s = time.time() - t0
    time.sleep(settle_s)
    return {
        "open": n, "filed": filed, "filing_s": round(filed_s, 1), "worker_rss_bytes": rss,
        "dispatched": city.parked_dispatched, "signed": city.parked_signed, "backlog": backlog,
        **lateness(),
    }
