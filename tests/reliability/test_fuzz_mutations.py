"""Fuzzing the decoder by mutating every record type, with a fixed seed and budget.

Inputs are mutations of real encodings of every contract record (the golden vectors and
a sample of each record type): bit flips, truncation, trailing bytes, inserted and
deleted bytes, a swapped or random fingerprint, splices of two encodings, and plain random
bytes. A fixed seed makes a failure repeatable. For every input ``decode`` must either
raise ``DecodeError`` or return a record that is itself a valid contract record (it
encodes again); any other exception is a crash, and any single decode slower than
``SLOW_S`` counts as a hang.

The budget is ``HOTLINE_FUZZ_INPUTS`` (20,000 in ``make test``; ``make reliability`` runs
the long test with 1,000,000).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from schemas import RECORD_NAMES, codec
from schemas.codec import DecodeError
from tests.reliability.conftest import record
from tests.reliability.harness import Figures

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden"
SLOW_S = 0.5
SEED = 20261122


def _seeds() -> list[bytes]:
    """The golden vectors, and every record type with all fields and with the required."""
    from tests.test_codec import RECORD_FILES, _raw, _sample_record

    seeds = [bytes.fromhex(p.read_text(encoding="ascii").strip())
             for p in sorted(GOLDEN.glob("*.hex"))]
    assert seeds, "the golden vectors are among the fuzzer's seeds"
    for name in sorted(RECORD_FILES):
        for full in (True, False):
            seeds.append(codec.encode(name, _sample_record(_raw(name), full)))
    return seeds


def _mutate(rnd: random.Random, seeds: list[bytes], fingerprints: list[bytes]) -> bytes:
    data = bytearray(rnd.choice(seeds))
    kind = rnd.randrange(9)
    if kind == 0:  # bit flips
        for _ in range(rnd.randint(1, 8)):
            i = rnd.randrange(len(data))
            data[i] ^= 1 << rnd.randrange(8)
    elif kind == 1:  # truncation
        del data[rnd.randrange(len(data)):]
    elif kind == 2:  # trailing bytes
        data += rnd.randbytes(rnd.randint(1, 16))
    elif kind == 3:  # inserted bytes
        i = rnd.randrange(len(data) + 1)
        data[i:i] = rnd.randbytes(rnd.randint(1, 8))
    elif kind == 4:  # deleted bytes
        i = rnd.randrange(len(data))
        del data[i:i + rnd.randint(1, 8)]
    elif kind == 5:  # another record's fingerprint over this body
        data[2:10] = rnd.choice(fingerprints)
    elif kind == 6:  # a random fingerprint
        data[2:10] = rnd.randbytes(8)
    elif kind == 7:  # splice of two encodings
        other = rnd.choice(seeds)
        data = data[:rnd.randrange(len(data))] + other[rnd.randrange(len(other)):]
    else:  # random bytes, sometimes behind a valid header
        body = rnd.randbytes(rnd.randint(0, 200))
        data = bytearray(b"\xc3\x01" + rnd.choice(fingerprints) + body
                         if rnd.random() < 0.7 else body)
    return bytes(data)


def fuzz(inputs: int) -> Figures:
    rnd = random.Random(SEED)
    seeds = _seeds()
    fingerprints = [codec.fingerprint(n) for n in sorted(RECORD_NAMES)]
    reasons: Counter[str] = Counter()
    crashes: list[str] = []
    hangs = accepted = 0
    slowest = 0.0
    started = time.perf_counter()
    for _ in range(inputs):
        data = _mutate(rnd, seeds, fingerprints)
        t0 = time.perf_counter()
        try:
            decoded = codec.decode(data)
        except DecodeError as exc:
            reasons[exc.reason] += 1
        except Exception as exc:  # the one thing that must never happen
            crashes.append(f"{type(exc).__name__}: {exc} on {data.hex()}")
        else:
            accepted += 1
            try:  # what is accepted is a valid record of the contract
                codec.encode(decoded.name, decoded.record)
            except Exception as exc:
                crashes.append(f"accepted an invalid {decoded.name}: {exc} on {data.hex()}")
        took = time.perf_counter() - t0
        slowest = max(slowest, took)
        if took > SLOW_S:
            hangs += 1
    elapsed = time.perf_counter() - started
    fig = Figures(f"decoder fuzz: {inputs:,} mutated inputs (seed {SEED})", cases=inputs,
                  lost=len(crashes), duplicated=hangs, dlq=sum(reasons.values()),
                  injected=inputs, recovery_s=0.0)
    fig.notes.append(
        f"crashes {len(crashes)}, decodes over {SLOW_S * 1000:.0f} ms {hangs} (slowest "
        f"{slowest * 1000:.1f} ms); rejected {dict(sorted(reasons.items()))}; "
        f"{accepted} still-valid encodings accepted; {inputs / elapsed:,.0f} inputs/s")
    fig.notes.extend(crashes[:3])
    print(f"\n[reliability] {fig.line()}")
    return fig


def _budget(default: int) -> int:
    return int(os.environ.get("HOTLINE_FUZZ_INPUTS", default))


@pytest.mark.reliability_quick
def test_mutation_fuzz_quick() -> None:
    fig = record(fuzz(_budget(20_000)))
    assert (fig.lost, fig.duplicated) == (0, 0), fig.notes


@pytest.mark.reliability
def test_mutation_fuzz() -> None:
    fig = record(fuzz(_budget(1_000_000)))
    assert (fig.lost, fig.duplicated) == (0, 0), fig.notes
