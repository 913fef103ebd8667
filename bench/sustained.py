"""Sustained load: files at a steady rate and reports throughput and latency percentiles."""

from __future__ import annotations

import time
from typing import Any

from bench.city import City, wait_until
from bench.report import pct


def sustained(city: City, rate: float, duration: float, tag: str,
              drain_s: float) -> dict[str, Any]:
    n = max(1, int(rate * duration))
    ids = [f"S{tag}-{i:06d}" for i in range(n)]
    t0 = time.time()
    for i, cid in enumerate(ids):
        delay = t0 + i / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        city.file(cid)
    filing_end = time.time()
    wait_until(lambda: all(city.cases[c].closed for c in ids), drain_s)
    cases = [city.cases[c] for c in ids]
    closed = [c for c in cases if c.closed]
    to_dispatch = [c.dispatched - c.filed for c in cases if c.dispatched]
    to_close = [c.closed - c.filed for c in closed if c.closed]
    end = max((c.closed for c in closed if c.closed), default=time.time())
    return {
        "rate_offered": rate, "duration_s": duration, "filed": n,
        "filing_s": round(filing_end - t0, 1),
        "closed": len(closed), "completed_per_s": len(closed) / max(1e-9, end - t0),
        "intake_to_dispatch_s": {f"p{q}": pct(to_dispatch, q) for q in (50, 95, 99)},
        "intake_to_closed_s": {f"p{q}": pct(to_close, q) for q in (50, 95, 99)},
    }
