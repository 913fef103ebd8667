"""How a bridge applies one partition's chunk: each case's messages in order, cases side by side.

``workers.bridges.consumer.apply_by_key`` is pure scheduling (the bridges hand it the function that
applies a message to Temporal), so it is tested alone here; the end-to-end and DLQ tests
run it against the real stack.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from workers.bridges.consumer import apply_by_key


@dataclass(frozen=True)
class Msg:
    key: bytes | None
    offset: int


def _chunk(*keys: str) -> list[Msg]:
    return [Msg(k.encode(), i) for i, k in enumerate(keys)]


async def test_each_key_in_order_and_the_commit_offset_after_the_last() -> None:
    chunk = _chunk("a", "b", "a", "c", "b", "a")
    seen: list[Msg] = []

    async def apply(m: Msg) -> bool:
        # Later messages finish first unless order is kept per key.
        await asyncio.sleep(0.001 * (10 - m.offset))
        seen.append(m)
        return True

    assert await apply_by_key(chunk, apply, lanes=16) == (6, None)
    assert sorted(m.offset for m in seen) == list(range(6))
    for key in (b"a", b"b", b"c"):
        offsets = [m.offset for m in seen if m.key == key]
        assert offsets == sorted(offsets)


async def test_a_slow_case_does_not_hold_the_cases_behind_it() -> None:
    chunk = _chunk("slow", "fast")
    fast_done = asyncio.Event()

    async def apply(m: Msg) -> bool:
        if m.key == b"slow":
            # Finishes only once the message after it, another case's, was applied.
            await asyncio.wait_for(fast_done.wait(), timeout=5)
        else:
            fast_done.set()
        return True

    assert await apply_by_key(chunk, apply, lanes=2) == (2, None)


async def test_one_lane_applies_one_case_at_a_time() -> None:
    chunk = _chunk("a", "b", "c", "a")
    running = 0
    most = 0

    async def apply(m: Msg) -> bool:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001)
        running -= 1
        return True

    assert await apply_by_key(chunk, apply, lanes=1) == (4, None)
    assert most == 1
    most = 0
    await apply_by_key(chunk, apply, lanes=3)
    assert most == 3


async def test_a_refused_message_stops_its_case_only_and_is_fetched_again() -> None:
    # Offsets: 0 a, 1 b, 2 a (refused), 3 b, 4 a, 5 c.
    chunk = _chunk("a", "b", "a", "b", "a", "c")
    applied: list[int] = []

    async def apply(m: Msg) -> bool:
        if m.offset == 2:
            return False
        applied.append(m.offset)
        return True

    next_offset, stalled_at = await apply_by_key(chunk, apply, lanes=16)
    # Commit up to the refused message, fetch again from it; a's later message waits.
    assert (next_offset, stalled_at) == (2, 2)
    assert sorted(applied) == [0, 1, 3, 5]


async def test_nothing_applied_commits_nothing() -> None:
    async def refuse(m: Msg) -> bool:
        return False

    assert await apply_by_key(_chunk("a", "b"), refuse, lanes=4) == (None, 0)
    assert await apply_by_key([], refuse, lanes=4) == (None, None)
