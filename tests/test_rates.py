"""One definition of the three rates (DESIGN.md "Callback and evaluation"), used alike by
the rankings, the monthly report and the demo summary.

The case that split them (issue 29): a unit with three counted cases, two citizens
satisfied and one never reached. Satisfaction is 2 of the 2 reached, not 2 of 3.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from activities.governance import RegistryDirectory, compute_rankings
from activities.governance.rates import RATE_COUNTS_SQL, ThreeRates
from tests.live import stack_settings
from workers.devstack.stack import ensure_database
from workers.reports.monthly import collect_monthly, load_configs
from workers.runtime.migrate import apply_migrations
from workers.runtime.settings import Settings

WEIGHTS = {"response": 0.1, "resolution": 0.45, "satisfaction": 0.45}
UNIT = "110105026"  # 望京街道
# (responded, resolved, satisfied, satisfaction); the last citizen was never reached.
CASES = [(True, True, True, "SATISFIED"), (True, True, True, "BASICALLY_SATISFIED"),
         (True, False, False, None)]


def test_an_unreached_citizen_is_neither_satisfied_nor_unsatisfied() -> None:
    rates = ThreeRates(counted=3, responded=3, resolved=2, reached=2, satisfied=2)
    assert (rates.response, rates.resolution, rates.satisfaction) == (1.0, 2 / 3, 1.0)
    assert rates.score(WEIGHTS) == pytest.approx(100 * (0.1 + 0.45 * 2 / 3 + 0.45))
    assert ThreeRates(0, 0, 0, 0, 0).satisfaction == 0.0


@pytest.mark.stack
async def test_rankings_report_and_demo_give_the_same_rates() -> None:
    stack_settings()
    s = Settings(postgres_db=f"rates_{uuid.uuid4().hex[:8]}")
    ensure_database(s, s.postgres_db)
    apply_migrations(s.dsn)
    at = datetime(2026, 11, 15, 4, tzinfo=UTC)
    async with await psycopg.AsyncConnection.connect(s.dsn) as conn:
        for i, (responded, resolved, satisfied, satisfaction) in enumerate(CASES):
            await conn.execute(
                """INSERT INTO evaluations (complaint_id, lead_unit_id, counted, responded,
                       resolved, satisfied, satisfaction, overdue, returns, escalations,
                       reopens, score, evaluated_at)
                   VALUES (%s, %s, true, %s, %s, %s, %s, false, 0, 0, 0, 0, %s)""",
                (f"RATES-{i}", UNIT, responded, resolved, satisfied, satisfaction, at))
        await conn.commit()
        config, gov = load_configs(s)
        rankings = await compute_rankings(conn, "2026-11", gov.tz, WEIGHTS,
                                          RegistryDirectory(config))
        # The demo summary's query: the same counts over the run's cases.
        demo = ThreeRates(*(await (await conn.execute(
            f"SELECT {RATE_COUNTS_SQL} FROM evaluations WHERE complaint_id = ANY(%s)",
            ([f"RATES-{i}" for i in range(len(CASES))],))).fetchone() or ()))
    [row] = [r for rows in rankings.values() for r in rows if r.unit_id == UNIT]
    report = await collect_monthly(s, "2026-11")
    assert (row.response_rate, row.resolution_rate, row.satisfaction_rate) == (
        1.0, 2 / 3, 1.0)
    assert report.totals["satisfaction_rate"] == row.satisfaction_rate
    assert report.totals["response_rate"] == row.response_rate
    assert report.totals["resolution_rate"] == row.resolution_rate
    assert (demo.response, demo.resolution, demo.satisfaction) == (1.0, 2 / 3, 1.0)
