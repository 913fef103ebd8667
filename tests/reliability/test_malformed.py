"""Fault 6: malformed messages among good ones on the intake topic.

Six kinds, in equal shares: random bytes, bit flips of a valid filing, truncated
filings, filings with trailing bytes, an unknown schema fingerprint, and valid Avro whose
content breaks the contract (empty ids, NUL characters). Each goes to the DLQ once and
holds nothing up; every good message (filings, then supplements to those cases) is
applied once.
"""

from __future__ import annotations

import asyncio
import io
import random
from collections import Counter

import fastavro
import psycopg
import pytest

from schemas import codec
from tests.reliability.conftest import record
from tests.reliability.harness import Harness, Out, encoded, filing, scaled

pytestmark = pytest.mark.stack

SUPPLEMENTS_PER_CASE = 4


def malformed(rng: random.Random, kind: int, good: bytes) -> bytes:
    """One bad payload of ``kind`` (0-5), derived from the valid filing ``good``."""
    if kind == 0:
        return rng.randbytes(rng.randint(0, 300))
    if kind == 1:
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data))
            data[pos] ^= 1 << rng.randrange(8)
        return bytes(data)
    if kind == 2:
        return good[: rng.randrange(len(good))]
    if kind == 3:
        return good + rng.randbytes(rng.randint(1, 20))
    if kind == 4:
        return good[:2] + rng.randbytes(8) + good[10:]
    bad = filing("X", event_id="e")
    bad.update(rng.choice([{"complaint_id": ""}, {"event_id": " "},
                           {"content": "漏水\x00"}, {"complaint_id": "A\x00B"}]))
    return codec_bypass(bad)


def codec_bypass(record: dict[str, object]) -> bytes:
    """Valid Avro that the codec's encoder would refuse (it validates content too)."""
    reader = codec._reader_for("ComplaintFiled")
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(reader.schema), record)
    return reader.header + body.getvalue()


def rejected(value: bytes) -> bool:
    try:
        codec.decode(value)
    except codec.DecodeError:
        return True
    return False


async def malformed_mix(h: Harness, good_total: int, bad_total: int) -> None:
    s = h.settings
    rng = random.Random(6)
    cases = good_total // (1 + SUPPLEMENTS_PER_CASE)
    cids = [f"MAL{h.run_id}-{i:05d}" for i in range(cases)]
    good: list[Out] = []
    for cid in cids:
        good.append(encoded(s.topic_intake, cid, "ComplaintFiled", filing(cid)))
        for n in range(SUPPLEMENTS_PER_CASE):
            good.append(encoded(s.topic_intake, cid, "ComplaintSupplemented", {
                "event_id": f"sup-{cid}-{n}", "complaint_id": cid, "at": filing(cid)["filed_at"],
                "content": f"第{n + 1}次补充：还在坏", "attachments": []}))
    bad: list[Out] = []
    still_valid = 0  # bit flips that land on a still-valid record: not malformed at all
    template = good[0].value
    while len(bad) < bad_total:
        kind = len(bad) % 6
        value = malformed(rng, kind, template)
        if not rejected(value):
            still_valid += 1
            continue
        bad.append(Out(s.topic_intake, f"bad-{len(bad)}", value, []))
    # Bad messages spread over the good ones (and over every partition, by key).
    mixed = list(good)
    for b in bad:
        mixed.insert(rng.randrange(len(mixed) + 1), b)

    h.start("worker")
    h.start("bridges")
    # Units answer only once every supplement is in, so none meets a closed case.
    await h.send(mixed)
    h.mark_fault_end()
    # At the scale 8,000 supplements take about half an hour on 2 cores.
    await wait_supplements(h, cases * SUPPLEMENTS_PER_CASE, timeout=3000)
    h.start_responder()
    fig = await h.check(f"6. malformed: {bad_total} bad among {len(good)} good",
                        dict.fromkeys(cids, "CLOSED"), injected=bad_total, timeout=1800)
    async with await psycopg.AsyncConnection.connect(s.dsn, autocommit=True) as conn:
        rows = await (await conn.execute(
            "SELECT complaint_id, count(*) FROM case_events WHERE event_type = 'SUPPLEMENTED' "
            "AND complaint_id = ANY(%s) GROUP BY complaint_id", (cids,))).fetchall()
    per_case = Counter({r[0]: r[1] for r in rows})
    short = [c for c in cids if per_case[c] < SUPPLEMENTS_PER_CASE]
    over = [c for c in cids if per_case[c] > SUPPLEMENTS_PER_CASE]
    fig.lost += len(short)
    fig.duplicated += len(over)
    fig.notes.append(f"DLQ reasons {dict(h.dlq_reasons)}; {still_valid} bit flips "
                     "decoded as valid records were not sent")
    record(fig)
    assert (fig.lost, fig.duplicated, fig.dlq) == (0, 0, bad_total), fig.line()


async def wait_supplements(h: Harness, total: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with await psycopg.AsyncConnection.connect(h.settings.dsn, autocommit=True) as conn:
        while loop.time() < deadline:
            row = await (await conn.execute(
                "SELECT count(*) FROM case_events WHERE event_type = 'SUPPLEMENTED'")).fetchone()
            if row and row[0] >= total:
                return
            await asyncio.sleep(1.0)


@pytest.mark.reliability_quick
async def test_malformed_mix_quick(harness: Harness) -> None:
    await malformed_mix(harness, good_total=100, bad_total=24)


@pytest.mark.reliability
async def test_malformed_mix(harness: Harness) -> None:
    await malformed_mix(harness, good_total=scaled(10_000), bad_total=scaled(1000))
