"""Fault 11: one case receiving 5,000 supplements (continue-as-new, nothing lost).

The scenario and its assertions live in tests/test_long_case.py (every supplement
recorded once, one sequence across runs, a repeat from before the last continue-as-new
still recognised); this runs it as part of the fault suite and adds its row.
"""

from __future__ import annotations

import time

import pytest

from tests import test_long_case as long_case
from tests.reliability.conftest import record
from tests.reliability.harness import Figures

pytestmark = pytest.mark.stack


@pytest.mark.reliability
async def test_one_case_with_5000_supplements(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    # Imported as a module, so pytest does not collect (and run) that test here again.
    await long_case.run_long_case(long_case.SUPPLEMENTS)
    printed = capsys.readouterr().out.strip()
    fig = Figures(f"11. one case with {long_case.SUPPLEMENTS} supplements", cases=1,
                  recovery_s=time.monotonic() - started)
    fig.notes.append(f"{printed.splitlines()[-1] if printed else ''}; time is the whole "
                     "run; every supplement recorded once, seqs contiguous")
    print(f"\n[reliability] {fig.line()}")
    record(fig)
