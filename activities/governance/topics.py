"""Monthly-topic candidates (每月一题): problem types ranked by volume, growth and spread,
and their volume per half month."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection

from activities.governance.config import GovernanceConfig
from activities.governance.hotspots import HOTSPOT_PREFIX
from activities.governance.months import month_bounds, shift_month


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
