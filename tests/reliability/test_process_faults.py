"""Faults 1, 2, 5 and 12: the worker and the bridges die (SIGKILL) or come and go."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from tests.reliability.conftest import record
from tests.reliability.harness import Harness, scaled

pytestmark = pytest.mark.stack

UNDER_WAY = {"ACCEPTED", "DISPATCHED", "SIGNED", "IN_PROGRESS", "COMPLETED", "CALLBACK"}


async def all_closed(h: Harness, fault: str, cids: list[str], note: str = "") -> None:
    """The fault is over: wait for every case to close, check, record and assert the row."""
    h.mark_fault_end()
    fig = await h.check(fault, dict.fromkeys(cids, "CLOSED"), timeout=1800)
    if note:
        fig.notes.append(note)
    record(fig)
    assert (fig.lost, fig.duplicated, fig.dlq) == (0, 0, 0), fig.line()


async def worker_killed(h: Harness, cases: int) -> None:
    cids = [f"WK{h.run_id}-{i:04d}" for i in range(cases)]
    first = h.start("worker")
    h.start("bridges")
    h.start_responder()
    await h.file(cids)
    # Killed mid-flight: a quarter of the cases are under way, most are not done.
    await h.wait_count(cids, UNDER_WAY | {"CLOSED"}, cases // 4)
    first.kill()
    h.start("worker", wait=False)
    closed_before = sum(st == "CLOSED" for st in (await h.ledger_statuses(cids)).values())
    await all_closed(h, f"1. worker SIGKILLed with {cases} cases in flight", cids,
                     f"{closed_before} closed when killed")


@pytest.mark.reliability
async def test_worker_sigkill(harness: Harness) -> None:
    await worker_killed(harness, scaled(200))


async def _trickle(h: Harness, cids: list[str], seconds: float) -> None:
    """File ``cids`` evenly over ``seconds`` (steady load)."""
    chunks = max(1, int(seconds))
    per = max(1, len(cids) // chunks)
    for i in range(0, len(cids), per):
        await h.file(cids[i:i + per])
        await asyncio.sleep(seconds / chunks)


async def bridges_killed(h: Harness, kills: int, cases: int) -> None:
    rng = random.Random(5)
    cids = [f"BK{h.run_id}-{i:05d}" for i in range(cases)]
    h.start("worker")
    h.start_responder()
    load = asyncio.create_task(_trickle(h, cids, seconds=kills * 4))
    for _ in range(kills):
        proc = h.start("bridges", wait=False)
        # Anywhere in its life: starting, joining, polling, starting a case, committing.
        await asyncio.sleep(rng.uniform(0.5, 8.0))
        proc.kill()
    await load
    h.start("bridges", wait=False)
    await all_closed(h, f"5. bridges SIGKILLed {kills} times at random points", cids)


@pytest.mark.reliability
async def test_bridges_sigkill_at_random_points(harness: Harness) -> None:
    await bridges_killed(harness, kills=scaled(100), cases=scaled(300))


async def rolling_restarts(h: Harness, minutes: float, every_s: float) -> None:
    cids = [f"RR{h.run_id}-{i:05d}" for i in range(int(minutes * 60))]
    worker = h.start("worker")
    bridges = h.start("bridges")
    h.start_responder()
    load = asyncio.create_task(_trickle(h, cids, seconds=minutes * 60))
    end = time.monotonic() + minutes * 60
    restarts = 0
    while time.monotonic() < end:
        await asyncio.sleep(every_s / 2)
        await asyncio.to_thread(worker.terminate)
        worker = h.start("worker", wait=False)
        await asyncio.sleep(every_s / 2)
        await asyncio.to_thread(bridges.terminate)
        bridges = h.start("bridges", wait=False)
        restarts += 1
    await load
    await all_closed(h, f"2. rolling restarts every {every_s:.0f} s for {minutes:.0f} min",
                     cids, f"{restarts} restarts of each")


@pytest.mark.reliability
async def test_rolling_restarts(harness: Harness) -> None:
    await rolling_restarts(harness, minutes=10 * float(scaled(100)) / 100, every_s=60)


async def rebalance_storm(h: Harness, minutes: float, every_s: float) -> None:
    cids = [f"RB{h.run_id}-{i:05d}" for i in range(int(minutes * 60))]
    h.start("worker")
    h.start("bridges")
    h.start_responder()
    load = asyncio.create_task(_trickle(h, cids, seconds=minutes * 60))
    extra: list = []
    end = time.monotonic() + minutes * 60
    changes = 0
    rng = random.Random(12)
    while time.monotonic() < end:
        await asyncio.sleep(every_s)
        if extra and (len(extra) >= 2 or rng.random() < 0.5):
            await asyncio.to_thread(extra.pop(0).terminate)
        else:
            extra.append(h.start("bridges", wait=False))
        changes += 1
    await load
    await all_closed(h, f"12. rebalance storm: a bridge joins or leaves every {every_s:.0f} s",
                     cids, f"{changes} membership changes")


@pytest.mark.reliability
async def test_rebalance_storm(harness: Harness) -> None:
    await rebalance_storm(harness, minutes=5 * float(scaled(100)) / 100, every_s=20)
