"""The working-day calendar: per-year data, checked against an independent source; a
deadline in an uncovered year is refused at accept (the case waits at the dispatch desk)
and counted for the alert; ``hotline calendar check``.

These tests read deploy/config itself, not the tests' folder with synthetic years.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
import yaml
from prometheus_client import REGISTRY
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from typer.testing import CliRunner

from activities.case import CaseActivities
from activities.dispatch.config import load_config
from activities.dispatch.rules import RulesError, load_rules
from activities.dispatch.workdays import CalendarNotCovered
from tests.workflows.harness import running_harness
from workers.cli.workdays import app as calendar_app
from workflows.model import Acceptance, AcceptRequest, Filing

REAL = Path(__file__).resolve().parent.parent / "deploy" / "config"
CONFIG = load_config(REAL)
CAL = CONFIG.rules.calendar
ZONE = ZoneInfo(CAL.timezone)
UNCOVERED = CAL.covered_years[-1] + 1
T7D_REQUEST = "海淀区中关村街道中关村大街路灯不亮"
T2H_REQUEST = "小区电梯困人，有人被困电梯里"


def _refusals(tier: str, step: str) -> float:
    return REGISTRY.get_sample_value(
        "hotline_calendar_refusals_total", {"tier": tier, "step": step}) or 0.0


def _near_the_end(days_before: int) -> datetime:
    assert CAL.last_day is not None
    return datetime.combine(CAL.last_day - timedelta(days=days_before), time(10), ZONE)


@pytest.mark.parametrize("year", CAL.covered_years)
def test_every_listed_year_matches_the_chinesecalendar_package(year: int) -> None:
    # An independent transcription of the same State Council notices.
    day, wrong = date(year, 1, 1), []
    while day.year == year:
        if CAL.is_workday(day) != chinese_calendar.is_workday(day):
            wrong.append(day)
        day += timedelta(days=1)
    assert wrong == []


def test_each_listed_year_names_its_source() -> None:
    for year, entry in CAL.years.items():
        assert str(year) in entry.source and not entry.synthetic


def test_a_working_day_deadline_into_an_uncovered_year_raises_and_never_guesses() -> None:
    start = _near_the_end(3)
    with pytest.raises(CalendarNotCovered, match=f"does not cover {UNCOVERED}"):
        CONFIG.rules.deadline("T7D", start)
    # Natural-time tiers need no calendar.
    assert CONFIG.rules.deadline("T24H", start) == start + timedelta(hours=24)
    # Provisional (only for a person already told so): the uncovered year's weekdays count.
    due = CONFIG.rules.deadline("T7D", start, provisional=True)
    assert due.year == UNCOVERED and due.weekday() < 5


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c["years"].update({c["years_max"] + 2: {"source": "x"}}), "consecutive"),
    (lambda c: c["years"][c["years_min"]]["holidays"].append(date(1999, 1, 1)),
     "another year"),
    (lambda c: c["years"][c["years_min"]]["extra_workdays"].append(
        date(c["years_min"], 3, 4 + (3 - date(c["years_min"], 3, 4).weekday()) % 7)),
     "Saturday or Sunday"),
    (lambda c: c["years"][c["years_min"]].pop("source"), "source"),
])
def test_a_wrong_calendar_file_is_refused_naming_the_file_and_key(
        tmp_path: Path, change: Any, message: str) -> None:
    for name in ("rules.yaml", "calendar.yaml"):
        (tmp_path / name).write_text((REAL / name).read_text(encoding="utf-8"),
                                     encoding="utf-8")
    data = yaml.safe_load((tmp_path / "calendar.yaml").read_text(encoding="utf-8"))
    change({**data, "years_max": max(data["years"]), "years_min": min(data["years"])})
    (tmp_path / "calendar.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(RulesError) as err:
        load_rules(tmp_path / "rules.yaml")
    assert "calendar.yaml" in str(err.value) and message in str(err.value)


async def _accept(content: str, at: datetime) -> Acceptance:
    acts = CaseActivities(CONFIG, cast(Any, None), cast(Any, None),
                          topic_lifecycle="l", topic_dispatches="d")
    filing = Filing(event_id="e", complaint_id=f"CAL-{at:%Y%m%d}", filed_at=at,
                    channel="PHONE", content=content)
    result = await ActivityEnvironment().run(acts.accept, AcceptRequest(filing, at))
    return cast(Acceptance, result)


async def test_accept_refuses_a_t7d_deadline_in_an_uncovered_year_and_counts_it() -> None:
    before = _refusals("T7D", "accept")
    acc = await _accept(T7D_REQUEST, _near_the_end(3))
    assert acc.tier == "T7D" and acc.outcome == "REVIEW" and acc.lead is None
    assert f"does not cover {UNCOVERED}" in acc.reason
    assert acc.review_reasons[0].startswith("the working-day calendar does not cover")
    assert acc.candidates, "the dispatcher still sees where it would go"
    assert _refusals("T7D", "accept") == before + 1
    # The coverage gauge the alert reads is exported by the same activities.
    assert REGISTRY.get_sample_value("hotline_calendar_coverage_warn_days") == \
        CAL.warn_days_ahead
    assert REGISTRY.get_sample_value("hotline_calendar_coverage_days") == \
        CAL.days_left(datetime.now(ZONE).date())


async def test_inside_the_calendar_and_for_natural_time_tiers_nothing_is_held() -> None:
    before = _refusals("T7D", "accept")
    covered = await _accept(T7D_REQUEST, _near_the_end(40))
    assert covered.outcome == "DISPATCH" and covered.plan.due_at.year == UNCOVERED - 1
    urgent = await _accept(T2H_REQUEST, _near_the_end(0))
    assert urgent.tier == "T2H" and urgent.outcome == "DISPATCH"
    assert _refusals("T7D", "accept") == before


async def test_the_case_waits_at_the_desk_with_the_reason(time_env: WorkflowEnvironment) -> None:
    # Move the server's clock to three days before the calendar ends (it only moves on).
    start = _near_the_end(3)
    now = await time_env.get_current_time()
    if start > now:
        await time_env.sleep(start - now)
    async with running_harness(time_env, config=CONFIG) as harness:
        h = await harness.file(T7D_REQUEST)
        view = await harness.until(h, "REVIEW_REQUESTED")
        assert view.status == "AWAITING_REVIEW" and view.dispatches == []
        [step] = [s for s in harness.recorder.steps if s.complaint_id == view.complaint_id]
        assert f"does not cover {UNCOVERED}" in step.lifecycle[0].attributes["reason"]


runner = CliRunner()


def test_calendar_check_says_how_long_it_still_covers() -> None:
    assert CAL.last_day is not None
    early = (CAL.last_day - timedelta(days=200)).isoformat()
    ok = runner.invoke(calendar_app, ["check", "--config-dir", str(REAL), "--today", early,
                                      "--json"])
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    assert report["status"] == "OK" and report["days_left"] == 200

    late = (CAL.last_day - timedelta(days=25)).isoformat()
    short = runner.invoke(calendar_app, ["check", "--config-dir", str(REAL), "--today", late])
    assert short.exit_code == 1 and "ENDING" in short.stdout and "25 days" in short.stdout


def test_calendar_check_compares_with_the_package() -> None:
    out = runner.invoke(calendar_app, ["check", "--config-dir", str(REAL), "--json",
                                       "--against-package", "--today",
                                       date(CAL.covered_years[0], 1, 1).isoformat()])
    assert out.exit_code == 0, out.output
    assert all(y["package_differences"] == [] for y in json.loads(out.stdout)["years"])


def test_calendar_check_on_a_broken_file_fails_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "calendar.yaml").write_text("years: {2026: {holidays: [not-a-date]}}\n")
    out = runner.invoke(calendar_app, ["check", "--config-dir", str(tmp_path)])
    assert out.exit_code == 4
    assert "calendar.yaml" in out.output and "Traceback" not in out.output
    missing = runner.invoke(calendar_app, ["check", "--config-dir", str(tmp_path / "nope")])
    assert missing.exit_code == 4 and "file not found" in missing.output
