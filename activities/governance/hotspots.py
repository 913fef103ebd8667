"""Hotspot warnings (未诉先办): a street, or a neighbourhood around one point, with far more
complaints of a category than its own history leads to expect; stored in the ledger, and
each turned into a governance case filed like a complaint.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection

from activities.governance.config import HotspotRule, PointRule
from workflows.model import WORKFLOW_VERSION, Filing

# The complaint id prefix of the governance cases opened for warnings: they are not
# complaints, so volumes, topics and hotspot counts leave them out.
HOTSPOT_PREFIX = "HOT-"


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
               floor(longitude * %(coslat)s / %(dlat)s)::bigint AS cx
          FROM cases
         WHERE filed_at >= %(bs)s AND filed_at < %(now)s
           AND latitude IS NOT NULL AND longitude IS NOT NULL
           AND street IS NOT NULL AND category IS NOT NULL
           AND complaint_id NOT LIKE %(hot)s
           AND NOT (coalesce(outcome, '') = ANY(%(excl)s))) located
 GROUP BY category, cy, cx, district, street
"""

_METRES_PER_DEGREE = 111_320.0


def grid_cell(latitude: float, longitude: float, points: PointRule) -> tuple[int, int]:
    """The (row, column) of the grid cell a point falls in; the same as the SQL above.

    Rows are ``cell_m`` of latitude; columns ``cell_m`` of longitude at the reference
    latitude, the same for every row (a column index that followed each row's own
    latitude would shift by more than a cell from one row to the next).
    """
    dlat = points.cell_m / _METRES_PER_DEGREE
    coslat = math.cos(math.radians(points.reference_latitude))
    return math.floor(latitude / dlat), math.floor(longitude * coslat / dlat)


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
        "coslat": math.cos(math.radians(points.reference_latitude)),
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


def governance_filing(h: Hotspot, category_name: str, at: datetime, *,
                      workflow_version: int = WORKFLOW_VERSION) -> Filing:
    """The proactive governance task for a warning, filed like a complaint (channel OTHER),
    started on ``workflow_version`` (``Settings.case_workflow_version``)."""
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
        latitude=h.latitude, longitude=h.longitude, governance=True,
        workflow_version=workflow_version,
    )


async def load_hotspots(conn: AsyncConnection[Any], ids: Sequence[str]) -> list[Hotspot]:
    """The stored warnings with these ids, in id order."""
    rows = await (await conn.execute(
        """SELECT warning_id, district, street, category, window_start, window_end, count,
                  baseline, score, latitude, longitude FROM hotspot_warnings
            WHERE warning_id = ANY(%s) ORDER BY warning_id""", (list(ids),))).fetchall()
    return [Hotspot(warning_id=r[0], district=r[1], street=r[2], category=r[3],
                    window_start=r[4], window_end=r[5], count=r[6], baseline=r[7],
                    score=r[8], latitude=r[9], longitude=r[10]) for r in rows]
