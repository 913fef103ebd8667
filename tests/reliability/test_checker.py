"""The checker itself: a run with planted faults must be reported, not passed.

Every other test of the suite proves "0 lost, 0 duplicated" with :meth:`Harness.check`; if
the checker could not see a loss or a duplicate those rows would mean nothing. Here a few
cases run to the end, then each kind of damage the checker looks for is planted by hand
and each must show up in the figures.
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from schemas import codec
from tests.reliability.harness import Harness, Out, read_topic

pytestmark = pytest.mark.stack


@pytest.mark.reliability_quick
async def test_the_checker_reports_planted_losses_and_duplicates(harness: Harness) -> None:
    h = harness
    s = h.settings
    cids = [f"CHK{h.run_id}-{i}" for i in range(6)]
    h.start("worker")
    h.start("bridges")
    h.start_responder()
    await h.file(cids)
    await h.wait_states(dict.fromkeys(cids, "CLOSED"), timeout=300)
    clean = await h.check("checker, untouched", dict.fromkeys(cids, "CLOSED"))
    assert (clean.lost, clean.duplicated, clean.dlq) == (0, 0, 0), clean.line()
    # Silence the units, so the planted dispatch below is not answered (which would
    # dead-letter more than the one planted message).
    assert h.responder is not None
    h.responder.stop.set()
    h.responder.join(30)

    # 1. A second, different DispatchIssued for a step the workflow never took
    #    (a unit would get the same work twice).
    dispatches = [codec.decode(r.value)
                  for r in read_topic(s.kafka_bootstrap, s.topic_dispatches)]
    issued = next(d for d in dispatches
                  if d.name == "DispatchIssued" and d.record["complaint_id"] == cids[0])
    twin = dict(issued.record)
    parts = twin["event_id"].split(":")
    parts[-3] = "999"
    twin.update(event_id=":".join(parts), dispatch_id=twin["dispatch_id"] + "-twin")
    # 2. One lifecycle event id published again with other content.
    lifecycle = [codec.decode(r.value)
                 for r in read_topic(s.kafka_bootstrap, s.topic_lifecycle)]
    event = next(d for d in lifecycle if d.record["complaint_id"] == cids[1])
    altered = dict(event.record)
    altered["reason"] = (altered.get("reason") or "") + " (altered)"
    # 3. A message on the DLQ that the test does not declare as injected.
    await h.send([
        Out(s.topic_dispatches, cids[0], codec.encode("DispatchIssued", twin),
            codec.headers_for("DispatchIssued")),
        Out(s.topic_lifecycle, cids[1], codec.encode("LifecycleEvent", altered),
            codec.headers_for("LifecycleEvent")),
        Out(s.topic_intake, "garbage", b"\x00not avro at all", []),
    ])
    # 4. A ledger row lost: the last lifecycle row of one case.
    async with await psycopg.AsyncConnection.connect(s.dsn, autocommit=True) as conn:
        await conn.execute(
            "DELETE FROM case_events WHERE complaint_id = %s AND seq = "
            "(SELECT max(seq) FROM case_events WHERE complaint_id = %s)",
            (cids[2], cids[2]))
    # 5. A complaint expected but never filed (no workflow at all).
    never = f"CHK{h.run_id}-never"
    expected = dict.fromkeys([*cids, never], "CLOSED")

    for _ in range(120):
        if await h._dlq_count() >= 1:
            break
        await asyncio.sleep(0.5)
    fig = await h.check("checker, damaged", expected, timeout=5)
    print(fig.line())
    notes = " ".join(fig.notes)
    assert fig.lost == 2, fig.line()  # the deleted ledger row and the unfiled complaint
    assert never in notes and cids[2] in notes, notes
    # The twin dispatch counts as an extra step and as an unknown dispatch; the altered
    # event as two different copies of one id.
    assert fig.duplicated == 3, fig.line()
    assert f"{event.record['event_id']} published with different content" in notes, notes
    assert f"{cids[0]}: records for steps {{999}} not in workflow" in notes, notes
    assert f"{cids[0]}: issued " in notes and twin["dispatch_id"] in notes, notes
    assert (fig.dlq, fig.injected) == (1, 0), fig.line()
