"""Supervisor outputs and governance operations on the command line.

``hotline report monthly --month YYYY-MM`` (HTML with inline SVG charts, CSV beside it),
``hotline rankings``, ``hotline priority-streets``, ``hotline hotspots``,
``hotline schedules install`` and ``hotline projector``.
Everything reads the PostgreSQL ledger (STYLE.md: read models come from events in
PostgreSQL, never from Temporal visibility).
"""

from __future__ import annotations

import asyncio
import csv
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from activities.dispatch.config import HotlineConfig, load_config
from activities.governance import (
    GovernanceConfig,
    PriorityStreet,
    RankingRow,
    RegistryDirectory,
    TopicCandidate,
    compute_rankings,
    half_month_trend,
    load_governance_config,
    month_bounds,
    previous_month,
    priority_streets,
    shift_month,
    topic_candidates,
)
from workers.runtime.settings import Settings, get_settings

app = typer.Typer(no_args_is_help=True)
report_app = typer.Typer(help="Supervisor reports.", no_args_is_help=True)
schedules_app = typer.Typer(help="Temporal Schedules of the governance workflows.",
                            no_args_is_help=True)
app.add_typer(report_app, name="report")
app.add_typer(schedules_app, name="schedules")

GOVERNANCE_FILE = "governance.yaml"
MONTHLY_SCHEDULE_ID = "governance-monthly-evaluation"
HOTSPOT_SCHEDULE_ID = "governance-hotspot-scan"
TREND_MONTHS = 6
_console = Console()


def _configs(settings: Settings) -> tuple[HotlineConfig, GovernanceConfig]:
    return (load_config(settings.config_dir),
            load_governance_config(settings.config_dir / GOVERNANCE_FILE))


def _default_month(gov: GovernanceConfig) -> str:
    return previous_month(datetime.now(UTC), gov.tz)


def _near(latitude: float | None, longitude: float | None) -> str:
    """A hotspot near one point names the point after its main street."""
    if latitude is None or longitude is None:
        return ""
    return f" near {latitude:.5f},{longitude:.5f}"


def _pct(x: float) -> str:
    return f"{x:.1%}"


# --- data for the report ------------------------------------------------------------------


@dataclass
class MonthlyData:
    """Everything the monthly report shows."""

    month: str
    generated_at: datetime
    totals: dict[str, Any]
    rankings: dict[str, list[RankingRow]]
    rate_trend: list[tuple[str, int, float, float, float]]  # month, n, three rates
    streets: dict[str, list[PriorityStreet]]
    topics: list[TopicCandidate]
    topic_trend: dict[str, list[tuple[str, int]]]
    hotspots: list[tuple[Any, ...]]
    category_names: dict[str, str] = field(default_factory=dict)


async def collect_monthly(settings: Settings, month: str) -> MonthlyData:
    """Read the month's figures from the ledger."""
    config, gov = _configs(settings)
    tz = gov.tz
    start, end = month_bounds(month, tz)
    trend_start, _ = month_bounds(shift_month(month, -(TREND_MONTHS - 1)), tz)
    async with await psycopg.AsyncConnection.connect(settings.dsn) as conn:
        weights = config.rules.weights.model_dump()
        rankings = await compute_rankings(conn, month, tz, weights, RegistryDirectory(config))
        row = await (await conn.execute(
            """SELECT count(*), count(*) FILTER (WHERE overdue),
                      count(*) FILTER (WHERE kind = 'PRAISE'),
                      count(*) FILTER (WHERE complaint_id LIKE 'HOT-%%')
                 FROM cases WHERE filed_at >= %s AND filed_at < %s""",
            (start, end))).fetchone()
        filed, overdue, praise, governance = row if row else (0, 0, 0, 0)
        trend_rows = await (await conn.execute(
            """SELECT to_char(evaluated_at AT TIME ZONE %s, 'YYYY-MM') AS m, count(*),
                      avg(responded::int), avg(resolved::int), avg(satisfied::int)
                 FROM evaluations
                WHERE counted AND evaluated_at >= %s AND evaluated_at < %s
                GROUP BY m ORDER BY m""", (tz.key, trend_start, end))).fetchall()
        by_month = {m: (int(n), float(a), float(b), float(c)) for m, n, a, b, c in trend_rows}
        rate_trend = [(m, *by_month.get(m, (0, 0.0, 0.0, 0.0)))
                      for m in (shift_month(month, -k) for k in range(TREND_MONTHS - 1, -1, -1))]
        streets = await priority_streets(conn, month, gov)
        topics = await topic_candidates(conn, month, gov)
        tracked = list(dict.fromkeys([*gov.topics.tracked, *(t.category for t in topics[:5])]))
        topic_trend = await half_month_trend(conn, tracked, month, TREND_MONTHS, tz)
        hotspots = await (await conn.execute(
            """SELECT detected_at, district, street, category, count, baseline, score,
                      complaint_id, status, latitude, longitude
                 FROM hotspot_warnings WHERE detected_at >= %s AND detected_at < %s
                ORDER BY detected_at""", (start, end))).fetchall()
    names = {}
    for code in {*(t.category for t in topics), *topic_trend, *(h[3] for h in hotspots)}:
        cat = config.lexicon.category(code)
        names[code] = cat.name if cat else code
    this = by_month.get(month, (0, 0.0, 0.0, 0.0))
    totals = {"filed": filed, "overdue": overdue, "praise": praise,
              "governance_cases": governance, "evaluated": this[0],
              "response_rate": this[1], "resolution_rate": this[2],
              "satisfaction_rate": this[3], "hotspots": len(hotspots)}
    return MonthlyData(month, datetime.now(UTC), totals, rankings, rate_trend, streets,
                       topics, topic_trend, [tuple(h) for h in hotspots], names)


# --- SVG charts (no plotting dependency: plain SVG inlined in the HTML) ------------------

_PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#65a30d"]


def svg_bars(items: Sequence[tuple[str, float]], *, unit: str = "", width: int = 640,
             max_value: float | None = None) -> str:
    """A horizontal bar chart."""
    if not items:
        return "<p class='empty'>No data.</p>"
    bar_h, label_w, pad = 18, 190, 4
    top = max_value or max(v for _, v in items) or 1.0
    plot_w = width - label_w - 70
    height = len(items) * (bar_h + pad) + pad
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"role='img' class='chart'>"]
    for i, (label, value) in enumerate(items):
        y = pad + i * (bar_h + pad)
        w = max(1.0, plot_w * value / top)
        parts.append(
            f"<text x='{label_w - 6}' y='{y + 13}' text-anchor='end'>{html.escape(label)}</text>"
            f"<rect x='{label_w}' y='{y}' width='{w:.1f}' height='{bar_h}' fill='#2563eb'/>"
            f"<text x='{label_w + w + 4:.1f}' y='{y + 13}'>{value:.1f}{unit}</text>")
    parts.append("</svg>")
    return "".join(parts)


def svg_lines(x_labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *,
              width: int = 640, height: int = 240, percent: bool = False) -> str:
    """A multi-series line chart with a legend."""
    if not x_labels or not series:
        return "<p class='empty'>No data.</p>"
    left, right, top_pad, bottom = 50, 150, 10, 30
    pw, ph = width - left - right, height - top_pad - bottom
    ymax = 1.0 if percent else max(1.0, *(v for _, vs in series for v in vs))
    step = pw / max(1, len(x_labels) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + i * step, top_pad + ph - ph * v / ymax

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"role='img' class='chart'>",
             f"<line x1='{left}' y1='{top_pad + ph}' x2='{left + pw}' y2='{top_pad + ph}' "
             "stroke='#999'/>"]
    for frac in (0.0, 0.5, 1.0):
        y = top_pad + ph - ph * frac
        label = f"{frac:.0%}" if percent else f"{ymax * frac:.0f}"
        parts.append(f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end'>{label}</text>"
                     f"<line x1='{left}' y1='{y:.1f}' x2='{left + pw}' y2='{y:.1f}' "
                     "stroke='#eee'/>")
    every = max(1, len(x_labels) // 8)
    for i, lab in enumerate(x_labels):
        if i % every == 0:
            x, _ = xy(i, 0)
            parts.append(f"<text x='{x:.1f}' y='{height - 8}' text-anchor='middle'>"
                         f"{html.escape(lab)}</text>")
    for k, (name, values) in enumerate(series):
        color = _PALETTE[k % len(_PALETTE)]
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in
                                                            enumerate(values)))
        parts.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' "
                     f"points='{points}'/>")
        ly = top_pad + 14 + 16 * k
        parts.append(f"<rect x='{left + pw + 10}' y='{ly - 9}' width='10' height='10' "
                     f"fill='{color}'/><text x='{left + pw + 24}' y='{ly}'>"
                     f"{html.escape(name)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return "<p class='empty'>None this month.</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_GROUP_TITLES = {"streets": "Streets, towns and townships (街乡镇)",
                 "departments": "Departments and public-service companies (委办局/公共服务企业)",
                 "other": "Other units"}
_RANK_HEADERS = ["rank", "unit", "unit id", "cases", "response", "resolution",
                 "satisfaction", "score", "praise"]


def _ranking_rows(rows: Sequence[RankingRow]) -> list[list[Any]]:
    return [[r.rank, r.unit_name, r.unit_id, r.cases, _pct(r.response_rate),
             _pct(r.resolution_rate), _pct(r.satisfaction_rate), f"{r.score:.2f}", r.praise]
            for r in rows]


def render_html(d: MonthlyData) -> str:
    """The monthly report as one self-contained HTML page."""
    t = d.totals
    sections = [
        f"<h1>Hotline monthly report {d.month} (12345 接诉即办)</h1>",
        f"<p class='meta'>Generated {d.generated_at:%Y-%m-%d %H:%M} UTC from the case ledger."
        "</p>",
        "<h2 id='summary'>1. Summary</h2>",
        _table(["filed", "evaluated (counted)", "response", "resolution", "satisfaction",
                "overdue", "praise", "hotspot warnings", "governance cases"],
               [[t["filed"], t["evaluated"], _pct(t["response_rate"]),
                 _pct(t["resolution_rate"]), _pct(t["satisfaction_rate"]), t["overdue"],
                 t["praise"], t["hotspots"], t["governance_cases"]]]),
        "<h2 id='rankings'>2. Rankings (考评排名)</h2>",
    ]
    for group, rows in d.rankings.items():
        sections.append(f"<h3>{html.escape(_GROUP_TITLES.get(group, group))}</h3>")
        sections.append(svg_bars([(r.unit_name, r.score) for r in rows[:25]],
                                 max_value=100.0))
        sections.append(_table(_RANK_HEADERS, _ranking_rows(rows)))
    months = [m for m, *_ in d.rate_trend]
    sections += [
        "<h2 id='rates'>3. Three-rate trends (三率)</h2>",
        svg_lines(months, [("response", [r[2] for r in d.rate_trend]),
                           ("resolution", [r[3] for r in d.rate_trend]),
                           ("satisfaction", [r[4] for r in d.rate_trend])], percent=True),
        _table(["month", "counted cases", "response", "resolution", "satisfaction"],
               [[m, n, _pct(a), _pct(b), _pct(c)] for m, n, a, b, c in d.rate_trend]),
        "<h2 id='priority-streets'>4. Priority streets and townships (治理类街乡镇)</h2>",
        svg_bars([(s.street, float(s.cases)) for s in d.streets.get("volume", [])]),
        _table(["rank", "district", "street", "complaints", "per 10,000 residents"],
               [[s.rank, s.district or "", s.street, s.cases,
                 "" if s.per_10k is None else f"{s.per_10k:.2f}"]
                for s in d.streets.get("volume", [])]),
    ]
    if "per_10k" in d.streets:
        sections.append("<h3>By complaints per 10,000 residents</h3>")
        sections.append(_table(["rank", "district", "street", "complaints", "per 10,000"],
                               [[s.rank, s.district or "", s.street, s.cases,
                                 f"{s.per_10k:.2f}"] for s in d.streets["per_10k"]]))
    halves = next(iter(d.topic_trend.values()), [])
    sections += [
        "<h2 id='topics'>5. Monthly-topic candidates and topic trends (每月一题)</h2>",
        _table(["rank", "category", "name", "volume", "previous avg", "growth",
                "units involved", "streets", "score"],
               [[t.rank, t.category, d.category_names.get(t.category, ""), t.volume,
                 f"{t.previous_volume:.1f}", f"{t.growth:+.0%}", t.units, t.streets,
                 f"{t.score:.3f}"] for t in d.topics]),
        "<h3>Half-monthly volume of tracked topics</h3>",
        svg_lines([h for h, _ in halves],
                  [(d.category_names.get(c, c), [float(n) for _, n in pts])
                   for c, pts in d.topic_trend.items()]),
        "<h2 id='hotspots'>6. Hotspot warnings (未诉先办)</h2>",
        _table(["detected (UTC)", "district", "street", "category", "count", "expected",
                "× baseline", "governance case", "status"],
               [[f"{h[0]:%Y-%m-%d %H:%M}", h[1] or "", h[2] + _near(h[9], h[10]),
                 d.category_names.get(h[3], h[3]), h[4], f"{h[5]:.1f}", f"{h[6]:.1f}",
                 h[7] or "", h[8]] for h in d.hotspots]),
    ]
    style = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0 1.5em}"
             "td,th{border:1px solid #ccc;padding:2px 8px;font-size:13px}"
             "th{background:#f3f4f6}.chart text{font-size:11px}.empty{color:#888}")
    return ("<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'>"
            f"<title>Hotline monthly report {d.month}</title><style>{style}</style></head>"
            f"<body>{''.join(sections)}</body></html>")


def write_csv(d: MonthlyData, path: Path) -> None:
    """One long CSV: a ``section`` column, then the section's fields."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["section", "group", "rank", "id", "name", "count", "response_rate",
                    "resolution_rate", "satisfaction_rate", "score", "extra"])
        for group, rows in d.rankings.items():
            for r in rows:
                w.writerow(["ranking", group, r.rank, r.unit_id, r.unit_name, r.cases,
                            f"{r.response_rate:.6f}", f"{r.resolution_rate:.6f}",
                            f"{r.satisfaction_rate:.6f}", f"{r.score:.6f}",
                            f"praise={r.praise}"])
        for m, n, a, b, c in d.rate_trend:
            w.writerow(["three_rates", "city", "", m, "", n, f"{a:.6f}", f"{b:.6f}",
                        f"{c:.6f}", "", ""])
        for kind, streets in d.streets.items():
            for s in streets:
                w.writerow(["priority_street", kind, s.rank, s.district or "", s.street,
                            s.cases, "", "", "", "" if s.per_10k is None else s.per_10k,
                            "" if s.population is None else f"population={s.population}"])
        for t in d.topics:
            w.writerow(["topic_candidate", "", t.rank, t.category,
                        d.category_names.get(t.category, ""), t.volume, "", "", "",
                        f"{t.score:.6f}",
                        f"growth={t.growth:.4f};units={t.units};streets={t.streets}"])
        for cat, pts in d.topic_trend.items():
            for half, n in pts:
                w.writerow(["topic_trend", half, "", cat, d.category_names.get(cat, ""), n,
                            "", "", "", "", ""])
        for h in d.hotspots:
            w.writerow(["hotspot", h[1] or "", "", h[7] or "", h[2], h[4], "", "", "",
                        f"{h[6]:.4f}", f"category={h[3]};detected={h[0].isoformat()};"
                        f"expected={h[5]:.4f}"])


def write_monthly_report(settings: Settings, month: str,
                         out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write ``monthly-<month>.html`` and ``.csv``; returns both paths."""
    data = asyncio.run(collect_monthly(settings, month))
    folder = out_dir or settings.state_dir / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    html_path = folder / f"monthly-{month}.html"
    csv_path = folder / f"monthly-{month}.csv"
    html_path.write_text(render_html(data), encoding="utf-8")
    write_csv(data, csv_path)
    return html_path, csv_path


# --- commands -------------------------------------------------------------------------------


@report_app.command("monthly")
def report_monthly(
    month: str = typer.Option(None, help="YYYY-MM; default: last month."),
    out: Path = typer.Option(None, help="Folder; default: <state_dir>/reports."),
) -> None:
    """Write the monthly HTML report (charts) and its CSV, and print where they are."""
    settings = get_settings()
    month = month or _default_month(_configs(settings)[1])
    _check_month(month)
    html_path, csv_path = write_monthly_report(settings, month, out)
    _console.print(f"monthly report {month}:\n  {html_path}\n  {csv_path}")


def _check_month(month: str) -> None:
    try:
        datetime.strptime(month, "%Y-%m")
    except ValueError:
        raise typer.BadParameter(f"month must be YYYY-MM, not {month!r}") from None


@app.command()
def rankings(month: str = typer.Option(None, help="YYYY-MM; default: last month."),
             group: str = typer.Option(None, help="streets or departments; default: all.")
             ) -> None:
    """Monthly three-rate rankings of units (考评排名), from the ledger."""
    settings = get_settings()
    config, gov = _configs(settings)
    month = month or _default_month(gov)
    _check_month(month)

    async def _run() -> dict[str, list[RankingRow]]:
        async with await psycopg.AsyncConnection.connect(settings.dsn) as conn:
            return await compute_rankings(conn, month, gov.tz,
                                          config.rules.weights.model_dump(),
                                          RegistryDirectory(config))

    for g, rows in asyncio.run(_run()).items():
        if group and g != group:
            continue
        table = Table(title=f"{month} {_GROUP_TITLES.get(g, g)}")
        for h in _RANK_HEADERS:
            table.add_column(h)
        for r in _ranking_rows(rows):
            table.add_row(*(str(c) for c in r))
        _console.print(table)


@app.command("priority-streets")
def priority_streets_cmd(month: str = typer.Option(None, help="YYYY-MM; default: last month.")
                         ) -> None:
    """The month's priority streets/townships (治理类街乡镇) by complaint volume."""
    settings = get_settings()
    _, gov = _configs(settings)
    month = month or _default_month(gov)
    _check_month(month)

    async def _run() -> dict[str, list[PriorityStreet]]:
        async with await psycopg.AsyncConnection.connect(settings.dsn) as conn:
            return await priority_streets(conn, month, gov)

    for kind, rows in asyncio.run(_run()).items():
        table = Table(title=f"{month} priority streets by {kind}")
        for h in ("rank", "district", "street", "complaints", "per 10,000"):
            table.add_column(h)
        for s in rows:
            table.add_row(str(s.rank), s.district or "", s.street, str(s.cases),
                          "" if s.per_10k is None else f"{s.per_10k:.2f}")
        _console.print(table)


@app.command()
def hotspots(days: int = typer.Option(30, help="Warnings detected in the last N days."),
             open_only: bool = typer.Option(True, "--open-only/--all")) -> None:
    """Hotspot warnings (未诉先办) and the governance case each became."""
    settings = get_settings()
    since = datetime.now(UTC) - timedelta(days=days)
    with psycopg.connect(settings.dsn) as conn:
        rows = conn.execute(
            """SELECT w.detected_at, w.district, w.street, w.category, w.count, w.baseline,
                      w.score, w.complaint_id, coalesce(c.status, w.status), w.latitude,
                      w.longitude
                 FROM hotspot_warnings w LEFT JOIN cases c USING (complaint_id)
                WHERE w.detected_at >= %s ORDER BY w.detected_at DESC""",
            (since,)).fetchall()
    table = Table(title=f"hotspot warnings since {since:%Y-%m-%d}")
    for h in ("detected (UTC)", "district", "street", "category", "count", "expected",
              "× baseline", "case", "status"):
        table.add_column(h)
    for r in rows:
        if open_only and r[8] == "CLOSED":
            continue
        table.add_row(f"{r[0]:%Y-%m-%d %H:%M}", r[1] or "", r[2] + _near(r[9], r[10]),
                      r[3], str(r[4]),
                      f"{r[5]:.1f}", f"{r[6]:.1f}", r[7] or "", r[8])
    _console.print(table)


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
def schedules_install() -> None:
    """Create (or update) the monthly-evaluation and hotspot-scan Temporal Schedules."""
    settings = get_settings()
    _, gov = _configs(settings)
    for line in asyncio.run(install_schedules(settings, gov)):
        _console.print(line)


@app.command()
def projector() -> None:
    """Run the ledger projector: hotline.lifecycle → PostgreSQL (idempotent, rebuildable)."""
    from workers.projector.main import main as run_projector

    run_projector()
