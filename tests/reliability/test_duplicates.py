"""Faults 3 and 4: the same filings and callbacks delivered again, while the cases run
and after they closed. Nothing may start twice or be applied twice; only what reaches a
closed case is dead-lettered (``CASE_CLOSED``)."""

from __future__ import annotations

import pytest

from tests.reliability.conftest import record
from tests.reliability.harness import Harness, scaled

pytestmark = pytest.mark.stack


async def duplicate_storm(h: Harness, filings: int, dup_callbacks: int) -> None:
    cids = [f"DUP{h.run_id}-{i:05d}" for i in range(filings)]
    h.start("worker")
    h.start("bridges")
    # The callback duplicates go to cases that reopen on the first answer, so the repeat
    # arrives while the case is open again: it must be recognised, not applied.
    h.start_responder(reopen=cids[:dup_callbacks], duplicate_callbacks=cids[:dup_callbacks])
    await h.file(cids, copies=3)
    h.mark_fault_end()
    fig = await h.check(f"3. duplicate storm: {filings} filings x3, "
                        f"{dup_callbacks} duplicate callbacks",
                        dict.fromkeys(cids, "CLOSED"), injected=0, timeout=1800)
    assert h.responder is not None
    fig.notes.append(f"{h.responder.duplicates_sent} duplicate callbacks sent")
    record(fig)
    assert h.responder.duplicates_sent == dup_callbacks
    assert (fig.lost, fig.duplicated, fig.dlq) == (0, 0, 0), fig.line()


@pytest.mark.reliability_quick
async def test_duplicate_storm_quick(harness: Harness) -> None:
    await duplicate_storm(harness, filings=40, dup_callbacks=20)


@pytest.mark.reliability
async def test_duplicate_storm(harness: Harness) -> None:
    await duplicate_storm(harness, filings=scaled(1000), dup_callbacks=scaled(500))


async def late_duplicates(h: Harness, cases: int) -> None:
    s = h.settings
    cids = [f"LATE{h.run_id}-{i:04d}" for i in range(cases)]
    h.start("worker")
    h.start("bridges")
    responder = h.start_responder()
    filed = await h.file(cids)
    await h.wait_states(dict.fromkeys(cids, "CLOSED"), timeout=300)
    await h.wait_runs_closed(cids)
    # Everything again, after the cases closed: filings (the id is never reused), the
    # units' replies and the callback answers (refused: the case is closed).
    replies = [m for m in responder.sent if m.topic == s.topic_unit_replies]
    answers = [m for m in responder.sent if m.topic == s.topic_callbacks]
    late = replies + answers
    assert len(answers) == cases and len(replies) == 2 * cases
    await h.send(filed + late)
    h.mark_fault_end()
    fig = record(await h.check(
        f"4. late duplicates: {cases} filings, {len(late)} replies/callbacks after close",
        dict.fromkeys(cids, "CLOSED"), injected=len(late), timeout=300))
    assert set(h.dlq_reasons) == {"CASE_CLOSED"}, h.dlq_reasons
    assert (fig.lost, fig.duplicated, fig.dlq) == (0, 0, len(late)), fig.line()


@pytest.mark.reliability_quick
async def test_late_duplicates_quick(harness: Harness) -> None:
    await late_duplicates(harness, cases=20)


@pytest.mark.reliability
async def test_late_duplicates(harness: Harness) -> None:
    await late_duplicates(harness, cases=scaled(300))
