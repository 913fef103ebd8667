"""Supervisor outputs and governance operations on the command line.

``hotline report monthly --month YYYY-MM`` (HTML with inline SVG charts, CSV beside it),
``hotline rankings``, ``hotline priority-streets``, ``hotline hotspots``,
``hotline schedules install`` and ``hotline projector``.
Everything reads the PostgreSQL ledger (STYLE.md: read models come from events in
PostgreSQL, never from Temporal visibility).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from activities.governance import (
    GovernanceConfig,
    RegistryDirectory,
    compute_rankings,
    previous_month,
    priority_streets,
)
from workers.cli.failures import BadInput, parse_month
from workers.cli.output import print_json
from workers.reports.monthly import (
    GROUP_TITLES,
    RANK_HEADERS,
    load_configs,
    near,
    ranking_rows,
    write_monthly_report,
)
from workers.reports.words import DEFAULT_LANG, LANGS
from workers.runtime.settings import Settings, get_settings

app = typer.Typer(no_args_is_help=True)
report_app = typer.Typer(help="Supervisor reports.", no_args_is_help=True)
schedules_app = typer.Typer(help="Temporal Schedules of the governance workflows.",
                            no_args_is_help=True)
app.add_typer(report_app, name="report")
app.add_typer(schedules_app, name="schedules")

MONTHLY_SCHEDULE_ID = "governance-monthly-evaluation"
HOTSPOT_SCHEDULE_ID = "governance-hotspot-scan"
_console = Console()
_T = TypeVar("_T")


def _default_month(gov: GovernanceConfig) -> str:
    return previous_month(datetime.now(UTC), gov.tz)


# --- commands -------------------------------------------------------------------------------


def _month(month: str | None, gov: GovernanceConfig) -> str:
    """The month asked for (``YYYY-MM``), or last month in the governance time zone."""
    return parse_month(month) if month is not None else _default_month(gov)


# A person waits this long for the ledger before being told it is away.
CONNECT_TIMEOUT_S = 10


def _on_ledger(settings: Settings,
               read: Callable[[psycopg.AsyncConnection[Any]], Awaitable[_T]]) -> _T:
    """Run one read on a connection of its own to the ledger."""

    async def run() -> _T:
        async with await psycopg.AsyncConnection.connect(
                settings.dsn, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            return await read(conn)

    return asyncio.run(run())


def _print_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title)
    for h in headers:
        table.add_column(h)
    for row in rows:
        table.add_row(*(str(c) for c in row))
    _console.print(table)


AsJson = typer.Option(False, "--json", help="JSON on stdout instead of tables.")


@report_app.command("monthly")
def report_monthly(
    month: str = typer.Option(None, help="YYYY-MM; default: last month."),
    out: Path = typer.Option(None, help="Folder; default: <state_dir>/reports."),
    as_json: bool = typer.Option(False, "--json", help="The written paths as JSON."),
    lang: str = typer.Option(DEFAULT_LANG, "--lang",
                             help="The HTML's language: zh (Chinese, default) or en."),
) -> None:
    """Write the monthly HTML report (charts) and its CSV, and print where they are."""
    if lang not in LANGS:
        raise BadInput(f"--lang must be one of {', '.join(LANGS)}, not {lang!r}")
    settings = get_settings()
    month = _month(month, load_configs(settings)[1])
    html_path, csv_path = write_monthly_report(settings, month, out, lang)
    if as_json:
        print_json({"month": month, "lang": lang, "html": str(html_path),
                    "csv": str(csv_path)})
        return
    _console.print(f"monthly report {month}:\n  {html_path}\n  {csv_path}")


@app.command()
def rankings(month: str = typer.Option(None, help="YYYY-MM; default: last month."),
             group: str = typer.Option(None, help="streets or departments; default: all."),
             as_json: bool = AsJson) -> None:
    """Monthly three-rate rankings of units (考评排名), from the ledger."""
    if group is not None and group not in GROUP_TITLES:
        raise BadInput(f"--group must be one of {', '.join(GROUP_TITLES)}, not {group!r}")
    settings = get_settings()
    config, gov = load_configs(settings)
    month = _month(month, gov)
    by_group = _on_ledger(settings, lambda conn: compute_rankings(
        conn, month, gov.tz, config.rules.weights.model_dump(), RegistryDirectory(config)))
    shown = {g: rows for g, rows in by_group.items() if not group or g == group}
    if as_json:
        print_json({"month": month, "groups": {g: [asdict(r) for r in rows]
                                               for g, rows in shown.items()}})
        return
    for g, rows in shown.items():
        _print_table(f"{month} {GROUP_TITLES.get(g, g)}", RANK_HEADERS, ranking_rows(rows))


@app.command("priority-streets")
def priority_streets_cmd(month: str = typer.Option(None, help="YYYY-MM; default: last month."),
                         as_json: bool = AsJson) -> None:
    """The month's priority streets/townships (治理类街乡镇) by complaint volume."""
    settings = get_settings()
    _, gov = load_configs(settings)
    month = _month(month, gov)
    by_kind = _on_ledger(settings, lambda conn: priority_streets(conn, month, gov))
    if as_json:
        print_json({"month": month, "by": {kind: [asdict(s) for s in rows]
                                           for kind, rows in by_kind.items()}})
        return
    for kind, rows in by_kind.items():
        _print_table(f"{month} priority streets by {kind}",
                     ("rank", "district", "street", "complaints", "per 10,000"),
                     [(s.rank, s.district or "", s.street, s.cases,
                       "" if s.per_10k is None else f"{s.per_10k:.2f}") for s in rows])


_HOTSPOTS_SQL = """
SELECT w.warning_id, w.detected_at, w.district, w.street, w.category, w.count, w.baseline,
       w.score, w.complaint_id, coalesce(c.status, w.status) AS status, w.latitude,
       w.longitude
  FROM hotspot_warnings w LEFT JOIN cases c USING (complaint_id)
 WHERE w.detected_at >= %s ORDER BY w.detected_at DESC"""


@app.command()
def hotspots(days: int = typer.Option(30, min=1, help="Warnings detected in the last N days."),
             open_only: bool = typer.Option(True, "--open-only/--all"),
             as_json: bool = AsJson) -> None:
    """Hotspot warnings (未诉先办) and the governance case each became."""
    from psycopg.rows import dict_row

    settings = get_settings()
    since = datetime.now(UTC) - timedelta(days=days)
    with psycopg.connect(settings.dsn, connect_timeout=CONNECT_TIMEOUT_S,
                         row_factory=dict_row) as conn:
        rows = [r for r in conn.execute(_HOTSPOTS_SQL, (since,)).fetchall()
                if not (open_only and r["status"] == "CLOSED")]
    if as_json:
        print_json({"since": since.isoformat(), "open_only": open_only,
                    "warnings": [{**r, "detected_at": r["detected_at"].isoformat()}
                                 for r in rows]})
        return
    _print_table(f"hotspot warnings since {since:%Y-%m-%d}",
                 ("detected (UTC)", "district", "street", "category", "count", "expected",
                  "× baseline", "case", "status"),
                 [(f"{r['detected_at']:%Y-%m-%d %H:%M}", r["district"] or "",
                   r["street"] + near(r["latitude"], r["longitude"]), r["category"],
                   r["count"], f"{r['baseline']:.1f}", f"{r['score']:.1f}",
                   r["complaint_id"] or "", r["status"]) for r in rows])


async def install_schedules(settings: Settings, gov: GovernanceConfig, *,
                            id_prefix: str = "") -> list[str]:
    """Create the governance Schedules, or update them to the config (idempotent).

    Args:
        settings: Temporal address, namespace and the task queue the workflows run on.
        gov: The crons.
        id_prefix: Put before the schedule ids (tests use their own).

    Returns:
        One line per schedule: ``<id>: created|updated (<cron>)``.
    """
    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleAlreadyRunningError,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
        ScheduleUpdate,
        ScheduleUpdateInput,
    )

    from workers.runtime.temporal import connect_temporal
    from workflows.governance import HotspotScanInput, MonthlyEvaluationInput

    # The same connection as every CLI command (honours the Temporal TLS settings).
    client = await connect_temporal(settings)
    wanted = {
        id_prefix + MONTHLY_SCHEDULE_ID: ("MonthlyEvaluationWorkflow",
                                          MonthlyEvaluationInput(),
                                          gov.schedules.monthly_evaluation_cron),
        id_prefix + HOTSPOT_SCHEDULE_ID: ("HotspotScanWorkflow", HotspotScanInput(),
                                          gov.schedules.hotspot_scan_cron),
    }
    done = []
    for schedule_id, (wf, arg, cron) in wanted.items():
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(wf, arg, id=schedule_id,
                                               task_queue=settings.task_queue),
            spec=ScheduleSpec(cron_expressions=[cron]),
            # A scan that overruns is not run twice at once.
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        )
        try:
            await client.create_schedule(schedule_id, schedule)
            done.append(f"{schedule_id}: created ({cron})")
        except ScheduleAlreadyRunningError:
            def _update(_: ScheduleUpdateInput, s: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=s)

            await client.get_schedule_handle(schedule_id).update(_update)
            done.append(f"{schedule_id}: updated ({cron})")
    return done


@schedules_app.command("install")
def schedules_install(as_json: bool = typer.Option(
        False, "--json", help="The schedules as a JSON list of lines.")) -> None:
    """Create (or update) the monthly-evaluation and hotspot-scan Temporal Schedules."""
    settings = get_settings()
    _, gov = load_configs(settings)
    lines = asyncio.run(install_schedules(settings, gov))
    if as_json:
        print_json({"schedules": lines})
        return
    for line in lines:
        _console.print(line)


@app.command()
def projector() -> None:
    """Run the ledger projector: hotline.lifecycle → PostgreSQL (idempotent, rebuildable)."""
    from workers.projector.main import main as run_projector

    run_projector()
