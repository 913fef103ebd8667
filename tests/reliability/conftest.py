"""Fixtures of the fault suite and the table ``make reliability`` prints.

Every test gets a :class:`Harness` and must end with ``harness.check(...)`` (the shared
invariants); the fixture fails a test that did not. Each checked row is collected and,
at the end of the session, written to ``.state/reliability.md`` and printed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.reliability.harness import Figures, Harness
from workers.runtime.settings import Settings

RESULTS: list[Figures] = []

HEADER = ("| fault | cases | lost | duplicated effects | DLQ vs injected | recovery time "
          "| redelivered copies | notes |\n|---|---:|---:|---:|---:|---:|---:|---|")


def table(rows: list[Figures]) -> str:
    lines = [HEADER]
    for f in rows:
        notes = "; ".join(f.notes).replace("|", "/")[:300]
        lines.append(f"| {f.fault} | {f.cases} | {f.lost} | {f.duplicated} "
                     f"| {f.dlq} / {f.injected} | {f.recovery_s:.1f} s | {f.redelivered} "
                     f"| {notes} |")
    return "\n".join(lines)


@pytest_asyncio.fixture
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    h = Harness(request.node.name.removeprefix("test_")[:40])
    await h.setup()
    try:
        yield h
    finally:
        await h.close()
    assert h.checked, "a reliability test must end with harness.check()"


def record(fig: Figures) -> Figures:
    """Keep a checked row for the table (call with what ``Harness.check`` returned)."""
    RESULTS.append(fig)
    # Row by row as well, so an interrupted run keeps the rows it finished.
    partial = Settings().state_dir / "reliability.partial.md"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_text(table(RESULTS) + "\n", encoding="utf-8")
    return fig


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS:
        return
    text = table(RESULTS)
    path = Settings().state_dir / "reliability.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    terminalreporter.write_sep("=", "reliability")
    terminalreporter.write_line(text)
    terminalreporter.write_line(f"(written to {path})")
