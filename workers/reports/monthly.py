"""The monthly supervisor report: HTML with inline SVG charts, and a CSV beside it.

``write_monthly_report`` reads the month's figures from the ledger (rankings, the three
rates over the last months, priority streets, monthly-topic candidates and their trend,
hotspot warnings) and writes ``monthly-<month>.html`` and ``monthly-<month>.csv``.

The HTML speaks Chinese unless asked for English (``lang="en"``; words in
:mod:`workers.reports.words`). The CSV is the same in both languages: its column names and
``section``/``group`` values are keys that scripts read, and the names in it (units,
streets, categories) are the ledger's own, in Chinese.
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
from workers.reports.words import (
    DEFAULT_LANG,
    group_titles,
    month_label,
    rank_headers,
    status_label,
    translator,
)
from workers.runtime.settings import Settings

__all__ = [
    "FONT_FAMILY",
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


def near(latitude: float | None, longitude: float | None, lang: str = "en") -> str:
    """A hotspot near one point names the point after its main street (English by default:
    the ``hotline hotspots`` table)."""
    if latitude is None or longitude is None:
        return ""
    return translator(lang)("near", at=f"{latitude:.5f},{longitude:.5f}")


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


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> str:
    if not rows:
        return f"<p class='empty'>{html.escape(empty)}</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# The `hotline rankings` table (an English command line) and the English report share these.
GROUP_TITLES = group_titles("en")
RANK_HEADERS = rank_headers("en")

# Chinese needs a CJK font on the reader's machine: the usual ones on Linux (Noto/Source Han,
# WenQuanYi as Debian's fonts-wqy-microhei installs it), macOS and Windows, then any.
FONT_FAMILY = ("'Noto Sans CJK SC','Source Han Sans SC','WenQuanYi Micro Hei',"
               "'PingFang SC','Hiragino Sans GB','Microsoft YaHei',sans-serif")


def ranking_rows(rows: Sequence[RankingRow]) -> list[list[Any]]:
    """One ranking group as table cells, in the order of :data:`RANK_HEADERS`."""
    return [[r.rank, r.unit_name, r.unit_id, r.cases, _pct(r.response_rate),
             _pct(r.resolution_rate), _pct(r.satisfaction_rate), f"{r.score:.2f}", r.praise]
            for r in rows]


def render_html(d: MonthlyData, lang: str = DEFAULT_LANG) -> str:
    """The monthly report as one self-contained HTML page, in ``lang`` (``zh`` or ``en``)."""
    t = translator(lang)
    none, no_data = t("none_this_month"), t("no_data")

    def table(keys: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
        return _table([t(k) for k in keys], rows, none)

    totals = d.totals
    titles = group_titles(lang)
    sections = [
        f"<h1>{html.escape(t('title', month=month_label(d.month, lang)))}</h1>",
        f"<p class='meta'>{html.escape(t('generated', at=f'{d.generated_at:%Y-%m-%d %H:%M}'))}"
        "</p>",
        f"<h2 id='summary'>{t('summary')}</h2>",
        table(["filed", "evaluated", "response", "resolution", "satisfaction", "overdue",
               "praise", "hotspot_count", "governance_cases"],
              [[totals["filed"], totals["evaluated"], _pct(totals["response_rate"]),
                _pct(totals["resolution_rate"]), _pct(totals["satisfaction_rate"]),
                totals["overdue"], totals["praise"], totals["hotspots"],
                totals["governance_cases"]]]),
        f"<h2 id='rankings'>{t('rankings')}</h2>",
    ]
    for group, rows in d.rankings.items():
        title = titles.get(group, group)
        sections.append(f"<h3>{html.escape(title)}</h3>")
        sections.append(svg_bars([(r.unit_name, r.score) for r in rows[:25]], max_value=100.0,
                                 title=t("chart.scores", group=title), empty=no_data))
        sections.append(_table(rank_headers(lang), ranking_rows(rows), none))
    months = [m for m, *_ in d.rate_trend]
    volume = d.streets.get("volume", [])
    sections += [
        f"<h2 id='rates'>{t('rates')}</h2>",
        svg_lines(months, [(t("response"), [r[2] for r in d.rate_trend]),
                           (t("resolution"), [r[3] for r in d.rate_trend]),
                           (t("satisfaction"), [r[4] for r in d.rate_trend])],
                  percent=True, title=t("chart.rates"), empty=no_data),
        table(["month", "counted", "response", "resolution", "satisfaction"],
              [[m, n, _pct(a), _pct(b), _pct(c)] for m, n, a, b, c in d.rate_trend]),
        f"<h2 id='priority-streets'>{t('priority_streets')}</h2>",
        svg_bars([(s.street, float(s.cases)) for s in volume], title=t("chart.streets"),
                 empty=no_data, digits=0, unit=t("unit.cases")),
        table(["rank", "district", "street", "complaints", "per_10k"],
              [[s.rank, s.district or "", s.street, s.cases,
                "" if s.per_10k is None else f"{s.per_10k:.2f}"] for s in volume]),
    ]
    if "per_10k" in d.streets:
        sections.append(f"<h3>{t('by_per_10k')}</h3>")
        sections.append(table(["rank", "district", "street", "complaints", "per_10k"],
                              [[s.rank, s.district or "", s.street, s.cases,
                                f"{s.per_10k:.2f}"] for s in d.streets["per_10k"]]))
    halves = next(iter(d.topic_trend.values()), [])
    sections += [
        f"<h2 id='topics'>{t('topics')}</h2>",
        table(["rank", "category_code", "category", "volume", "previous_avg", "growth",
               "units_involved", "streets_involved", "score"],
              [[c.rank, c.category, d.category_names.get(c.category, ""), c.volume,
                f"{c.previous_volume:.1f}", f"{c.growth:+.0%}", c.units, c.streets,
                f"{c.score:.3f}"] for c in d.topics]),
        f"<h3>{t('topic_trend')}</h3>",
        svg_lines([h for h, _ in halves],
                  [(d.category_names.get(c, c), [float(n) for _, n in pts])
                   for c, pts in d.topic_trend.items()],
                  title=t("chart.topic_trend"), empty=no_data),
        f"<h2 id='hotspots'>{t('hotspots')}</h2>",
        table(["detected", "district", "street", "hotspot_category", "count", "expected",
               "times_baseline", "governance_case", "status"],
              [[f"{h[0]:%Y-%m-%d %H:%M}", h[1] or "", h[2] + near(h[9], h[10], lang),
                d.category_names.get(h[3], h[3]), h[4], f"{h[5]:.1f}", f"{h[6]:.1f}",
                h[7] or "", status_label(h[8], lang)] for h in d.hotspots]),
    ]
    style = (f"body{{font-family:{FONT_FAMILY};max-width:1000px;margin:2em auto;color:#222}}"
             "table{border-collapse:collapse;margin:.5em 0 1.5em}"
             "td,th{border:1px solid #ccc;padding:2px 8px;font-size:13px}"
             f"th{{background:#f3f4f6}}.chart text{{font-size:11px;font-family:{FONT_FAMILY}}}"
             ".chart text.chart-title{font-size:13px}.empty{color:#888}")
    html_lang = "zh-CN" if lang == "zh" else "en"
    page_title = html.escape(t("title", month=month_label(d.month, lang)))
    return (f"<!DOCTYPE html><html lang='{html_lang}'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{page_title}</title><style>{style}</style></head>"
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


def write_monthly_report(settings: Settings, month: str, out_dir: Path | None = None,
                         lang: str = DEFAULT_LANG) -> tuple[Path, Path]:
    """Write ``monthly-<month>.html`` (in ``lang``) and ``.csv``; returns both paths."""
    translator(lang)  # an unknown language fails before the ledger is read
    data = asyncio.run(collect_monthly(settings, month))
    folder = out_dir or settings.state_dir / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    html_path = folder / f"monthly-{month}.html"
    csv_path = folder / f"monthly-{month}.csv"
    html_path.write_text(render_html(data, lang), encoding="utf-8")
    write_csv(data, csv_path)
    return html_path, csv_path
