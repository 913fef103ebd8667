"""The monthly supervisor report: HTML with inline SVG charts, and a CSV beside it.

``write_monthly_report`` reads the month's figures from the ledger (rankings, the three
rates over the last months, priority streets, monthly-topic candidates and their trend,
hotspot warnings) and writes ``monthly-<month>.html`` and ``monthly-<month>.csv``.
"""

from __future__ import annotations

import asyncio
import csv
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

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
    priority_streets,
    shift_month,
    topic_candidates,
)
from activities.governance.rates import RATE_COUNTS_SQL, ThreeRates
from workers.reports.charts import svg_bars, svg_lines
from workers.runtime.settings import Settings

__all__ = [
    "GROUP_TITLES",
    "RANK_HEADERS",
    "MonthlyData",
    "collect_monthly",
    "load_configs",
    "near",
    "ranking_rows",
    "render_html",
    "write_csv",
    "write_monthly_report",
]

GOVERNANCE_FILE = "governance.yaml"
TREND_MONTHS = 6


def load_configs(settings: Settings) -> tuple[HotlineConfig, GovernanceConfig]:
    """The hotline configuration and the governance rules, from the config folder."""
    return (load_config(settings.config_dir),
            load_governance_config(settings.config_dir / GOVERNANCE_FILE))


def near(latitude: float | None, longitude: float | None) -> str:
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
    config, gov = load_configs(settings)
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
            f"""SELECT to_char(evaluated_at AT TIME ZONE %s, 'YYYY-MM') AS m, {RATE_COUNTS_SQL}
                  FROM evaluations
                 WHERE counted AND evaluated_at >= %s AND evaluated_at < %s
                 GROUP BY m ORDER BY m""", (tz.key, trend_start, end))).fetchall()
        by_month = {}
        for m, *counts in trend_rows:
            three = ThreeRates(*counts)
            by_month[m] = (three.counted, three.response, three.resolution, three.satisfaction)
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


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return "<p class='empty'>None this month.</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# The report's section titles and the `hotline rankings` table share these.
GROUP_TITLES = {"streets": "Streets, towns and townships (街乡镇)",
                "departments": "Departments and public-service companies (委办局/公共服务企业)",
                "other": "Other units"}
RANK_HEADERS = ["rank", "unit", "unit id", "cases", "response", "resolution",
                "satisfaction", "score", "praise"]


def ranking_rows(rows: Sequence[RankingRow]) -> list[list[Any]]:
    """One ranking group as table cells, in the order of :data:`RANK_HEADERS`."""
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
        sections.append(f"<h3>{html.escape(GROUP_TITLES.get(group, group))}</h3>")
        sections.append(svg_bars([(r.unit_name, r.score) for r in rows[:25]],
                                 max_value=100.0))
        sections.append(_table(RANK_HEADERS, ranking_rows(rows)))
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
               [[f"{h[0]:%Y-%m-%d %H:%M}", h[1] or "", h[2] + near(h[9], h[10]),
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
