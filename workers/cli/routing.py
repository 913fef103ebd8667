"""``hotline routing …``: measure and explain classification, location and routing.

Mounted by ``workers/cli/main.py`` as ``app.add_typer(routing_app, name="routing")``.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from activities.dispatch.config import HotlineConfig, load_config
from activities.dispatch.evaluation import FIELDS, EvalError, Report, evaluate, load_labelled
from activities.dispatch.rules import TIERS

app = typer.Typer(help="Precise dispatch: evaluate and explain classification and routing.",
                  no_args_is_help=True)

_FIELD_NAMES = {
    "category": "category (two levels)", "top": "category (top level)", "kind": "kind",
    "tier": "tier", "redirect": "redirect (110/119/120)", "district": "district",
    "street": "street", "lead": "lead unit",
}
# The targets: field → minimum accuracy.
TARGETS = {"tier": 0.95, "lead": 0.90}
T2H_TARGET = 1.0
STREET_NAMED_TARGET = 0.98


@app.callback()
def main() -> None:
    """Precise dispatch (精准派单): evaluate and explain the routing."""


def _config(config_dir: Path | None) -> HotlineConfig:
    from workers.runtime.settings import Settings

    return load_config(config_dir or Settings().config_dir)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _mark(ok: bool) -> str:
    return "[green]✓[/]" if ok else "[red]✗[/]"


def render(report: Report, console: Console, *, errors: int = 0) -> None:
    """Print the report as rich tables."""
    summary = Table(title=f"Routing evaluation — {report.total} requests")
    summary.add_column("field")
    summary.add_column("correct", justify="right")
    summary.add_column("accuracy", justify="right")
    summary.add_column("target", justify="right")
    for name in FIELDS:
        acc = report.accuracy[name]
        target = TARGETS.get(name)
        summary.add_row(
            _FIELD_NAMES[name], f"{report.correct.get(name, 0)}/{report.total}", _pct(acc),
            f"≥ {_pct(target)} {_mark(acc >= target)}" if target is not None else "",
        )
    ok, of = report.street_named
    summary.add_row("street, where the caller named it", f"{ok}/{of}",
                    _pct(report.street_named_accuracy),
                    f"≥ {_pct(STREET_NAMED_TARGET)} "
                    f"{_mark(report.street_named_accuracy >= STREET_NAMED_TARGET)}")
    found, total = report.t2h_recall
    summary.add_row("T2H recall (emergencies found)", f"{found}/{total}",
                    _pct(report.t2h_recall_rate),
                    f"= {_pct(T2H_TARGET)} {_mark(report.t2h_recall_rate >= T2H_TARGET)}")
    console.print(summary)

    confusion = Table(title="Tier confusion (rows: expected, columns: predicted)")
    confusion.add_column("expected \\ predicted")
    for tier in TIERS:
        confusion.add_column(tier, justify="right")
    for want in TIERS:
        row = report.confusion[want]
        confusion.add_row(want, *(f"[bold]{row[t]}[/]" if t == want else str(row[t] or "·")
                                  for t in TIERS))
    console.print(confusion)

    for name in ("top", "category", "kind", "tier", "redirect"):
        table = Table(title=f"Per class: {_FIELD_NAMES[name]}")
        table.add_column("class")
        table.add_column("support", justify="right")
        table.add_column("predicted", justify="right")
        table.add_column("precision", justify="right")
        table.add_column("recall", justify="right")
        for stats in report.classes[name]:
            table.add_row(stats.label, str(stats.support), str(stats.predicted),
                          _pct(stats.precision), _pct(stats.recall))
        console.print(table)

    if errors and report.errors:
        table = Table(title=f"First {min(errors, len(report.errors))} of "
                            f"{len(report.errors)} requests with a wrong field")
        table.add_column("id")
        table.add_column("request")
        table.add_column("wrong (expected → got)")
        for err in report.errors[:errors]:
            wrong = [f"{k}: {v['expected']} → {v['got']}" for k, v in err.items()
                     if isinstance(v, dict)]
            table.add_row(err["id"], err["content"][:40], "\n".join(wrong))
        console.print(table)


@app.command("eval")
def eval_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Labelled JSON Lines."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    at: str | None = typer.Option(None, help="Filing day for records without one "
                                              "(YYYY-MM-DD; default today)."),
    errors: int = typer.Option(0, help="Also list this many requests with a wrong field."),
    config_dir: Path | None = typer.Option(None, help="Config folder (default: settings)."),
) -> None:
    """Accuracy per field, per-class precision/recall, T2H recall and tier confusion."""
    try:
        records = load_labelled(file)
    except EvalError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from None
    day = date.fromisoformat(at) if at else None
    report = evaluate(_config(config_dir), records, at=day)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        render(report, Console(), errors=errors)


@app.command()
def explain(
    content: str = typer.Argument(..., help="The request text."),
    district: str | None = typer.Option(None), street: str | None = typer.Option(None),
    address: str | None = typer.Option(None),
    at: str | None = typer.Option(None, help="Filing day (YYYY-MM-DD)."),
    config_dir: Path | None = typer.Option(None),
) -> None:
    """Show how one request is classified, located and routed, and why."""
    from activities.dispatch.classify import classify
    from activities.dispatch.decide import decide_route
    from activities.dispatch.location import locate

    cfg = _config(config_dir)
    day = date.fromisoformat(at) if at else None
    cl = classify(cfg.lexicon, content)
    loc = locate(cfg.registry, district, street, address, content, at=day)
    table = Table(show_header=False)
    table.add_row("category", f"{cl.category.code} ({cl.category.name})")
    table.add_row("kind / tier", f"{cl.kind} / {cl.tier}"
                  + (" (emergency)" if cl.emergency else ""))
    table.add_row("matched", "、".join(cl.matched) or "—")
    if cl.redirect_to:
        table.add_row("redirect", cl.redirect_to)
    street_unit = cfg.registry.get(loc.street_id) if loc.street_id else None
    table.add_row("district / street", f"{loc.district or '?'} / "
                  f"{street_unit.name if street_unit else '?'}"
                  f" ({loc.source or 'not found'}: {loc.place or '—'})")
    if loc.conflict:
        table.add_row("conflict", loc.conflict)
    if not cl.redirect_to:
        decision = decide_route(cfg, cl.category, loc, at=day)
        table.add_row("lead", f"{decision.lead.name} [{decision.lead.unit_id}]")
        table.add_row("assisting", "、".join(u.name for u in decision.assisting) or "—")
        table.add_row("rule", decision.rule + (f" ({decision.note})" if decision.note else ""))
    Console().print(table)


# The dispatch issue's targets for a blind set (measure → minimum, or maximum for the
# no-dispatch requests sent to a unit).
BLIND_TARGETS = {"tier": 0.95, "t2h_recall": 1.0, "lead": 0.97, "street_named": 0.98,
                 "redirected": 1.0, "without_review": 0.80, "right_without_review": 0.97}
_BLIND_NAMES = {
    "tier": "tier right (requests to dispatch)",
    "t2h_recall": "T2H recall (urgent given 2 hours)",
    "lead": "lead unit right (of what the machine dispatches alone)",
    "street_named": "street right where the caller named a place",
    "redirected": "emergencies in progress transferred to 110/119/120",
    "no_dispatch_sent": "no-dispatch requests sent to a unit without a person",
    "without_review": "dispatched without review",
    "right_without_review": "tier and lead right, of those dispatched alone",
}


@app.command("blind")
def blind_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                help="A blind set (tests/data/blind/*.jsonl)."),
    at: str = typer.Option("2026-12-06", help="Filing day of every request (YYYY-MM-DD)."),
    as_json: bool = typer.Option(False, "--json", help="Print the measures as JSON."),
    config_dir: Path | None = typer.Option(None, help="Config folder (default: settings)."),
) -> None:
    """The dispatch measures on a blind set: totals only, never the items (so it stays blind)."""
    from activities.dispatch.blind import accept_decision, load_blind, score

    try:
        items = load_blind(file)
        day = date.fromisoformat(at)
    except (EvalError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    cfg = _config(config_dir)
    report = score(items, lambda item: accept_decision(cfg, item, at=day))
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    table = Table(title=f"Blind set {file.name}: {report.total} requests "
                        f"(outcomes {report.outcomes})")
    for column in ("measure", "count", "rate", "target"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for name in report.MEASURES:
        ratio = getattr(report, name)
        target = BLIND_TARGETS.get(name)
        goal = (f"≥ {_pct(target)} {_mark((ratio.rate or 0) >= target)}" if target is not None
                else f"0 {_mark(ratio.ok == 0)}")
        table.add_row(_BLIND_NAMES[name], f"{ratio.ok}/{ratio.of}", _pct(ratio.rate), goal)
    Console().print(table)
