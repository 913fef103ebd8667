"""Decode + validate throughput per core for intake records (schemas/codec.py).

Encodes a mix of intake records (filings from the demo city, supplements, urges,
withdrawals), then decodes them in a loop on one thread and prints decodes per CPU
second (process time, so a busy shared machine inflates it less than wall time would).
Target: at least 50,000 per second per core.

    .venv/bin/python -m bench.bench_codec [--seconds 5]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

from schemas import codec
from schemas.codec import decode, encode


def intake_records() -> list[bytes]:
    from workers.devstack.city import generate_city

    at = datetime(2026, 11, 22, 8, tzinfo=UTC)
    out: list[bytes] = []
    for case in generate_city(300, seed=7):
        f: dict[str, Any] = dict(case.filing)
        out.append(encode("ComplaintFiled", f))
        cid = f["complaint_id"]
        out.append(encode("ComplaintUrged", {"event_id": f"u-{cid}", "complaint_id": cid,
                                             "at": at, "content": "市民催办，请尽快处理"}))
        out.append(encode("ComplaintSupplemented", {
            "event_id": f"s-{cid}", "complaint_id": cid, "at": at,
            "content": "补充：问题仍然存在", "attachments": []}))
    return out


def measure(records: list[bytes], seconds: float) -> tuple[float, float, int]:
    count = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while time.process_time() - cpu0 < seconds:
        for data in records:
            decode(data)
        count += len(records)
    return count / (time.process_time() - cpu0), count / (time.perf_counter() - wall0), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--compare", action="store_true",
                        help="also time the earlier decode (full validation), same run")
    args = parser.parse_args()
    mix = intake_records()
    filings = mix[::3]  # the largest intake record, and the most common one
    measure(mix, 0.5)  # warm-up
    for label, records in (("ComplaintFiled only", filings), ("intake mix", mix)):
        per_cpu_s, per_wall_s, count = measure(records, args.seconds)
        avg = sum(map(len, records)) / len(records)
        print(f"codec, {label}: {count} decoded+validated (avg {avg:.0f} bytes): "
              f"{per_cpu_s:,.0f}/s per core (CPU time), {per_wall_s:,.0f}/s wall; "
              "target ≥ 50,000")
    if args.compare:
        # The earlier decode: fastavro's full validation after every strict read.
        readers = list(codec._READERS.values())
        saved = [r.check_ranges for r in readers]
        for r in readers:
            object.__setattr__(r, "check_ranges", True)
        try:
            per_cpu_s, _, _ = measure(filings, args.seconds)
        finally:
            for r, was in zip(readers, saved, strict=True):
                object.__setattr__(r, "check_ranges", was)
        print(f"codec, ComplaintFiled only, full validation on decode (before): "
              f"{per_cpu_s:,.0f}/s per core")


if __name__ == "__main__":
    main()
