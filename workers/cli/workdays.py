"""``hotline calendar check``: how long the working-day calendar still covers, and whether
each year matches an independent source.

Exit codes: 0 covered beyond the warning period (and, with ``--against-package``, every
year matches); 1 coverage ends within ``warn_days_ahead`` (or has ended), or a year differs
from the package; 4 the calendar file is missing or invalid.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from activities.dispatch.rules import CALENDAR_FILE, RulesError, load_calendar
from activities.dispatch.workdays import Calendar
from workers.cli.failures import EXIT_BAD_FILE, EXIT_BAD_INPUT, EXIT_REFUSED, parse_day
from workers.cli.output import console, fail, print_json
from workers.runtime.settings import get_settings

app = typer.Typer(help="The working-day calendar (holidays and exchanged working days).",
                  no_args_is_help=True)



@app.callback()
def _calendar() -> None:
    """The working-day calendar (holidays and exchanged working days)."""


def package_differences(calendar: Calendar) -> dict[int, list[str]] | None:
    """Per year, the days on which the ``chinesecalendar`` package disagrees; None when the
    package is not installed. A year the package does not know is reported as such."""
    try:
        import chinese_calendar
    except ImportError:
        return None
    out: dict[int, list[str]] = {}
    for year in calendar.covered_years:
        day, diffs = date(year, 1, 1), []
        try:
            while day.year == year:
                ours = calendar.is_workday(day)
                theirs = chinese_calendar.is_workday(day)
                if ours != theirs:
                    diffs.append(f"{day}: ours {'work' if ours else 'off'}, "
                                 f"package {'work' if theirs else 'off'}")
                day += timedelta(days=1)
        except NotImplementedError:
            diffs = [f"the package does not cover {year}"]
        out[year] = diffs
    return out


@app.command("check")
def check(
    config_dir: Annotated[Path | None, typer.Option(
        help="Folder holding calendar.yaml (default: HOTLINE_CONFIG_DIR).")] = None,
    today: Annotated[str | None, typer.Option(
        help="Check as of this date, YYYY-MM-DD (default: today in the calendar's zone).")]
        = None,
    against_package: Annotated[bool, typer.Option(
        "--against-package",
        help="Compare every listed year with the chinesecalendar package (if installed).")]
        = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Validate calendar.yaml and say how long it still covers (exit 1 within the warning
    period, so a cron job or CI can page someone)."""
    path = (config_dir or get_settings().config_dir) / CALENDAR_FILE
    try:
        calendar = load_calendar(path)
    except RulesError as err:
        raise fail(f"{err}", EXIT_BAD_FILE) from None
    as_of = parse_day(today, "--today") or datetime.now(ZoneInfo(calendar.timezone)).date()
    left = calendar.days_left(as_of)
    short = left < calendar.warn_days_ahead
    diffs = package_differences(calendar) if against_package else None
    if against_package and diffs is None:
        raise fail("--against-package: the chinesecalendar package is not installed "
                   "(pip install chinesecalendar)", EXIT_BAD_INPUT)
    report: dict[str, Any] = {
        "file": str(path),
        "years": [{"year": y, "source": e.source, "holidays": len(e.holidays),
                   "extra_workdays": len(e.extra_workdays), "synthetic": e.synthetic,
                   **({"package_differences": diffs[y]} if diffs is not None else {})}
                  for y, e in sorted(calendar.years.items())],
        "last_day": calendar.last_day.isoformat() if calendar.last_day else None,
        "as_of": as_of.isoformat(),
        "days_left": left,
        "warn_days_ahead": calendar.warn_days_ahead,
        "status": "EXPIRED" if left < 0 else "ENDING" if short else "OK",
    }
    differs = diffs is not None and any(diffs.values())
    if as_json:
        print_json(report)
    else:
        _print(report)
    if short or differs:
        # Refused in the table's terms (docs/cli.md): coverage too short, or a year differs.
        raise typer.Exit(EXIT_REFUSED)


def _print(report: dict[str, Any]) -> None:
    out = console()
    table = Table("year", "holidays", "exchanged working days", "source", "package check")
    for row in report["years"]:
        diffs = row.get("package_differences")
        checked = "—" if diffs is None else "matches" if not diffs else "; ".join(diffs[:3])
        source = row["source"] + (" (synthetic)" if row["synthetic"] else "")
        table.add_row(str(row["year"]), str(row["holidays"]), str(row["extra_workdays"]),
                      source, checked)
    out.print(table)
    status = report["status"]
    line = (f"covered until {report['last_day']}: {report['days_left']} days from "
            f"{report['as_of']} (warning below {report['warn_days_ahead']})")
    if status == "OK":
        out.print(f"OK — {line}")
    else:
        out.print(f"[red]{status}[/red] — {line}. T7D/T15D deadlines past "
                  f"{report['last_day']} go to the dispatch desk; add next year "
                  "(docs/calendar.md).")
