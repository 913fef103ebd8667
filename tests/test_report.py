"""``hotline report monthly``: HTML with charts and a CSV beside it, from the ledger."""

from __future__ import annotations

import asyncio
import csv
import json
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
from workers.cli.main import app as hotline_app
from workers.devstack.stack import ensure_database
from workers.projector.main import Projector
from workers.reports.charts import svg_bars, svg_lines
from workers.reports.monthly import near
from workers.reports.words import MESSAGES, month_label, translator
from workers.runtime.migrate import apply_migrations
from workers.runtime.settings import Settings, get_settings


def test_svg_charts_are_plain_svg() -> None:
    bars = svg_bars([("望京街道", 91.5), ("<b>", 10.0)], max_value=100)
    assert bars.startswith("<svg") and "望京街道" in bars and "&lt;b&gt;" in bars
    lines = svg_lines(["2026-08", "2026-09"], [("response", [0.9, 1.0])], percent=True)
    assert "<polyline" in lines and "response" in lines
    assert "No data" in svg_bars([]) and "暂无数据" in svg_lines([], [], empty="暂无数据。")
    titled = svg_bars([("望京街道", 3.0)], title="诉求量<最多>")
    assert "<title>诉求量&lt;最多&gt;</title>" in titled and "aria-label=" in titled


def test_report_words_cover_both_languages() -> None:
    """Every word has both languages, and an unknown language is refused, not guessed."""
    assert [key for key, (zh, en) in MESSAGES.items() if not zh or zh == en] == []
    assert [key for key, (_, en) in MESSAGES.items() if not en] == ["unit.cases"]
    assert month_label("2026-09", "zh") == "2026年9月" and month_label("2026-09", "en") == "2026-09"
    assert near(39.9, 116.4, "zh") == "（39.90000,116.40000 附近）"
    assert near(39.9, 116.4) == " near 39.90000,116.40000"  # the `hotline hotspots` table
    with pytest.raises(ValueError, match="fr"):
        translator("fr")


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


def _report(ledger_db: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
            *args: str) -> Any:
    monkeypatch.setenv("HOTLINE_POSTGRES_DB", ledger_db.postgres_db)
    monkeypatch.setenv("HOTLINE_STATE_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, ["report", "monthly", "--month", MONTH, *args])
    finally:
        get_settings.cache_clear()


@pytest.mark.stack
def test_report_monthly_writes_html_and_csv(ledger_db: Settings, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    result = _report(ledger_db, monkeypatch, tmp_path)
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
    assert "待处置" in page  # the warning's status, in words
    with csv_path.open(encoding="utf-8") as fh:
        rows: list[dict[str, Any]] = list(csv.DictReader(fh))
    sections = {r["section"] for r in rows}
    assert sections == {"ranking", "three_rates", "priority_street", "topic_candidate",
                        "topic_trend", "hotspot"}
    rank_rows = [r for r in rows if r["section"] == "ranking"]
    assert {r["group"] for r in rank_rows} == {"streets", "departments"}
    assert len(rank_rows) == 8


_ZH_WORDS = ("<html lang='zh-CN'>", "12345 接诉即办月度报告（2026年9月）", "1. 概况", "2. 考评排名",
             "3. 三率趋势", "4. 治理类重点街乡镇", "5. 每月一题候选与话题趋势", "6. 热点预警",
             "<th>响应率</th>", "<th>满意率</th>", "<th>单位编码</th>", "近六个月三率",
             "委办局与公共服务企业", "WenQuanYi Micro Hei")
_EN_WORDS = ("<html lang='en'>", "Hotline monthly report 2026-09", "1. Summary",
             "2. Rankings", "3. Three-rate trends", "<th>response</th>",
             "<th>satisfaction</th>", "<th>unit id</th>", "The three rates over six months",
             "Departments and public-service companies")


@pytest.mark.stack
def test_report_is_chinese_unless_english_is_asked_for(
        ledger_db: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chinese by default, English on ``--lang en``; the CSV is the same either way (its keys
    are read by scripts)."""
    assert MONTH == "2026-09"
    zh, en = tmp_path / "zh", tmp_path / "en"
    written = {}
    for folder, args in ((zh, ()), (en, ("--lang", "en"))):
        result = _report(ledger_db, monkeypatch, tmp_path, "--out", str(folder), "--json",
                         *args)
        assert result.exit_code == 0, result.output
        written[folder] = json.loads(result.output)
    assert written[zh]["lang"] == "zh" and written[en]["lang"] == "en"
    zh_page = (zh / f"monthly-{MONTH}.html").read_text(encoding="utf-8")
    en_page = (en / f"monthly-{MONTH}.html").read_text(encoding="utf-8")
    assert [w for w in _ZH_WORDS if w not in zh_page] == []
    assert [w for w in _EN_WORDS if w not in en_page] == []
    assert [w for w in _EN_WORDS if w in zh_page] == []
    assert [w for w in _ZH_WORDS[:10] if w in en_page] == []
    assert "望京街道" in en_page  # the ledger's names stay as they are
    csv_name = f"monthly-{MONTH}.csv"
    assert (zh / csv_name).read_bytes() == (en / csv_name).read_bytes()


def test_report_in_an_unknown_language_is_a_usage_error(tmp_path: Path) -> None:
    bad = CliRunner().invoke(hotline_app, ["report", "monthly", "--month", "2026-09",
                                           "--out", str(tmp_path / "fr"), "--lang", "fr"])
    assert bad.exit_code == 2, bad.output
    assert "--lang must be one of zh, en, not 'fr'" in bad.stderr
    assert "Traceback" not in bad.output and not (tmp_path / "fr").exists()


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
