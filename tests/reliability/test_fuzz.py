"""The decoder fuzzed with hypothesis under a fixed budget: random bytes and mutations of
valid encodings. Any input either decodes to a valid record or raises ``DecodeError`` —
never another exception — and none takes long (no hang)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import codec
from tests.reliability.conftest import record
from tests.reliability.harness import Figures, filing

EXAMPLES = int(os.environ.get("HOTLINE_FUZZ_EXAMPLES", "400"))
SLOWEST_ALLOWED_S = 1.0

VALID = [
    codec.encode("ComplaintFiled", filing("FUZZ-1")),
    codec.encode("CallbackResult", {
        "event_id": "e", "complaint_id": "FUZZ-1", "at": datetime.now(UTC), "reached": True,
        "responded": True, "resolved": True, "satisfaction": "SATISFIED", "comment": "好"}),
    codec.encode("DispatchSigned", {
        "event_id": "e", "complaint_id": "FUZZ-1", "dispatch_id": "d", "unit_id": "u",
        "at": datetime.now(UTC), "signer": None}),
]


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(st.binary(max_size=400))
    base = bytearray(draw(st.sampled_from(VALID)))
    if kind == 1:  # bit flips
        for pos in draw(st.lists(st.integers(0, len(base) - 1), min_size=1, max_size=6)):
            base[pos] ^= 1 << draw(st.integers(0, 7))
        return bytes(base)
    if kind == 2:  # truncation
        return bytes(base[: draw(st.integers(0, len(base) - 1))])
    if kind == 3:  # trailing bytes
        return bytes(base) + draw(st.binary(min_size=1, max_size=40))
    # a byte range overwritten (lengths and varints become huge or negative)
    start = draw(st.integers(10, len(base) - 1))
    chunk = draw(st.binary(min_size=1, max_size=12))
    return bytes(base[:start]) + chunk + bytes(base[start + len(chunk):])


class Tally:
    runs = 0
    rejected = 0
    accepted = 0
    slowest = 0.0


@pytest.mark.reliability_quick
def test_decoder_fuzz() -> None:
    tally = Tally()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(payloads())
    def decode_one(data: bytes) -> None:
        started = time.perf_counter()
        try:
            decoded = codec.decode(data)
        except codec.DecodeError as exc:
            tally.rejected += 1
            assert exc.reason
        else:
            # What decodes is a whole, valid record: it encodes, and reads back the same.
            # (Not byte-equal: a boolean byte 2-255 reads as true, and encodes as 1.)
            again = codec.decode(codec.encode(decoded.name, decoded.record))
            assert again.record == decoded.record
            tally.accepted += 1
        elapsed = time.perf_counter() - started
        tally.slowest = max(tally.slowest, elapsed)
        tally.runs += 1
        assert elapsed < SLOWEST_ALLOWED_S, f"decode took {elapsed:.2f}s on {data!r}"

    decode_one()
    fig = Figures(f"fuzz: decoder, {EXAMPLES} examples budget", cases=tally.runs)
    fig.notes.append(f"0 crashes, 0 hangs; {tally.rejected} rejected with DecodeError, "
                     f"{tally.accepted} decoded to valid records (re-encode round-trips), "
                     f"slowest {tally.slowest * 1000:.1f} ms")
    print(f"\n[reliability] {fig.line()}")
    record(fig)
