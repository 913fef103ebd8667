"""``GET requests`` query time on a large ledger (not a timed test).

Fills a scratch database on the local stack's PostgreSQL with ``--cases`` ledger cases
(three in ten closed, one in five about lifts, one every 20 s going back), then times the
service's page query (:class:`workers.open311.ledger.RequestQuery`) for the default page (the
last 90 days, newest first), a deep page of closed cases, a service-code filter and an id
list, and prints the median of ``--repeat`` runs of each, then the same without the
``cases (filed_at, complaint_id)`` index of migration 008 (dropped for the second half).
The database is dropped after.

    source /work/briefs/env-<name>.sh   # or the default ports
    .venv/bin/python bench/bench_open311_requests.py [--cases 300000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql as pgsql

from workers.open311.ledger import RequestQuery
from workers.runtime.migrate import admin_dsn, apply_migrations, ensure_database
from workers.runtime.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    settings = Settings(postgres_db=f"bench_open311_{uuid.uuid4().hex[:8]}")
    ensure_database(settings, settings.postgres_db)
    try:
        apply_migrations(settings.dsn)
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            conn.execute(
                """INSERT INTO cases (complaint_id, version, status, outcome, channel,
                       category, tier, district, street, lead_unit_id, filed_at, due_at)
                   SELECT 'C' || g, 3, CASE WHEN g %% 10 < 3 THEN 'CLOSED' ELSE 'DISPATCHED' END,
                          'DISPATCH', 'PHONE',
                          CASE WHEN g %% 5 = 0 THEN 'housing.lift' ELSE 'order.noise' END,
                          'T24H', '朝阳区', '望京街道', '110105026',
                          now() - make_interval(secs => g * 20), now() + interval '1 day'
                     FROM generate_series(1, %s) g""", (args.cases,))
            conn.execute(
                """INSERT INTO case_events (event_id, complaint_id, seq, at, event_type, status)
                   SELECT 'e' || g, 'C' || g, 1, now(), 'ACCEPTED', 'ACCEPTED'
                     FROM generate_series(1, %s) g""", (args.cases,))
            conn.execute("ANALYZE")
            window = datetime.now(UTC) - timedelta(days=90)
            queries = {
                "default page (90 days, newest first)": RequestQuery(start=window),
                "closed, page 50": RequestQuery(start=window, statuses=("closed",), page=50),
                "housing.lift, open": RequestQuery(start=window, statuses=("open",),
                                                   service_codes=("housing.lift",)),
                "two ids": RequestQuery(ids=("C5", "C77")),
            }
            print(f"{args.cases:,} ledger cases; median of {args.repeat} runs")
            def median_ms(sql: str, params: list[object]) -> tuple[int, float]:
                times, rows = [], []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    rows = conn.execute(sql.encode(), params).fetchall()
                    times.append(time.perf_counter() - started)
                return len(rows), statistics.median(times) * 1000

            indexed = {name: median_ms(*q.sql()) for name, q in queries.items()}
            conn.execute("DROP INDEX cases_filed_at_idx")
            conn.execute("ANALYZE cases")
            bare = {name: median_ms(*q.sql()) for name, q in queries.items()}
            print(f"  {'query':38s} {'rows':>4s}  {'indexed':>9s}  {'no index':>9s}  ratio")
            for name in queries:
                (rows, ms), (_, ms_bare) = indexed[name], bare[name]
                print(f"  {name:38s} {rows:4d}  {ms:6.1f} ms  {ms_bare:6.1f} ms  "
                      f"{ms_bare / ms:5.0f}x")
    finally:
        with psycopg.connect(admin_dsn(settings), autocommit=True) as admin:
            admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {}").format(
                pgsql.Identifier(settings.postgres_db)))


if __name__ == "__main__":
    main()
