"""The demo's simulated city: deterministic, realistic and true to the lexicon and registry."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.validation import validate

from activities.classify import classify, locate
from activities.config import load_config
from workers.demo_city import (
    ANSWERED_DIRECTLY,
    DISPATCH,
    REDIRECTED,
    TEMPLATES,
    UNSATISFIED,
    DemoCase,
    generate_city,
    load_streets,
)
from workers.settings import REPO_ROOT, Settings

CONFIG = load_config(Settings().config_dir)
SCHEMAS = REPO_ROOT / "schemas"
ID_FORMAT = re.compile(r"^BJ\d{8}-\d{6,}$")


def _city(cases: int, seed: int = 12345) -> list[DemoCase]:
    return generate_city(cases, seed=seed)


def _complaint_filed_schema() -> dict[str, Any]:
    named: dict = {}
    pending = [json.loads(p.read_text()) for p in sorted(SCHEMAS.glob("*.avsc"))]
    # Parse named types until every reference resolves (enums first, then records).
    while pending:
        left = []
        for schema in pending:
            try:
                fastavro.parse_schema(schema, named_schemas=named)
            except fastavro.schema.UnknownType:
                left.append(schema)
        if len(left) == len(pending):
            raise AssertionError(f"unresolvable schemas: {[s['name'] for s in left]}")
        pending = left
    parsed = fastavro.parse_schema(
        json.loads((SCHEMAS / "hotline.events.ComplaintFiled.avsc").read_text()),
        named_schemas=named,
    )
    assert isinstance(parsed, dict)
    return parsed


def test_same_seed_same_city_other_seed_other_city() -> None:
    assert _city(100, seed=7) == _city(100, seed=7)
    a, b = _city(100, seed=7), _city(100, seed=8)
    assert [c.filing["content"] for c in a] != [c.filing["content"] for c in b]


def test_at_least_25_distinct_templates_with_slots() -> None:
    keys = [t.key for t in TEMPLATES]
    assert len(set(keys)) == len(keys) >= 25
    assert len({t.text for t in TEMPLATES}) == len(TEMPLATES)
    assert sum("{" in t.text for t in TEMPLATES) >= 25
    contents = [c.filing["content"] for c in _city(100)]
    assert len(set(contents)) >= 95, "slots should make nearly every text different"


@pytest.mark.parametrize("seed", [1, 2, 3, 12345])
def test_every_category_of_the_lexicon_appears_in_100_cases(seed: int) -> None:
    city = _city(100, seed)
    wanted = {c.code for c in CONFIG.lexicon.categories}
    declared = {c.plan.category for c in city if c.plan.expected_outcome == DISPATCH}
    classified = {
        classify(CONFIG.lexicon, c.filing["content"]).category.code
        for c in city if c.plan.expected_outcome == DISPATCH
    }
    assert declared == wanted
    assert classified == wanted
    # ... and each category's keywords appear in some text (the fallback has none).
    texts = "".join(c.filing["content"] for c in city)
    for cat in CONFIG.lexicon.categories:
        assert not cat.keywords or any(k in texts for k in cat.keywords), cat.code


@pytest.mark.parametrize("seed", range(8))
def test_the_classifier_reads_each_text_as_its_template_intends(seed: int) -> None:
    for case in _city(300, seed):
        plan, text = case.plan, case.filing["content"]
        result = classify(CONFIG.lexicon, text)
        assert not result.unreasonable, text
        assert (result.redirect_to is not None) == (plan.expected_outcome == REDIRECTED), text
        if plan.expected_outcome == DISPATCH:
            assert result.category.code == plan.category, (plan.template, text)
            assert result.emergency == plan.emergency, (plan.template, text)
            assert (result.tier == "T2H") == plan.emergency, text


def test_all_16_districts_in_200_cases_weighted_to_the_big_ones() -> None:
    counts = Counter(c.filing["district"] for c in _city(200))
    assert len(counts) == 16
    assert counts["朝阳区"] > counts["延庆区"]
    assert counts.most_common(2)[0][0] in {"朝阳区", "海淀区"}


def test_streets_are_real_units_of_their_district() -> None:
    units = {d: {s.name for s in streets} for d, streets in load_streets().items()}
    city = _city(300)
    named = [c.filing for c in city if c.filing["street"] is not None]
    assert len(named) > 200
    for filing in named:
        assert filing["street"] in units[filing["district"]], filing
        assert filing["district"] in filing["address"]


def test_some_callers_give_only_an_address_that_still_locates_the_street() -> None:
    by_name = {(s.district, s.name): s for ss in load_streets().values() for s in ss}
    street_less = [
        c for c in _city(400)
        if c.filing["street"] is None and c.plan.expected_outcome == DISPATCH
    ]
    assert 0.05 < len(street_less) / 400 < 0.25
    located = 0
    for case in street_less:
        f = case.filing
        assert f["address"], f
        loc = locate(CONFIG.registry, f["district"], None, f["address"], f["content"])
        assert loc.district == f["district"]
        unit = CONFIG.registry.get(loc.street_id) if loc.street_id else None
        if unit is not None:
            assert (unit.district, unit.name) in by_name
            located += 1
    assert located / len(street_less) > 0.8


def test_complaint_and_event_ids_are_unique_and_well_formed() -> None:
    city = _city(500)
    ids = [c.filing["complaint_id"] for c in city]
    assert len(set(ids)) == len(ids)
    assert all(ID_FORMAT.match(i) for i in ids)
    assert len({c.filing["event_id"] for c in city}) == len(city)
    assert [c.plan.complaint_id for c in city] == ids
    later = generate_city(10, seed=12345, serial_base=600)
    assert not {c.filing["complaint_id"] for c in later} & set(ids)


@pytest.mark.parametrize("cases", [100, 500])
def test_answered_directly_share_is_about_8_percent(cases: int) -> None:
    city = _city(cases)
    answered = [c for c in city if c.filing["answered_directly"]]
    assert 0.05 <= len(answered) / cases <= 0.12
    for case in answered:
        assert case.plan.expected_outcome == ANSWERED_DIRECTLY
        assert case.filing["kind"] == "CONSULTATION"
        assert case.filing["channel"] == "PHONE"


def test_a_couple_of_emergencies_and_one_redirect() -> None:
    city = _city(100)
    emergencies = [c for c in city if c.plan.emergency]
    assert 2 <= len(emergencies) <= 5
    texts = "".join(c.filing["content"] for c in emergencies)
    assert "停水" in texts and "停电" in texts and "电梯困人" in texts
    assert sum(c.plan.expected_outcome == REDIRECTED for c in city) == 1


def test_channel_mix_and_personal_data_are_plausible() -> None:
    city = _city(500)
    channels = Counter(c.filing["channel"] for c in city)
    assert set(channels) == {"PHONE", "APP", "WECHAT", "WEB", "MINI_PROGRAM"}
    assert channels["PHONE"] == max(channels.values())
    assert all(re.fullmatch(r"1380000\d{4}", c.filing["caller_phone"]) for c in city)
    anonymous = [c.filing for c in city if c.filing["anonymous"]]
    assert 0.03 < len(anonymous) / len(city) < 0.2
    assert all(f["caller_name"] is None for f in anonymous)


def test_filings_are_valid_complaint_filed_records_in_filing_order() -> None:
    schema = _complaint_filed_schema()
    city = _city(120)
    field_names = {f["name"] for f in schema["fields"]}
    for case in city:
        assert set(case.filing) == field_names
        assert validate(case.filing, schema, raise_errors=True)
        assert case.filing["filed_at"].tzinfo is not None
    offsets = [c.offset_seconds for c in city]
    assert offsets == sorted(offsets)
    assert 20 <= offsets[-1] <= 40, "about 20-40 s of filing for a 100-case demo"
    times = [c.filing["filed_at"] for c in city]
    assert times == sorted(times) and times[0] >= datetime(2026, 1, 1, tzinfo=UTC)


def test_unit_and_callback_behaviour_follows_the_plan_mix() -> None:
    plans = [c.plan for c in _city(3000, seed=99)]
    n = len(plans)
    sign_missed = sum(p.handling.sign_fraction > 1 for p in plans) / n
    late = sum(p.handling.complete_fraction > 1 for p in plans) / n
    assert 0.03 < sign_missed < 0.07
    assert 0.06 < late < 0.10
    on_time = [p.handling for p in plans if p.handling.complete_fraction <= 1]
    assert all(0.2 <= h.complete_fraction <= 0.7 for h in on_time)
    assert all(0.1 <= p.handling.sign_fraction <= 0.6 or p.handling.sign_fraction > 1
               for p in plans)
    for p in plans:
        h = p.handling
        if h.progress_fraction is not None:
            assert h.progress_fraction < h.complete_fraction
    results = Counter(p.handling.result for p in plans)
    assert results["RESOLVED"] / n > 0.75 and results["NOT_RESOLVABLE"] > 0

    sat = Counter(p.callback.satisfaction for p in plans)
    happy = (sat["SATISFIED"] + sat["BASICALLY_SATISFIED"]) / n
    assert 0.82 < happy < 0.93
    assert 0.07 < sat[UNSATISFIED] / n < 0.14
    unreached_first = sum(p.callback.unreached_attempts > 0 for p in plans) / n
    assert 0.03 < unreached_first < 0.07
    assert all(not p.callback.resolved for p in plans if p.callback.satisfaction == UNSATISFIED)
    # A reopened case is handled on time and the citizen is reached.
    assert all(p.reopen_handling.complete_fraction <= 1 for p in plans)
    assert all(p.reopen_callback.unreached_attempts == 0 for p in plans)


def test_small_runs_still_work(tmp_path: Path) -> None:
    for cases in (1, 3, 12, 30):
        city = generate_city(cases, seed=5)
        assert len(city) == cases
        assert len({c.filing["complaint_id"] for c in city}) == cases
    with pytest.raises(ValueError):
        generate_city(0)
