"""Faults 7, 8 and 9: PostgreSQL, the Kafka broker and the Temporal server go away under
load and come back with their data."""

from __future__ import annotations

import asyncio

import pytest

from tests.reliability.conftest import record
from tests.reliability.harness import Harness, scaled
from workers.devstack.stack import (
    KAFKA,
    POSTGRES,
    TEMPORAL,
    StackError,
    ensure_stack,
    start_component,
    stop_component,
)
from workers.runtime.settings import Settings

pytestmark = pytest.mark.stack


async def server_outage(h: Harness, fault: str, component: str, *, cases: int,
                        down_s: float, times: int = 1, up_s: float = 20) -> None:
    cids = [f"SV{h.run_id}-{i:05d}" for i in range(cases)]
    h.start("worker")
    h.start("bridges")
    h.start_responder()
    per_round = max(1, cases // (times + 1))
    rounds = [cids[i:i + per_round] for i in range(0, cases, per_round)]
    try:
        for n in range(times):
            await h.file(rounds[n] if n < len(rounds) else [])
            await asyncio.sleep(3)  # the cases are under way when the server goes
            await asyncio.to_thread(stop_component, component, h.settings)
            await asyncio.sleep(down_s)
            await restart(component, h)
            if n < times - 1:
                await asyncio.sleep(up_s)
    except BaseException:
        # A restart failed: the tests after this one still get the whole stack back.
        await asyncio.to_thread(ensure_stack, Settings())
        raise
    h.mark_fault_end()
    for rest in rounds[times:]:
        await h.file(rest)
    fig = record(await h.check(fault, dict.fromkeys(cids, "CLOSED"), timeout=1800))
    assert (fig.lost, fig.duplicated, fig.dlq) == (0, 0, 0), fig.line()


async def restart(component: str, h: Harness, attempts: int = 6) -> None:
    """Start ``component`` again; the old process may still hold its port for a while."""
    for attempt in range(attempts):
        try:
            await asyncio.to_thread(start_component, component, h.settings)
            return
        except StackError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(10)


@pytest.mark.reliability
async def test_postgres_stopped_120s(harness: Harness) -> None:
    await server_outage(harness, "7. PostgreSQL stopped for 120 s under load", POSTGRES,
                        cases=scaled(200), down_s=120)


@pytest.mark.reliability
async def test_kafka_restarted_three_times(harness: Harness) -> None:
    await server_outage(harness, "8. Kafka broker stopped and restarted 3 times", KAFKA,
                        cases=scaled(200), down_s=20, times=3)


@pytest.mark.reliability
async def test_temporal_restarted(harness: Harness) -> None:
    await server_outage(harness, "9. Temporal server restarted under load", TEMPORAL,
                        cases=scaled(200), down_s=10)
