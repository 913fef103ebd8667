"""Monthly rankings (考评排名) of the units, from the ledger's counted evaluations.

Definitions (DESIGN.md "Callback and evaluation", rules.yaml ``weights``):

- a unit's month is the *counted* evaluations (``counted`` true) whose ``evaluated_at``
  falls in the calendar month (in ``governance.yaml`` ``timezone``), by ``lead_unit_id``;
- the three rates as :mod:`activities.governance.rates` defines them (satisfaction over
  the counted cases whose citizen was reached); score = 100 × the weighted rates;
- praise = PRAISE-kind cases filed in the month, by lead unit;
- ranks: by score, then more cases, then unit id; equal score and cases share a rank.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection

from activities.dispatch.config import HotlineConfig
from activities.dispatch.registry import STREET_KINDS
from activities.governance.months import month_bounds
from activities.governance.rates import RATE_COUNTS_SQL, ThreeRates

GROUP_STREETS = "streets"
GROUP_DEPARTMENTS = "departments"
GROUP_OTHER = "other"


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


_RATES_SQL = f"""
SELECT lead_unit_id, {RATE_COUNTS_SQL}
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
    for unit_id, *counts in rates:
        name, kind = units.describe(unit_id)
        three = ThreeRates(*counts)
        grouped.setdefault(unit_group(kind), []).append(RankingRow(
            0, unit_id, name, three.counted, three.response, three.resolution,
            three.satisfaction, three.score(weights), int(praise.get(unit_id, 0))))
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
