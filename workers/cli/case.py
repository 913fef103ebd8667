"""``hotline case show|escalate|reassign|extension`` and ``hotline overdue`` for supervisors.

``case show`` asks the case's workflow (the ``view`` query: status, units, deadlines,
escalation level and the full timeline) and falls back to the ledger (``cases``,
``dispatches``, ``case_events``) when the workflow is gone: closed and no longer
queryable, past its retention, or Temporal unreachable. The output says which source
answered.

``case escalate|reassign|extension`` are Temporal updates. Each carries an ``event_id``
(``--event-id``, a fresh one by default): the workflow de-duplicates by it, so a script
may retry a timed-out command with the same id and the decision is applied once. The
workflow's ``Ack`` is printed; a refused decision or a missing or closed case exits 1,
Temporal unreachable 3, and no answer (no worker polling?) 5 (docs/cli.md).

``overdue`` reads the ledger only: cases whose deadline has passed while the unit still
owes the answer (``ACCEPTED``, ``DISPATCHED``, ``SIGNED``, ``IN_PROGRESS``,
``REOPENED``), grouped by district and tier. It does not wait for a workflow timer, so it
also shows cases whose workers are behind.

Caller phone and name are never read or printed; free text has phone numbers masked.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from activities.dispatch.rules import TIERS
from workers.cli.case_report import CaseReport, load_case, overdue_cases
from workers.cli.decisions import EXIT_NO_CASE, send_decision
from workers.cli.failures import BadInput, HotlineGroup
from workers.cli.output import (
    console,
    fail,
    fmt_time,
    mask_text,
    print_json,
    redact,
    run_as_process,
)
from workers.runtime.settings import Settings
from workflows.model import (
    UPDATE_DECIDE_EXTENSION,
    UPDATE_ESCALATE,
    UPDATE_REASSIGN,
    Escalate,
    ExtensionDecision,
    Reassign,
)

__all__ = ["app", "overdue", "register"]

app = typer.Typer(
    no_args_is_help=True,
    help="One case: show it, or decide as a supervisor (escalate, reassign, extension).",
)


# --------------------------------------------------------------------------------------
# Supervisor decisions


def _run_decision(complaint_id: str, update: str, arg: object, event_id: str,
                  as_json: bool) -> None:
    settings = Settings()
    decision = asyncio.run(send_decision(settings, complaint_id, update, arg, event_id))
    if as_json:
        print_json({"complaint_id": complaint_id, "update": update, "event_id": event_id,
                    "ack": asdict(decision.ack) if decision.ack else None,
                    "exit_code": decision.exit_code, "message": decision.message})
    if decision.exit_code:
        raise fail(f"{update} {complaint_id}: {mask_text(decision.message)} "
                   f"(event id {event_id})", decision.exit_code)
    if not as_json:
        console().print(f"[green]{update}[/green] {complaint_id}: "
                        f"{mask_text(decision.message)}  [dim](event id {event_id})[/dim]")


def _event_id(given: str | None) -> str:
    return given or f"cli-{uuid.uuid4().hex}"


# --------------------------------------------------------------------------------------
# Overdue list


def _groups(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        group = (row["district"] or "—", row["tier"] or "—")
        counts[group] = counts.get(group, 0) + 1
    return [{"district": d, "tier": t, "count": n}
            for (d, t), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _span(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


def _short(when: datetime | None) -> str:
    return "—" if when is None else when.astimezone().strftime("%m-%d %H:%M")


def _tz_name() -> str:
    return datetime.now().astimezone().strftime("%Z %z")


def _relative(when: datetime | None, now: datetime) -> str:
    if when is None:
        return ""
    delta = when - now
    return f"in {_span(delta)}" if delta.total_seconds() >= 0 else f"{_span(delta)} ago"


def overdue(
    district: str | None = typer.Option(None, help="Only this district (e.g. 朝阳区)."),
    tier: str | None = typer.Option(None, help="Only this tier: T2H, T24H, T7D, T15D."),
    limit: int = typer.Option(200, min=0, help="List at most N cases (the summary counts all)."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of tables."),
) -> None:
    """Open cases past their deadline, from the ledger, by district and tier.

    Open: the unit still owes the answer (ACCEPTED, DISPATCHED, SIGNED, IN_PROGRESS,
    REOPENED).
    """
    if tier is not None and tier not in TIERS:
        raise BadInput(f"--tier must be one of {', '.join(TIERS)}, not {tier!r}")
    settings = Settings()
    now = datetime.now(UTC)
    # The ledger away: psycopg's error, told in one line by HotlineGroup (exit 3).
    rows = overdue_cases(settings, district=district, tier=tier, now=now)
    groups = _groups(rows)
    shown = rows[:limit]
    if as_json:
        print_json({
            "as_of": now.isoformat(), "total": len(rows), "by_district_tier": groups,
            # Rounded up: a case listed is past its deadline, so never "0 s overdue"
            # (listing it within a second of its deadline printed 0).
            "cases": [{**redact(r), "overdue_seconds": math.ceil((now - r["due_at"])
                                                                 .total_seconds())}
                      for r in shown],
        })
        return
    out = console()
    out.print(f"[bold]{len(rows)} open case{'s' if len(rows) != 1 else ''} past their "
              f"deadline[/bold] (as of {fmt_time(now)})")
    summary = Table(title="by district and tier", title_justify="left")
    summary.add_column("district")
    summary.add_column("tier")
    summary.add_column("cases", justify="right")
    for g in groups:
        summary.add_row(g["district"], g["tier"], str(g["count"]))
    out.print(summary)
    if not shown:
        return
    cut = f" (first {limit})" if len(rows) > limit else ""
    table = Table(title=f"longest overdue first{cut}", title_justify="left")
    for column in ("complaint", "tier", "district", "street", "lead unit", "status",
                   "level", "due", "overdue by"):
        table.add_column(column, no_wrap=True)
    for r in shown:
        table.add_row(r["complaint_id"], r["tier"] or "—", r["district"] or "—",
                      r["street"] or "—", r["lead_unit_id"] or "—", r["status"],
                      r["escalation_level"], fmt_time(r["due_at"]),
                      _span(now - r["due_at"]))
    out.print(table)


# --------------------------------------------------------------------------------------
# Commands


def _jsonable(report: CaseReport) -> dict[str, Any]:
    data = redact(asdict(report))
    assert isinstance(data, dict)
    return data


@app.command("show")
def show(
    complaint_id: str = typer.Argument(..., help="The complaint id (without complaint-)."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of tables."),
) -> None:
    """Status, units, deadlines, escalation level and full timeline of one case."""
    settings = Settings()
    report = asyncio.run(load_case(settings, complaint_id))  # a server away: exit 3
    if report is None:
        raise fail(f"case {complaint_id} not found in Temporal or the ledger", EXIT_NO_CASE)
    if as_json:
        print_json(_jsonable(report))
        return
    _print_report(report)


def _print_report(report: CaseReport) -> None:
    out = console()
    now = datetime.now(UTC)
    c = report.case
    summary = Table(show_header=False, title_justify="left", title=(
        f"case {report.complaint_id}  [dim](from the {report.source}"
        + (f"; workflow {report.workflow_status}" if report.workflow_status else "")
        + ")[/dim]"))
    summary.add_column("field", style="bold")
    summary.add_column("value", overflow="fold")
    flags = []
    if c.get("overdue"):
        flags.append("[red]OVERDUE[/red]")
    if c.get("extension_pending"):
        flags.append("[yellow]extension pending[/yellow]")
    rows: list[tuple[str, str]] = [
        ("status", f"{c.get('status')}" + (f"  {' '.join(flags)}" if flags else "")),
        ("outcome", str(c.get("outcome") or "—")),
        ("kind / category", f"{c.get('kind') or '—'} / {c.get('category') or '—'}"),
        ("tier", str(c.get("tier") or "—")),
        ("place", f"{c.get('district') or '—'} {c.get('street') or ''}".strip()),
        ("lead unit", f"{c.get('lead_unit_id') or '—'}"
         + (f"  (dispatch {c['dispatch_id']})" if c.get("dispatch_id") else "")),
        ("escalation level", str(c.get("escalation_level") or "—")),
    ]
    if c.get("filed_at"):
        rows.insert(0, ("filed", f"{fmt_time(c['filed_at'])}"
                        + (f" via {c['channel']}" if c.get("channel") else "")))
    if c.get("sign_by"):
        rows.append(("sign for by", f"{fmt_time(c['sign_by'])}  ({_relative(c['sign_by'], now)})"))
    if c.get("due_at"):
        rows.append(("due", f"{fmt_time(c['due_at'])}  ({_relative(c['due_at'], now)})"))
    if c.get("closed_at"):
        rows.append(("closed", fmt_time(c["closed_at"])))
    counters = ", ".join(f"{k} {c[k]}" for k in ("urges", "returns", "extensions", "reopens")
                         if c.get(k) is not None)
    if counters:
        rows.append(("counters", counters))
    for name, value in rows:
        summary.add_row(name, value)
    out.print(summary)

    if report.dispatches:
        units = Table(title="units", title_justify="left", caption_justify="left",
                      caption=f"times: month-day hour:minute, {_tz_name()}")
        for column in ("dispatch", "unit", "role", "issued", "sign by", "signed", "due",
                       "completed", "revoked", "result"):
            units.add_column(column, no_wrap=column not in ("unit", "dispatch"),
                             overflow="fold")
        for d in report.dispatches:
            unit = d["unit_id"] + (f" {d['unit_name']}" if d.get("unit_name") else "")
            units.add_row(d["dispatch_id"], unit, d["role"], _short(d["issued_at"]),
                          _short(d["sign_by"]), _short(d.get("signed_at")),
                          _short(d["due_at"]), _short(d.get("completed_at")),
                          _short(d.get("revoked_at")), str(d.get("result") or "—"))
        out.print(units)

    timeline = Table(title=f"timeline ({len(report.timeline)} steps)", title_justify="left")
    for column in ("#", "at", "event", "status", "unit", "reason / details"):
        timeline.add_column(column, no_wrap=column != "reason / details", overflow="fold")
    for e in report.timeline:
        details = e.get("reason") or ""
        attributes = e.get("attributes") or {}
        if attributes:
            extra = ", ".join(f"{k}={v}" for k, v in sorted(redact(attributes).items()))
            details = f"{details}  [{extra}]" if details else extra
        timeline.add_row(str(e["seq"]), fmt_time(e["at"]), e["event_type"], e["status"],
                         e.get("unit_id") or "", mask_text(details))
    out.print(timeline, markup=False)
    for note in report.notes:
        out.print(f"[dim]note: {note}[/dim]")


# The options every decision command takes.
CaseId = Annotated[str, typer.Argument(help="The complaint id.")]
DecidedBy = Annotated[str, typer.Option("--by", help="Who decides (name or staff id).")]
Reason = Annotated[str, typer.Option("--reason", help="Why (kept in the case's history).")]
EventId = Annotated[str | None, typer.Option(
    help="Idempotency id; reuse it to retry the same decision safely.")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON instead of text.")]


@app.command("escalate")
def escalate(complaint_id: CaseId, by: DecidedBy, reason: Reason,
             event_id: EventId = None, as_json: AsJson = False) -> None:
    """督办: raise the case one supervision level (UNIT → DISTRICT → CITY)."""
    eid = _event_id(event_id)
    _run_decision(complaint_id, UPDATE_ESCALATE,
                  Escalate(event_id=eid, decided_by=by, reason=reason), eid, as_json)


@app.command("reassign")
def reassign(
    complaint_id: CaseId,
    unit_id: Annotated[str, typer.Argument(help="The unit that takes the case over.")],
    by: DecidedBy, reason: Reason, event_id: EventId = None, as_json: AsJson = False,
) -> None:
    """改派: send the case to another lead unit (the current dispatch is revoked)."""
    eid = _event_id(event_id)
    _run_decision(complaint_id, UPDATE_REASSIGN,
                  Reassign(event_id=eid, unit_id=unit_id, decided_by=by, reason=reason),
                  eid, as_json)


@app.command("extension")
def extension(
    complaint_id: CaseId,
    grant: Annotated[bool, typer.Option(
        "--grant/--deny", help="Grant or deny the pending request.")],
    *,  # keyword-only: the required --by may then follow --days, the order the help lists
    days: Annotated[int | None, typer.Option(
        min=1, help="Days granted (default: the days the unit asked for).")] = None,
    by: DecidedBy, reason: Reason = "", event_id: EventId = None, as_json: AsJson = False,
) -> None:
    """延期: decide the unit's pending extension request."""
    eid = _event_id(event_id)
    _run_decision(complaint_id, UPDATE_DECIDE_EXTENSION,
                  ExtensionDecision(event_id=eid, granted=grant, decided_by=by,
                                    extra_days=days, reason=reason), eid, as_json)


def register(parent: typer.Typer) -> None:
    """Mount ``case`` and the top-level ``overdue`` on the ``hotline`` command."""
    parent.add_typer(app, name="case", help="One case: show, escalate, reassign, extension.")
    parent.command("overdue")(overdue)


if __name__ == "__main__":
    # ``python -m workers.cli.case case show ID`` / ``... overdue``: the same commands as
    # ``hotline case ...`` and ``hotline overdue``.
    _root = typer.Typer(no_args_is_help=True, cls=HotlineGroup)
    register(_root)
    run_as_process(_root)
