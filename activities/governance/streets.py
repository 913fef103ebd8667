"""Priority streets (治理类街乡镇): the month's streets by complaint volume."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from activities.governance.config import GovernanceConfig, place_key
from activities.governance.hotspots import HOTSPOT_PREFIX
from activities.governance.months import month_bounds


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
        pop = cfg.population.get(place_key(district, street))
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
