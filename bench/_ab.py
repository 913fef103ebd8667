"""Interleaved A/B rounds for the in-process benchmarks.

The ways alternate within each round, so a noisy minute on a shared machine slows every
way alike instead of one of them; the medians over rounds are what gets compared.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping


def interleaved(ways: Mapping[str, Callable[[], float]], rounds: int,
                show: Callable[[float], str]) -> dict[str, float]:
    """Run every way once per round, print each round, and return each way's median."""
    times: dict[str, list[float]] = {way: [] for way in ways}
    for r in range(rounds):
        for way, measure in ways.items():
            times[way].append(measure())
        print(f"round {r + 1}: " + ", ".join(f"{way} {show(t[-1])}" for way, t in times.items()),
              flush=True)
    return {way: statistics.median(t) for way, t in times.items()}
