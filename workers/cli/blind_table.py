"""The totals of a blind-set score, as ``hotline routing blind`` and ``blind-live`` print them.

One renderer for both, so a figure measured in process and one measured through Kafka
on the running system read the same and can be laid side by side. Totals only: a blind
set's items are never printed (they would stop being blind).
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from activities.dispatch.blind import BlindReport

# The dispatch issue's targets for a blind set (measure → minimum, or maximum for the
# no-dispatch requests sent to a unit).
BLIND_TARGETS = {"tier": 0.95, "t2h_recall": 1.0, "lead": 0.97, "street_named": 0.98,
                 "redirected": 1.0, "without_review": 0.80, "right_without_review": 0.97}
BLIND_NAMES = {
    "tier": "tier right (requests to dispatch)",
    "t2h_recall": "T2H recall (urgent given 2 hours)",
    "lead": "lead unit right (of what the machine dispatches alone)",
    "street_named": "street right where the caller named a place",
    "redirected": "emergencies in progress transferred to 110/119/120",
    "no_dispatch_sent": "no-dispatch requests sent to a unit without a person",
    "without_review": "dispatched without review",
    "right_without_review": "tier and lead right, of those dispatched alone",
}


def pct(value: float | None) -> str:
    """A share as a percentage with one decimal ("—" where there is none)."""
    return "—" if value is None else f"{value * 100:.1f} %"


def mark(ok: bool) -> str:
    """A green tick or a red cross (rich markup) for a target met or not."""
    return "[green]✓[/]" if ok else "[red]✗[/]"


def print_blind_report(report: BlindReport, title: str, *, as_json: bool) -> None:
    """The measures as JSON on stdout, or as a table titled ``title`` (plus the outcomes)."""
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{title}: {report.total} requests (outcomes {report.outcomes})")
    for column in ("measure", "count", "rate", "target"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for name in report.MEASURES:
        ratio = getattr(report, name)
        target = BLIND_TARGETS.get(name)
        goal = (f"≥ {pct(target)} {mark((ratio.rate or 0) >= target)}" if target is not None
                else f"0 {mark(ratio.ok == 0)}")
        table.add_row(BLIND_NAMES[name], f"{ratio.ok}/{ratio.of}", pct(ratio.rate), goal)
    Console().print(table)
