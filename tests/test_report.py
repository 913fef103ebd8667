"""``hotline report monthly``: HTML with charts and a CSV beside it, from the ledger."""

from __future__ import annotations

import asyncio
import csv
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from typer.testing import CliRunner

from schemas import codec
from tests.test_governance import MONTH, Msg, generate_events
from workers.cli.governance import app
from workers.devstack.stack import ensure_database
from workers.projector.main import Projector
from workers.reports.charts import svg_bars, svg_lines
from workers.runtime.migrate import apply_migrations
from workers.runtime.settings import Settings, get_settings


def test_svg_charts_are_plain_svg() -> None:
    bars = svg_bars([("望京街道", 91.5), ("<b>", 10.0)], max_value=100)
    assert bars.startswith("<svg") and "望京街道" in bars and "&lt;b&gt;" in bars
    lines = svg_lines(["2026-08", "2026-09"], [("response", [0.9, 1.0])], percent=True)
    assert "<polyline" in lines and "response" in lines
    assert "No data" in svg_bars([])


@pytest_asyncio.fixture(scope="module")
async def ledger_db() -> AsyncIterator[Settings]:
    s = Settings(postgres_db=f"rep_{uuid.uuid4().hex[:8]}")
    await asyncio.to_thread(ensure_database, s, s.postgres_db)
    await asyncio.to_thread(apply_migrations, s.dsn)
    events = generate_events(seed=7)
    msgs = [Msg("t", 0, i, None, codec.encode("LifecycleEvent", ev))
            for i, ev in enumerate(events)]
    async with await psycopg.AsyncConnection.connect(s.dsn) as conn:
        await Projector(None, "test").apply_batch(conn, msgs)
        await conn.execute(
            """INSERT INTO hotspot_warnings (warning_id, district, street, category,
                   window_start, window_end, count, baseline, score, detected_at,
                   complaint_id)
               VALUES ('w1', '朝阳区', '望京街道', 'order.vendors', %s, %s, 21, 1.5, 14,
                       %s, 'HOT-w1')""",
            (datetime(2026, 9, 9, tzinfo=UTC), datetime(2026, 9, 12, tzinfo=UTC),
             datetime(2026, 9, 12, tzinfo=UTC)))
        await conn.commit()
    yield s


@pytest.mark.stack
def test_report_monthly_writes_html_and_csv(ledger_db: Settings, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_POSTGRES_DB", ledger_db.postgres_db)
    monkeypatch.setenv("HOTLINE_STATE_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["report", "monthly", "--month", MONTH])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    html_path = tmp_path / "reports" / f"monthly-{MONTH}.html"
    csv_path = tmp_path / "reports" / f"monthly-{MONTH}.csv"
    assert str(html_path) in result.output.replace("\n", "")
    page = html_path.read_text(encoding="utf-8")
    for section in ("id='summary'", "id='rankings'", "id='rates'", "id='priority-streets'",
                    "id='topics'", "id='hotspots'"):
        assert section in page
    assert page.count("<svg") >= 5  # two ranking bars, rates, streets, topic trend
    assert "望京街道" in page and "HOT-w1" in page
    with csv_path.open(encoding="utf-8") as fh:
        rows: list[dict[str, Any]] = list(csv.DictReader(fh))
    sections = {r["section"] for r in rows}
    assert sections == {"ranking", "three_rates", "priority_street", "topic_candidate",
                        "topic_trend", "hotspot"}
    rank_rows = [r for r in rows if r["section"] == "ranking"]
    assert {r["group"] for r in rank_rows} == {"streets", "departments"}
    assert len(rank_rows) == 8


@pytest.mark.stack
def test_cli_tables(ledger_db: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    monkeypatch.setenv("HOTLINE_POSTGRES_DB", ledger_db.postgres_db)
    monkeypatch.setattr("workers.cli.governance._console", Console(width=200))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        ranks = runner.invoke(app, ["rankings", "--month", MONTH])
        streets = runner.invoke(app, ["priority-streets", "--month", MONTH])
        hot = runner.invoke(app, ["hotspots", "--days", "10000"])
        bad = runner.invoke(app, ["rankings", "--month", "2026-13"])
    finally:
        get_settings.cache_clear()
    assert ranks.exit_code == 0 and "110105026" in ranks.output
    assert streets.exit_code == 0 and "望京街道" in streets.output
    assert hot.exit_code == 0 and "HOT-w1" in hot.output
    assert bad.exit_code != 0
