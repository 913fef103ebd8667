"""Dispatch throughput on one core (not a timed test).

Runs the labelled requests (and the demo city's filings) through what the ``accept``
activity decides — ``first_look``: the rules and the learned model, locate, route, assess
— in a loop, and prints requests per second; and, interleaved in the same rounds, the
rules alone (classify, locate, decide_route), so the model's cost shows as a ratio.
Target: at least 2,000 requests/s on one core.

    .venv/bin/python bench/bench_routing.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import date

from activities.dispatch.classify import classify
from activities.dispatch.config import load_config
from activities.dispatch.decide import decide_route, first_look
from activities.dispatch.evaluation import load_labelled
from activities.dispatch.location import locate
from workers.runtime.settings import REPO_ROOT, Settings

DAY = date(2026, 11, 23)


def _requests() -> list[tuple[str, str | None, str | None, str | None]]:
    reqs = []
    for name in ("routing_labelled.jsonl", "routing_holdout.jsonl"):
        for rec in load_labelled(REPO_ROOT / "tests" / "data" / name):
            reqs.append((rec.content, rec.district, rec.street, rec.address))
    try:
        from workers.devstack.city import generate_city

        for case in generate_city(500, seed=7):
            f = case.filing
            reqs.append((f["content"], f["district"], f["street"], f["address"]))
    except ImportError:  # the demo is optional here
        pass
    return reqs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each round runs")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    started = time.perf_counter()
    cfg = load_config(Settings().config_dir)
    load_s = time.perf_counter() - started
    reqs = _requests()
    lexicon, registry = cfg.lexicon, cfg.registry

    def rules_alone(content: str, district: str | None, street: str | None,
                    address: str | None) -> None:
        cl = classify(lexicon, content)
        loc = locate(registry, district, street, address, content, at=DAY)
        if cl.redirect_to is None:
            decide_route(cfg, cl.category, loc, at=DAY)

    def accept(content: str, district: str | None, street: str | None,
               address: str | None) -> None:
        first_look(cfg, content, district=district, street=street, address=address, at=DAY)

    variants = {"first_look (rules + model)": accept, "rules alone": rules_alone}
    for fn in variants.values():
        for r in reqs[:200]:  # warm up
            fn(*r)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():  # interleaved: the same noise for both
            done, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < args.seconds:
                for r in reqs:
                    fn(*r)
                done += len(reqs)
            rates[name].append(done / (time.perf_counter() - t0))
    stages = {}
    for name, stage in (
        ("classify (rules)", lambda r: classify(lexicon, r[0])),
        ("model", lambda r: cfg.model.read(r[0]) if cfg.model else None),
        ("locate", lambda r: locate(registry, r[1], r[2], r[3], r[0], at=DAY)),
    ):
        t0 = time.perf_counter()
        for r in reqs * 5:
            stage(r)
        stages[name] = (time.perf_counter() - t0) / (len(reqs) * 5) * 1e6
    print(f"config loaded and checked in {load_s * 1000:.0f} ms "
          f"({len(registry.places)} place names, {len(lexicon._index)} lexicon phrases)")
    print(f"{len(reqs)} distinct requests, {args.rounds} rounds of {args.seconds:g} s on one core")
    for name, got in rates.items():
        print(f"{name}: {statistics.median(got):,.0f} requests/s "
              f"(median; rounds {', '.join(f'{r:,.0f}' for r in got)})")
    accept_rates = rates["first_look (rules + model)"]
    ratio = statistics.median(accept_rates) / statistics.median(rates["rules alone"])
    print(f"first_look / rules alone: {ratio:.2f}")
    print("per request: " + ", ".join(f"{k} {v:.0f} µs" for k, v in stages.items()))
    print("target ≥ 2,000 requests/s (first_look): "
          + ("met" if min(accept_rates) >= 2000 else "NOT met"))


if __name__ == "__main__":
    main()
