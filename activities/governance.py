"""Proactive governance (未诉先办) over the ledger: rankings, hotspots, topics, streets.

Everything here is SQL over the ledger tables (``cases``, ``evaluations``; see
``deploy/migrations``), which the projector keeps equal to ``hotline.lifecycle``. The pure
functions take an open connection and are what the tests and the CLI call; the
:class:`GovernanceActivities` class wraps them as Temporal activities with their
dependencies (pool, publisher, Temporal client) injected.

Definitions (DESIGN.md "Callback and evaluation", rules.yaml ``weights``):

- a unit's month is the *counted* evaluations (``counted`` true) whose ``evaluated_at``
  falls in the calendar month (in ``governance.yaml`` ``timezone``), by ``lead_unit_id``;
- response / resolution / satisfaction rate = responded / resolved / satisfied cases over
  those counted cases; score = 100 × (w_response·r + w_resolution·r + w_satisfaction·r);
- praise = PRAISE-kind cases filed in the month, by lead unit;
- ranks: by score, then more cases, then unit id; equal score and cases share a rank.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import structlog
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.dispatch.config import HotlineConfig
from activities.dispatch.registry import STREET_KINDS
from activities.dispatch.rules import describe_validation_error, load_yaml, parse_duration
from workflows.governance_model import (
    GovernanceCaseResult,
    HotspotRef,
    MonthRequest,
    RankingSummary,
    ScanRequest,
    TopicVolumeRequest,
)
from workflows.ids import complaint_workflow_id
from workflows.model import Filing

log = structlog.get_logger(__name__)

GROUP_STREETS = "streets"
GROUP_DEPARTMENTS = "departments"
GROUP_OTHER = "other"
HOTSPOT_PREFIX = "HOT-"
_MONTH_FORMAT = "%Y-%m"


# --- configuration ----------------------------------------------------------------------


class GovernanceError(ValueError):
    """``governance.yaml`` is missing or wrong; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriorityStreetsRule(_Strict):
    top_n: int = Field(ge=1, le=1000)
    population_file: str | None = None


class PointRule(_Strict):
    """Hotspots near one point: complaints with a location, counted on a grid.

    Each count covers a cell and its eight neighbours (a square of 3 × ``cell_m``), so a
    cluster on a street boundary is counted whole. More places are tested than streets,
    hence its own, usually stricter, thresholds.
    """

    cell_m: float = Field(gt=10, le=5000)
    min_count: int = Field(ge=2)
    max_p_value: float = Field(gt=0, le=1)


class HotspotRule(_Strict):
    window: timedelta
    baseline: timedelta
    multiplier: float = Field(gt=1)
    min_count: int = Field(ge=2)
    baseline_floor: float = Field(gt=0)
    max_p_value: float = Field(gt=0, le=1)
    cooldown: timedelta
    exclude_outcomes: list[str] = []
    points: PointRule | None = None

    @field_validator("window", "baseline", "cooldown", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("baseline")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value


class TopicWeights(_Strict):
    volume: float = Field(ge=0)
    growth: float = Field(ge=0)
    units: float = Field(ge=0)


class TopicRule(_Strict):
    top_n: int = Field(ge=1)
    previous_months: int = Field(ge=1, le=24)
    weights: TopicWeights
    tracked: list[str] = []


class ScheduleRule(_Strict):
    monthly_evaluation_cron: str
    hotspot_scan_cron: str

    @field_validator("monthly_evaluation_cron", "hotspot_scan_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"not a five-field cron expression: {value!r}")
        return value


class GovernanceConfig(_Strict):
    version: int = 1
    timezone: str = "Asia/Shanghai"
    priority_streets: PriorityStreetsRule
    hotspots: HotspotRule
    topics: TopicRule
    schedules: ScheduleRule
    # Filled by the loader from ``population_file``: (district, street) → residents.
    population: dict[str, int] = {}

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception as err:
            raise ValueError(f"unknown time zone {value!r}") from err
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_governance_config(path: Path) -> GovernanceConfig:
    """Read and validate ``governance.yaml`` (and its optional population file).

    Raises:
        GovernanceError: naming the file and every bad key.
    """
    try:
        data = load_yaml(path)
    except Exception as err:
        raise GovernanceError(f"{path}: {err}") from None
    if not isinstance(data, dict):
        raise GovernanceError(f"{path}: expected a mapping at the top level")
    try:
        cfg = GovernanceConfig.model_validate(data)
    except ValidationError as err:
        raise GovernanceError(describe_validation_error(path, err)) from None
    pop_name = cfg.priority_streets.population_file
    if pop_name:
        pop_path = path.parent / pop_name
        population: dict[str, int] = {}
        try:
            with pop_path.open(encoding="utf-8", newline="") as fh:
                for line, row in enumerate(csv.DictReader(fh), start=2):
                    try:
                        population[_place_key(row["district"], row["street"])] = int(
                            row["population"])
                    except (KeyError, TypeError, ValueError):
                        raise GovernanceError(
                            f"{pop_path}:{line}: needs district, street and an integer "
                            "population") from None
        except FileNotFoundError:
            raise GovernanceError(
                f"{path}: priority_streets.population_file: {pop_path} not found") from None
        cfg = cfg.model_copy(update={"population": population})
    return cfg


def _place_key(district: str | None, street: str) -> str:
    return f"{district or ''}/{street}"


# --- months -----------------------------------------------------------------------------


def month_bounds(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """``"2026-10"`` → [start, end) as UTC datetimes, month boundaries in ``tz``.

    Raises:
        ValueError: ``month`` is not ``YYYY-MM``.
    """
    first = datetime.strptime(month, _MONTH_FORMAT).replace(tzinfo=tz)
    nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first.astimezone(UTC), nxt.astimezone(UTC)


def shift_month(month: str, delta: int) -> str:
    """The month ``delta`` months after ``month`` (negative: before)."""
    year, mon = (int(p) for p in month.split("-"))
    index = year * 12 + (mon - 1) + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def previous_month(at: datetime, tz: ZoneInfo) -> str:
    """The calendar month before the one ``at`` falls in (the month a schedule closes)."""
    return shift_month(at.astimezone(tz).strftime(_MONTH_FORMAT), -1)


# --- rankings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RankingRow:
    """One unit's line in a monthly ranking (the ``RankingEntry`` record's fields)."""

    rank: int
    unit_id: str
    unit_name: str
    cases: int
    response_rate: float
    resolution_rate: float
    satisfaction_rate: float
    score: float
    praise: int = 0


class UnitDirectory(Protocol):
    """Name and kind of a unit id (the registry)."""

    def describe(self, unit_id: str) -> tuple[str, str]: ...


@dataclass
class RegistryDirectory:
    """:class:`UnitDirectory` over the loaded unit registry."""

    config: HotlineConfig

    def describe(self, unit_id: str) -> tuple[str, str]:
        unit = self.config.registry.get(unit_id)
        return (unit.name, unit.kind) if unit else (unit_id, "unknown")


def unit_group(kind: str) -> str:
    """Streets/towns/townships are ranked apart from departments and utilities."""
    if kind in STREET_KINDS:
        return GROUP_STREETS
    if kind in ("department", "utility"):
        return GROUP_DEPARTMENTS
    return GROUP_OTHER


_RATES_SQL = """
SELECT lead_unit_id, count(*),
       count(*) FILTER (WHERE responded), count(*) FILTER (WHERE resolved),
       count(*) FILTER (WHERE satisfied)
  FROM evaluations
 WHERE counted AND lead_unit_id IS NOT NULL AND evaluated_at >= %s AND evaluated_at < %s
 GROUP BY lead_unit_id
"""

_PRAISE_SQL = """
SELECT lead_unit_id, count(*) FROM cases
 WHERE kind = 'PRAISE' AND lead_unit_id IS NOT NULL AND filed_at >= %s AND filed_at < %s
 GROUP BY lead_unit_id
"""


async def compute_rankings(
    conn: AsyncConnection[Any], month: str, tz: ZoneInfo, weights: Mapping[str, float],
    units: UnitDirectory,
) -> dict[str, list[RankingRow]]:
    """Per-group rankings of the month (see the module docstring for the formulas).

    Args:
        conn: A ledger connection.
        month: ``YYYY-MM``.
        tz: Time zone of month boundaries.
        weights: ``response``, ``resolution`` and ``satisfaction`` (add up to 1).
        units: Names and kinds of unit ids.

    Returns:
        ``{"streets": [...], "departments": [...], "other": [...]}``, each ranked from 1;
        groups without units are left out.
    """
    start, end = month_bounds(month, tz)
    rates = await (await conn.execute(_RATES_SQL, (start, end))).fetchall()
    praise = dict(await (await conn.execute(_PRAISE_SQL, (start, end))).fetchall())
    grouped: dict[str, list[RankingRow]] = {}
    for unit_id, n, responded, resolved, satisfied in rates:
        name, kind = units.describe(unit_id)
        rr, res, sat = responded / n, resolved / n, satisfied / n
        score = 100.0 * (weights["response"] * rr + weights["resolution"] * res
                         + weights["satisfaction"] * sat)
        grouped.setdefault(unit_group(kind), []).append(RankingRow(
            0, unit_id, name, n, rr, res, sat, score, int(praise.get(unit_id, 0))))
    return {group: _ranked(rows) for group, rows in sorted(grouped.items())}


def _ranked(rows: list[RankingRow]) -> list[RankingRow]:
    rows = sorted(rows, key=lambda r: (-r.score, -r.cases, r.unit_id))
    out: list[RankingRow] = []
    for i, row in enumerate(rows):
        tied = out and (out[-1].score, out[-1].cases) == (row.score, row.cases)
        rank = out[-1].rank if tied else i + 1
        out.append(RankingRow(rank, *(getattr(row, f) for f in (
            "unit_id", "unit_name", "cases", "response_rate", "resolution_rate",
            "satisfaction_rate", "score", "praise"))))
    return out


async def store_rankings(conn: AsyncConnection[Any], month: str,
                         rankings: Mapping[str, Sequence[RankingRow]]) -> None:
    """Replace the month's stored rankings (one transaction)."""
    async with conn.transaction():
        await conn.execute("DELETE FROM monthly_rankings WHERE month = %s", (month,))
        for group, rows in rankings.items():
            for r in rows:
                await conn.execute(
                    """INSERT INTO monthly_rankings (month, unit_group, unit_id, rank,
                           unit_name, cases, response_rate, resolution_rate,
                           satisfaction_rate, score, praise)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                    (month, group, r.unit_id, r.rank, r.unit_name, r.cases, r.response_rate,
                     r.resolution_rate, r.satisfaction_rate, r.score, r.praise),
                )


def ranking_record(month: str, group: str, rows: Sequence[RankingRow],
                   at: datetime) -> dict[str, Any]:
    """The ``MonthlyRanking`` record; its event id is stable, so republishing is a repeat."""
    return {
        "event_id": f"ranking:{month}:{group}", "month": month, "at": at, "group": group,
        "entries": [
            {"rank": r.rank, "unit_id": r.unit_id, "unit_name": r.unit_name,
             "cases": r.cases, "response_rate": r.response_rate,
             "resolution_rate": r.resolution_rate, "satisfaction_rate": r.satisfaction_rate,
             "score": r.score, "praise": r.praise}
            for r in rows
        ],
    }


# --- priority streets -------------------------------------------------------------------


@dataclass(frozen=True)
class PriorityStreet:
    """A street/township by complaint volume in a month."""

    rank: int
    district: str | None
    street: str
    cases: int
    population: int | None = None
    per_10k: float | None = None


async def priority_streets(conn: AsyncConnection[Any], month: str,
                           cfg: GovernanceConfig) -> dict[str, list[PriorityStreet]]:
    """治理类街乡镇: the top N streets by volume, and per 10,000 residents if known.

    Governance cases the system opened itself (``HOT-…``) are not complaints and are left
    out. Returns ``{"volume": [...]}`` plus ``"per_10k"`` when population data is loaded.
    """
    start, end = month_bounds(month, cfg.tz)
    rows = await (await conn.execute(
        """SELECT district, street, count(*) FROM cases
            WHERE filed_at >= %s AND filed_at < %s AND street IS NOT NULL
              AND complaint_id NOT LIKE %s
            GROUP BY district, street""",
        (start, end, HOTSPOT_PREFIX + "%"))).fetchall()
    n = cfg.priority_streets.top_n
    streets = []
    for district, street, count in rows:
        pop = cfg.population.get(_place_key(district, street))
        streets.append(PriorityStreet(0, district, street, count, pop,
                                      round(count * 10000 / pop, 3) if pop else None))
    by_volume = sorted(streets, key=lambda s: (-s.cases, s.district or "", s.street))[:n]
    out = {"volume": [_with_rank(s, i + 1) for i, s in enumerate(by_volume)]}
    if cfg.population:
        per = sorted((s for s in streets if s.per_10k is not None),
                     key=lambda s: (-(s.per_10k or 0.0), s.street))[:n]
        out["per_10k"] = [_with_rank(s, i + 1) for i, s in enumerate(per)]
    return out


def _with_rank(s: PriorityStreet, rank: int) -> PriorityStreet:
    return PriorityStreet(rank, s.district, s.street, s.cases, s.population, s.per_10k)


# --- monthly-topic candidates ------------------------------------------------------------


@dataclass(frozen=True)
class TopicCandidate:
    """A problem type (category) as a 每月一题 candidate."""

    rank: int
    category: str
    volume: int
    previous_volume: float  # average over the previous months
    growth: float           # (volume - previous) / max(previous, 1)
    units: int              # distinct lead units involved
    streets: int            # distinct streets involved
    score: float


async def topic_candidates(conn: AsyncConnection[Any], month: str,
                           cfg: GovernanceConfig) -> list[TopicCandidate]:
    """Categories ranked by a weighted mix of volume, growth and units involved.

    Each factor is scaled to [0, 1] by its maximum over the month's categories (negative
    growth counts as 0), then weighted by ``topics.weights``.
    """
    rule = cfg.topics
    start, end = month_bounds(month, cfg.tz)
    prev_start, _ = month_bounds(shift_month(month, -rule.previous_months), cfg.tz)
    rows = await (await conn.execute(
        """SELECT category,
                  count(*) FILTER (WHERE filed_at >= %(s)s),
                  count(*) FILTER (WHERE filed_at < %(s)s),
                  count(DISTINCT lead_unit_id) FILTER (WHERE filed_at >= %(s)s),
                  count(DISTINCT street) FILTER (WHERE filed_at >= %(s)s)
             FROM cases
            WHERE filed_at >= %(ps)s AND filed_at < %(e)s AND category IS NOT NULL
              AND complaint_id NOT LIKE %(hot)s
            GROUP BY category""",
        {"s": start, "e": end, "ps": prev_start, "hot": HOTSPOT_PREFIX + "%"})).fetchall()
    raw = []
    for category, volume, previous, units, streets in rows:
        if volume == 0:
            continue
        prev_avg = previous / rule.previous_months
        growth = (volume - prev_avg) / max(prev_avg, 1.0)
        raw.append((category, volume, prev_avg, growth, units, streets))
    if not raw:
        return []
    max_v = max(r[1] for r in raw) or 1
    max_g = max(max(r[3], 0.0) for r in raw) or 1.0
    max_u = max(r[4] for r in raw) or 1
    w = rule.weights
    scored = [
        (round(w.volume * v / max_v + w.growth * max(g, 0.0) / max_g + w.units * u / max_u, 6),
         c, v, p, g, u, st)
        for c, v, p, g, u, st in raw
    ]
    scored.sort(key=lambda r: (-r[0], -r[2], r[1]))
    return [TopicCandidate(i + 1, c, v, round(p, 3), round(g, 4), u, st, score)
            for i, (score, c, v, p, g, u, st) in enumerate(scored[:rule.top_n])]


async def store_topic_candidates(conn: AsyncConnection[Any], month: str,
                                 rows: Sequence[TopicCandidate]) -> None:
    async with conn.transaction():
        await conn.execute("DELETE FROM topic_candidates WHERE month = %s", (month,))
        for t in rows:
            await conn.execute(
                """INSERT INTO topic_candidates (month, category, rank, volume,
                       previous_volume, growth, units, streets, score)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (month, t.category, t.rank, t.volume, t.previous_volume, t.growth, t.units,
                 t.streets, t.score))


async def half_month_trend(conn: AsyncConnection[Any], categories: Sequence[str],
                           last_month: str, months: int,
                           tz: ZoneInfo) -> dict[str, list[tuple[str, int]]]:
    """Volume per half month (``2026-10a`` = 1st–15th, ``2026-10b`` = the rest)."""
    start, _ = month_bounds(shift_month(last_month, -(months - 1)), tz)
    _, end = month_bounds(last_month, tz)
    rows = await (await conn.execute(
        """SELECT category,
                  to_char(filed_at AT TIME ZONE %(tz)s, 'YYYY-MM')
                  || CASE WHEN extract(day FROM filed_at AT TIME ZONE %(tz)s) <= 15
                          THEN 'a' ELSE 'b' END AS half,
                  count(*)
             FROM cases
            WHERE category = ANY(%(cats)s) AND filed_at >= %(s)s AND filed_at < %(e)s
              AND complaint_id NOT LIKE %(hot)s
            GROUP BY 1, 2""",
        {"tz": tz.key, "cats": list(categories), "s": start, "e": end,
         "hot": HOTSPOT_PREFIX + "%"})).fetchall()
    counts = {(c, h): n for c, h, n in rows}
    halves = [f"{shift_month(last_month, -k)}{ab}" for k in range(months - 1, -1, -1)
              for ab in ("a", "b")]
    return {c: [(h, int(counts.get((c, h), 0))) for h in halves] for c in categories}


# --- hotspots ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Hotspot:
    """A hotspot warning (the ``HotspotWarning`` record's fields)."""

    warning_id: str
    district: str | None
    street: str
    category: str
    window_start: datetime
    window_end: datetime
    count: int
    baseline: float       # expected count in the window from the street's own history
    score: float          # count / expected
    p_value: float = 1.0
    latitude: float | None = None   # set for a hotspot near one point
    longitude: float | None = None

    @property
    def complaint_id(self) -> str:
        return f"{HOTSPOT_PREFIX}{self.warning_id}"


def poisson_tail(k: int, mean: float) -> float:
    """P(X ≥ k) for X ~ Poisson(mean), summed upwards (accurate for tiny tails)."""
    if k <= 0:
        return 1.0
    log_p = -mean + k * math.log(mean) - math.lgamma(k + 1)
    total, term, i = 0.0, math.exp(log_p), k
    while term > 1e-300 and i < k + 2000:
        total += term
        i += 1
        term *= mean / i
        if term < total * 1e-16:
            break
    return min(1.0, total)


def warning_id_for(district: str | None, street: str, category: str, at: datetime,
                   point: str = "") -> str:
    """Stable id: a scan retried with the same reference time gives the same warning.

    (A later scan of the same place is held back by the cooldown, not by the id.)
    ``point`` names the grid cell of a hotspot near one point.
    """
    stamp = at.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    place = f"{district}|{street}|{category}" + (f"|{point}" if point else "")
    digest = hashlib.sha256(place.encode()).hexdigest()[:10]
    return f"{stamp}-{digest}"


_HOTSPOT_SQL = """
WITH recent AS (
    SELECT district, street, category, filed_at FROM cases
     WHERE filed_at >= %(bs)s AND filed_at < %(now)s
       AND street IS NOT NULL AND category IS NOT NULL
       AND complaint_id NOT LIKE %(hot)s
       AND NOT (coalesce(outcome, '') = ANY(%(excl)s))
)
SELECT district, street, category,
       count(*) FILTER (WHERE filed_at >= %(ws)s) AS n,
       count(*) FILTER (WHERE filed_at < %(ws)s) AS b
  FROM recent
 GROUP BY district, street, category
HAVING count(*) FILTER (WHERE filed_at >= %(ws)s) >= %(min)s
"""


async def detect_hotspots(conn: AsyncConnection[Any], now: datetime,
                          rule: HotspotRule) -> list[Hotspot]:
    """Hotspots by street and, when ``rule.points`` is set, near one point.

    A point cluster whose main street already warns for the category (in this scan or
    within the cooldown) adds no second warning: the street's governance case covers it.
    """
    streets = await _detect_street_hotspots(conn, now, rule)
    if rule.points is None:
        return streets
    covered = {(h.district, h.street, h.category) for h in streets}
    points = await _detect_point_hotspots(conn, now, rule, rule.points, covered)
    return sorted(streets + points, key=lambda h: (-h.score, h.street, h.category))


async def _detect_street_hotspots(conn: AsyncConnection[Any], now: datetime,
                                  rule: HotspotRule) -> list[Hotspot]:
    """Street × category pairs whose window count is far above their own baseline.

    A pair warns when, in ``[now - window, now)``: count ≥ ``min_count``, count ≥
    ``multiplier`` × expected, and P(Poisson(expected) ≥ count) ≤ ``max_p_value``, where
    expected = max(baseline count × window / baseline, ``baseline_floor``). Pairs with a
    warning in the last ``cooldown`` are skipped (the hotspot is already being handled).
    """
    ws = now - rule.window
    bs = ws - rule.baseline
    rows = await (await conn.execute(_HOTSPOT_SQL, {
        "bs": bs, "ws": ws, "now": now, "hot": HOTSPOT_PREFIX + "%",
        "excl": list(rule.exclude_outcomes), "min": rule.min_count})).fetchall()
    if not rows:
        return []
    recent = {
        (d, s, c) for d, s, c in await (await conn.execute(
            """SELECT district, street, category FROM hotspot_warnings
                WHERE detected_at > %s AND detected_at <= %s""",
            (now - rule.cooldown, now))).fetchall()
    }
    ratio = rule.window / rule.baseline
    found = []
    for district, street, category, n, b in rows:
        if (district, street, category) in recent:
            continue
        expected = max(b * ratio, rule.baseline_floor)
        if n < rule.multiplier * expected:
            continue
        p = poisson_tail(n, expected)
        if p > rule.max_p_value:
            continue
        found.append(Hotspot(warning_id_for(district, street, category, now), district,
                             street, category, ws, now, int(n), round(expected, 4),
                             round(n / expected, 4), p))
    found.sort(key=lambda h: (-h.score, h.street, h.category))
    return found


_POINT_SQL = """
SELECT category, cy, cx, district, street,
       count(*) FILTER (WHERE filed_at >= %(ws)s) AS n,
       count(*) FILTER (WHERE filed_at < %(ws)s) AS b,
       coalesce(sum(latitude) FILTER (WHERE filed_at >= %(ws)s), 0) AS lat_sum,
       coalesce(sum(longitude) FILTER (WHERE filed_at >= %(ws)s), 0) AS lon_sum
  FROM (SELECT category, district, street, filed_at, latitude, longitude,
               floor(latitude / %(dlat)s)::bigint AS cy,
               floor(longitude * cos(radians((floor(latitude / %(dlat)s) + 0.5) * %(dlat)s))
                     / %(dlat)s)::bigint AS cx
          FROM cases
         WHERE filed_at >= %(bs)s AND filed_at < %(now)s
           AND latitude IS NOT NULL AND longitude IS NOT NULL
           AND street IS NOT NULL AND category IS NOT NULL
           AND complaint_id NOT LIKE %(hot)s
           AND NOT (coalesce(outcome, '') = ANY(%(excl)s))) located
 GROUP BY category, cy, cx, district, street
"""

_METRES_PER_DEGREE = 111_320.0


@dataclass
class _Cell:
    n: int = 0
    b: int = 0
    lat_sum: float = 0.0
    lon_sum: float = 0.0
    streets: dict[tuple[str | None, str], int] = field(default_factory=dict)


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance: exact enough at the scale of a street."""
    dy = (lat2 - lat1) * _METRES_PER_DEGREE
    dx = (lon2 - lon1) * _METRES_PER_DEGREE * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(dx, dy)


async def _detect_point_hotspots(conn: AsyncConnection[Any], now: datetime,
                                 rule: HotspotRule, points: PointRule,
                                 covered: set[tuple[str | None, str, str]]) -> list[Hotspot]:
    """Category × neighbourhood (a grid cell and its eight neighbours) far above baseline.

    The same test as for streets, on the neighbourhood's own history. Neighbourhoods
    overlap, so one cluster lights up several: the strongest wins, and any other within
    two cells of a warning (now or within the cooldown) is the same cluster.
    """
    ws = now - rule.window
    bs = ws - rule.baseline
    dlat = points.cell_m / _METRES_PER_DEGREE
    rows = await (await conn.execute(_POINT_SQL, {
        "bs": bs, "ws": ws, "now": now, "dlat": dlat, "hot": HOTSPOT_PREFIX + "%",
        "excl": list(rule.exclude_outcomes)})).fetchall()
    cells: dict[tuple[str, int, int], _Cell] = {}
    for category, cy, cx, district, street, n, b, lat_sum, lon_sum in rows:
        cell = cells.setdefault((category, cy, cx), _Cell())
        cell.n += n
        cell.b += b
        cell.lat_sum += lat_sum
        cell.lon_sum += lon_sum
        if n:
            cell.streets[(district, street)] = cell.streets.get((district, street), 0) + n
    ratio = rule.window / rule.baseline
    candidates: list[tuple[float, str, int, int, _Cell]] = []
    for (category, cy, cx), centre in cells.items():
        if not centre.n:
            continue
        hood = _Cell()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                other = cells.get((category, cy + dy, cx + dx))
                if other is None:
                    continue
                hood.n += other.n
                hood.b += other.b
                hood.lat_sum += other.lat_sum
                hood.lon_sum += other.lon_sum
                for place, k in other.streets.items():
                    hood.streets[place] = hood.streets.get(place, 0) + k
        if hood.n < points.min_count:
            continue
        expected = max(hood.b * ratio, rule.baseline_floor)
        if hood.n < rule.multiplier * expected:
            continue
        if poisson_tail(hood.n, expected) > points.max_p_value:
            continue
        candidates.append((hood.n / expected, category, cy, cx, hood))
    if not candidates:
        return []
    recent = [
        (c, lat, lon) for c, lat, lon in await (await conn.execute(
            """SELECT category, latitude, longitude FROM hotspot_warnings
                WHERE detected_at > %s AND detected_at <= %s AND latitude IS NOT NULL""",
            (now - rule.cooldown, now))).fetchall()
    ]
    street_recent = {
        (d, s, c) for d, s, c in await (await conn.execute(
            """SELECT district, street, category FROM hotspot_warnings
                WHERE detected_at > %s AND detected_at <= %s""",
            (now - rule.cooldown, now))).fetchall()
    } | covered
    same_cluster_m = 2 * points.cell_m * math.sqrt(2)
    found: list[Hotspot] = []
    for score, category, cy, cx, hood in sorted(candidates, key=lambda c: -c[0]):
        lat, lon = hood.lat_sum / hood.n, hood.lon_sum / hood.n
        if any(c == category and _metres(lat, lon, la, lo) <= same_cluster_m
               for c, la, lo in recent):
            continue
        (district, street), _ = max(hood.streets.items(), key=lambda kv: (kv[1], kv[0][1]))
        if (district, street, category) in street_recent:
            continue
        expected = max(hood.b * ratio, rule.baseline_floor)
        found.append(Hotspot(
            warning_id_for(district, street, category, now, f"{cy}:{cx}"), district, street,
            category, ws, now, hood.n, round(expected, 4), round(score, 4),
            poisson_tail(hood.n, expected), round(lat, 6), round(lon, 6)))
        recent.append((category, lat, lon))
    return found


async def record_hotspots(conn: AsyncConnection[Any], hotspots: Sequence[Hotspot],
                          now: datetime) -> None:
    """Store warnings (a repeated scan of the same hour writes nothing new)."""
    async with conn.transaction():
        for h in hotspots:
            await conn.execute(
                """INSERT INTO hotspot_warnings (warning_id, district, street, category,
                       window_start, window_end, count, baseline, score, detected_at,
                       latitude, longitude)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (warning_id) DO NOTHING""",
                (h.warning_id, h.district, h.street, h.category, h.window_start,
                 h.window_end, h.count, h.baseline, h.score, now, h.latitude,
                 h.longitude))


async def scan_and_record(conn: AsyncConnection[Any], now: datetime,
                          rule: HotspotRule) -> list[Hotspot]:
    """One scan: detect, then store; returns the new warnings."""
    found = await detect_hotspots(conn, now, rule)
    await record_hotspots(conn, found, now)
    return found


def hotspot_record(h: Hotspot, at: datetime) -> dict[str, Any]:
    return {
        "event_id": f"hotspot:{h.warning_id}", "warning_id": h.warning_id, "at": at,
        "district": h.district, "street": h.street, "category": h.category,
        "window_start": h.window_start, "window_end": h.window_end, "count": h.count,
        "baseline": h.baseline, "score": h.score, "latitude": h.latitude,
        "longitude": h.longitude,
    }


def governance_filing(h: Hotspot, category_name: str, at: datetime) -> Filing:
    """The proactive governance task for a warning, filed like a complaint (channel OTHER)."""
    hours = int((h.window_end - h.window_start).total_seconds() // 3600)
    near = (f"（{h.latitude:.5f}, {h.longitude:.5f} 附近）"
            if h.latitude is not None and h.longitude is not None else "")
    content = (
        f"【未诉先办·热点预警 {h.warning_id}】{h.district or ''}{h.street}{near}近{hours}小时内"
        f"“{category_name}”类诉求{h.count}件，为{'该处' if near else '该街乡'}以往同期水平"
        f"（约{h.baseline:.1f}件）的"
        f"{h.score:.1f}倍。请属地主动排查成因、集中治理，并报告处置结果。"
    )
    return Filing(
        event_id=f"hotspot:{h.warning_id}", complaint_id=h.complaint_id, filed_at=at,
        channel="OTHER", content=content, kind="REPORT", anonymous=True,
        district=h.district, street=h.street, category_hint=h.category,
        latitude=h.latitude, longitude=h.longitude,
    )


# --- activities -------------------------------------------------------------------------


class Publisher(Protocol):
    def publish(self, messages: Sequence[tuple[str, str, str, dict[str, Any]]]) -> None: ...


class GovernanceActivities:
    """The governance activities, with their dependencies injected."""

    def __init__(self, config: HotlineConfig, governance: GovernanceConfig,
                 pool: AsyncConnectionPool, publisher: Publisher, *, topic_governance: str,
                 client: Client | None = None, task_queue: str = "hotline-cases") -> None:
        self._config = config
        self._gov = governance
        self._pool = pool
        self._publisher = publisher
        self._topic = topic_governance
        self._client = client
        self._task_queue = task_queue

    def all(self) -> list[Any]:
        """Every activity of this class, for ``Worker(activities=...)``."""
        return [self.compute_monthly_rankings, self.compute_monthly_topics,
                self.scan_hotspots, self.open_governance_case, self.topic_volume]

    @activity.defn(name="topic_volume")
    async def topic_volume(self, request: TopicVolumeRequest) -> int:
        """Complaints of a category filed in [start, end) (a plan's half-monthly review)."""
        async with self._pool.connection() as conn:
            row = await (await conn.execute(
                """SELECT count(*) FROM cases WHERE category = %s AND filed_at >= %s
                      AND filed_at < %s AND complaint_id NOT LIKE %s""",
                (request.category, request.start, request.end,
                 HOTSPOT_PREFIX + "%"))).fetchone()
        return int(row[0]) if row else 0

    def _month(self, request: MonthRequest) -> str:
        if request.month:
            month_bounds(request.month, self._gov.tz)  # validates YYYY-MM
            return request.month
        return previous_month(request.at or datetime.now(UTC), self._gov.tz)

    @activity.defn(name="compute_monthly_rankings")
    async def compute_monthly_rankings(self, request: MonthRequest) -> RankingSummary:
        """Rank the month's units, store and publish ``MonthlyRanking`` per group."""
        request = MonthRequest(self._month(request))
        weights = self._config.rules.weights.model_dump()
        async with self._pool.connection() as conn:
            rankings = await compute_rankings(conn, request.month, self._gov.tz, weights,
                                              RegistryDirectory(self._config))
            await store_rankings(conn, request.month, rankings)
        at = datetime.now(UTC)
        messages = [(self._topic, f"ranking:{group}", "MonthlyRanking",
                     ranking_record(request.month, group, rows, at))
                    for group, rows in rankings.items()]
        if messages:
            await asyncio.to_thread(self._publisher.publish, messages)
        log.info("monthly rankings", month=request.month,
                 groups={g: len(r) for g, r in rankings.items()})
        return RankingSummary(request.month, {g: len(r) for g, r in rankings.items()},
                              len(messages))

    @activity.defn(name="compute_monthly_topics")
    async def compute_monthly_topics(self, request: MonthRequest) -> list[str]:
        """Store the month's 每月一题 candidates; returns their categories in rank order."""
        request = MonthRequest(self._month(request))
        async with self._pool.connection() as conn:
            rows = await topic_candidates(conn, request.month, self._gov)
            await store_topic_candidates(conn, request.month, rows)
        return [t.category for t in rows]

    @activity.defn(name="scan_hotspots")
    async def scan_hotspots(self, request: ScanRequest) -> list[HotspotRef]:
        """Detect, store and publish the hotspot warnings as of ``request.now``.

        Repeats are safe: the warning id comes from the scan hour, so a retry stores
        nothing new and republishes under the same event ids.
        """
        async with self._pool.connection() as conn:
            found = await detect_hotspots(conn, request.now, self._gov.hotspots)
            await record_hotspots(conn, found, request.now)
            # A retry after the insert finds the pair in cooldown: republish what is stored.
            rows = await (await conn.execute(
                """SELECT warning_id FROM hotspot_warnings WHERE detected_at = %s""",
                (request.now,))).fetchall()
            ids = {r[0] for r in rows}
            stored = await _load_hotspots(conn, sorted(ids))
        if stored:
            await asyncio.to_thread(self._publisher.publish, [
                (self._topic, h.street, "HotspotWarning", hotspot_record(h, request.now))
                for h in stored])
        for h in stored:
            log.info("hotspot warning", warning_id=h.warning_id, street=h.street,
                     category=h.category, count=h.count, baseline=h.baseline)
        return [HotspotRef(h.warning_id, h.street, h.category, h.count) for h in stored]

    @activity.defn(name="open_governance_case")
    async def open_governance_case(self, ref: HotspotRef) -> GovernanceCaseResult:
        """Start the warning's governance task as a ``ComplaintWorkflow`` (REJECT_DUPLICATE)."""
        if self._client is None:
            raise RuntimeError("open_governance_case needs a Temporal client")
        async with self._pool.connection() as conn:
            (h,) = await _load_hotspots(conn, [ref.warning_id])
        cat = self._config.lexicon.category(h.category)
        filing = governance_filing(h, cat.name if cat else h.category, h.window_end)
        started = True
        try:
            await self._client.start_workflow(
                "ComplaintWorkflow", filing, id=complaint_workflow_id(filing.complaint_id),
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        except WorkflowAlreadyStartedError:
            started = False  # a retry: the case exists, which is the effect we want
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE hotspot_warnings SET complaint_id = %s WHERE warning_id = %s",
                (filing.complaint_id, h.warning_id))
        return GovernanceCaseResult(h.warning_id, filing.complaint_id, started)


async def _load_hotspots(conn: AsyncConnection[Any], ids: Sequence[str]) -> list[Hotspot]:
    rows = await (await conn.execute(
        """SELECT warning_id, district, street, category, window_start, window_end, count,
                  baseline, score, latitude, longitude FROM hotspot_warnings
            WHERE warning_id = ANY(%s) ORDER BY warning_id""", (list(ids),))).fetchall()
    return [Hotspot(warning_id=r[0], district=r[1], street=r[2], category=r[3],
                    window_start=r[4], window_end=r[5], count=r[6], baseline=r[7],
                    score=r[8], latitude=r[9], longitude=r[10]) for r in rows]
