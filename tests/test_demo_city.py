"""The demo's simulated city: deterministic, realistic and true to the lexicon and registry."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.validation import validate

from activities.dispatch.classify import classify
from activities.dispatch.config import load_config
from activities.dispatch.decide import classify_request, decide_route
from activities.dispatch.location import locate
from schemas.codec import decode, encode
from workers.devstack.city import TEMPLATES, generate_city, load_streets
from workers.devstack.city_data import ANSWERED_DIRECTLY, DISPATCH, REDIRECTED, UNSATISFIED
from workers.devstack.city_plans import MERGED, SUPPLEMENT, URGE, WITHDRAW, CasePlan, DemoCase
from workers.devstack.city_rules import LONG_TIERS, WHISTLE_GROUPS
from workers.devstack.demo_board import Board
from workers.devstack.demo_call_centre import citizen_record
from workers.devstack.demo_summary import RULE_ROWS, rules_table
from workers.runtime.settings import REPO_ROOT, Settings

CONFIG = load_config(Settings().config_dir)
DEPARTMENTS = REPO_ROOT / "deploy" / "config" / "beijing_departments.csv"
SCHEMAS = REPO_ROOT / "schemas"
ID_FORMAT = re.compile(r"^BJ\d{8}-\d{6,}$")


def _city(cases: int, seed: int = 12345) -> list[DemoCase]:
    return generate_city(cases, seed=seed, config=CONFIG)


def _rules_of(plan: CasePlan) -> list[str]:
    """The handling rules a plan exercises (a repeat filing's original is not marked)."""
    out = []
    if plan.returns:
        out.append("return")
    if plan.extension:
        out.append("extension")
    if plan.whistle:
        out.append("whistle")
    out += [c.action for c in plan.citizen_calls]
    return out


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
    # An extension case finishes just in time when it gets no more time; the others on
    # time finish within 20-70 % of their deadline.
    on_time = [p.handling for p in plans if p.handling.complete_fraction <= 1
               and p.extension is None]
    assert all(0.2 <= h.complete_fraction <= 0.7 for h in on_time)
    assert all(0.75 <= p.handling.complete_fraction < 1 for p in plans if p.extension)
    assert all(0.1 <= p.handling.sign_fraction <= 0.6 or p.handling.sign_fraction > 1
               for p in plans)
    for p in plans:
        h = p.handling
        if h.progress_fraction is not None:
            assert h.progress_fraction < h.complete_fraction
    results = Counter(p.handling.result for p in plans)
    assert results["RESOLVED"] / n > 0.8 and results["NOT_RESOLVABLE"] > 0

    sat = Counter(p.callback.satisfaction for p in plans)
    happy = (sat["SATISFIED"] + sat["BASICALLY_SATISFIED"]) / n
    assert 0.9 < happy < 0.97
    assert 0.03 < sat[UNSATISFIED] / n < 0.09
    unreached_first = sum(p.callback.unreached_attempts > 0 for p in plans) / n
    assert 0.03 < unreached_first < 0.07
    assert all(not p.callback.resolved for p in plans if p.callback.satisfaction == UNSATISFIED)
    # About 10 % of the callbacks that reach the citizen reopen the case (重办) ...
    reached = [p.callback for p in plans if p.callback.unreached_attempts < 3]
    reopens = [c for c in reached if not c.resolved or c.satisfaction == UNSATISFIED]
    assert 0.08 < len(reopens) / len(reached) < 0.13
    # ... and a reopened case is handled on time, the citizen reached and mostly satisfied.
    assert all(p.reopen_handling.complete_fraction <= 1 for p in plans)
    assert all(p.reopen_callback.unreached_attempts == 0 for p in plans)
    second = Counter(p.reopen_callback.satisfaction for p in plans)
    assert (second["SATISFIED"] + second["BASICALLY_SATISFIED"]) / n > 0.95


def test_plan_tier_is_what_the_classifier_will_decide() -> None:
    cases = _city(300, seed=4)
    tiers = {c.plan.complaint_id: c.plan.tier for c in cases}
    for case in cases:
        plan = case.plan
        if plan.expected_outcome == DISPATCH:
            result = classify_request(CONFIG, case.filing["content"],
                                      kind_hint=case.filing["kind"])
            assert plan.tier == result.tier, (plan.template, case.filing["content"])
        elif plan.expected_outcome == MERGED:
            # A repeat joins the open case and keeps its deadline ("再说一遍" in front of
            # the same words may read differently to the model: it is not classified anew).
            assert plan.tier == tiers[plan.duplicate_of] != ""
        else:
            assert plan.tier == ""


def test_handling_rules_come_in_realistic_shares() -> None:
    city = _city(3000, seed=99)
    plans = [c.plan for c in city]
    dispatched = [p for p in plans if p.expected_outcome == DISPATCH]
    long_tier = [p for p in dispatched if p.tier in LONG_TIERS]
    n = len(dispatched)

    returned = [p for p in plans if p.returns]
    assert 0.05 < len(returned) / n < 0.07  # ~6 % of dispatches are returned
    twice = [p for p in returned if len(p.returns) == 2]
    assert 0.25 < len(twice) / len(returned) < 0.4
    assert all(len(p.returns) <= CONFIG.rules.ladder.max_returns for p in plans)
    assert all(0 < p.return_fraction < 1 for p in returned)

    extended = [p for p in plans if p.extension]
    assert 0.07 < len(extended) / len(long_tier) < 0.09  # ~8 % of T7D/T15D
    auto = CONFIG.rules.extension.auto_grant_max_days
    longer = [p for p in extended if p.extension and p.extension.extra_days > auto]
    assert 0.2 < len(longer) / len(extended) < 0.4  # most within the days granted by rule
    assert {p.extension.supervisor_grants for p in longer if p.extension} == {True, False}

    whistled = [p for p in plans if p.whistle]
    assert 0.04 < len(whistled) / n < 0.06

    calls = Counter(c.action for p in plans for c in p.citizen_calls)
    urged = [p for p in plans if any(c.action == URGE for c in p.citizen_calls)]
    urged_twice = [p for p in urged if sum(c.action == URGE for c in p.citizen_calls) == 2]
    assert 0.05 < len(urged) / n < 0.07 and 0.3 < len(urged_twice) / len(urged) < 0.5
    assert 0.03 < calls[SUPPLEMENT] / n < 0.05
    assert calls[WITHDRAW] == 2  # one or two a run, however large

    repeats = [c for c in city if c.plan.expected_outcome == MERGED]
    assert 0.02 < len(repeats) / len(city) < 0.03


@pytest.mark.parametrize("seed", [1, 2, 3, 12345])
def test_a_100_case_demo_exercises_every_handling_rule(seed: int) -> None:
    city = _city(100, seed)
    plans = [c.plan for c in city]
    auto = CONFIG.rules.extension.auto_grant_max_days
    returns = [len(p.returns) for p in plans if p.returns]
    assert len(returns) >= 4 and returns.count(2) >= 1, "returns, some twice (city level)"
    extensions = [p.extension for p in plans if p.extension]
    assert len(extensions) >= 4
    assert sum(e.extra_days <= auto for e in extensions) >= 2
    longer = [e for e in extensions if e.extra_days > auto]
    assert {e.supervisor_grants for e in longer} == {True, False}, "a supervisor grants one"
    assert sum(p.whistle is not None for p in plans) >= 3
    urges = [sum(c.action == URGE for c in p.citizen_calls) for p in plans]
    assert urges.count(1) >= 1 and urges.count(2) >= 1, "urges, some twice (URGED)"
    assert sum(any(c.action == SUPPLEMENT for c in p.citizen_calls) for p in plans) >= 2
    assert 1 <= sum(any(c.action == WITHDRAW for c in p.citizen_calls) for p in plans) <= 2
    assert 2 <= sum(p.expected_outcome == MERGED for p in plans) <= 3
    reached = [p.callback for p in plans if p.callback.unreached_attempts < 3
               and p.expected_outcome == DISPATCH]
    assert sum(not c.resolved or c.satisfaction == UNSATISFIED for c in reached) >= 4


def test_handling_rules_fit_their_case_and_leave_time_to_play_out() -> None:
    city = _city(1000, seed=8)
    repeated = {c.plan.duplicate_of for c in city if c.plan.duplicate_of}
    max_days = {t: int(CONFIG.rules.tiers[t].deadline.days
                       * CONFIG.rules.extension.max_fraction_of_tier) for t in LONG_TIERS}
    for case in city:
        plan = case.plan
        rules = _rules_of(plan)
        if plan.complaint_id in repeated:
            rules.append("repeated")
        if not rules:
            continue
        # Long enough tiers only, and one rule a case (URGE may come twice).
        assert plan.expected_outcome == DISPATCH and plan.tier in LONG_TIERS, plan
        assert len(set(rules)) == 1, rules
        cf = plan.handling.complete_fraction
        for call in plan.citizen_calls:
            assert 0 < call.fraction < cf and call.text, call  # before the unit completes
        fractions = [c.fraction for c in plan.citizen_calls]
        assert fractions == sorted(fractions)
        if plan.whistle:
            assert 0 < plan.whistle.fraction < cf and plan.whistle.reason
            assert 1 <= len(plan.whistle.units) <= 2
        if plan.extension:
            ext = plan.extension
            assert 0 < ext.extra_days <= max_days[plan.tier]
            assert ext.request_fraction < cf and ext.reason and ext.supervisor_reason
            progress = plan.handling.progress_fraction
            assert progress is None or progress < ext.request_fraction
            assert plan.handling.result  # what it reports once done
        for reason in plan.returns:
            assert re.search(r"[\u4e00-\u9fff]", reason), reason


def test_whistled_units_are_departments_new_to_the_case() -> None:
    with DEPARTMENTS.open(encoding="utf-8", newline="") as fh:
        departments = {row["slug"] for row in csv.DictReader(fh)}
    for group in WHISTLE_GROUPS.values():
        assert set(group.units) <= departments, group
    assert set(WHISTLE_GROUPS) <= {t.key for t in TEMPLATES}
    whistled = [c for seed in (1, 2) for c in _city(500, seed) if c.plan.whistle]
    assert len(whistled) > 20
    for case in whistled:
        f, plan = case.filing, case.plan
        assert plan.whistle is not None
        loc = locate(CONFIG.registry, f["district"], f["street"], f["address"], f["content"],
                     at=f["filed_at"])
        route = decide_route(CONFIG, plan.category, loc, at=f["filed_at"])
        holding = {route.lead.unit_id, *(u.unit_id for u in route.assisting)}
        assert not set(plan.whistle.units) & holding, (plan.category, plan.whistle, holding)
        for unit_id in plan.whistle.units:  # the reason names whom it calls in
            unit = CONFIG.registry.get(unit_id)
            assert unit is not None and unit.name in plan.whistle.reason


def test_repeat_filings_name_the_same_caller_problem_and_street() -> None:
    city = _city(200, seed=6)
    by_id = {c.plan.complaint_id: c for c in city}
    repeats = [c for c in city if c.plan.expected_outcome == MERGED]
    assert len(repeats) == 5
    assert city[-len(repeats):] == repeats, "repeat filings come last"
    for case in repeats:
        first = by_id[case.plan.duplicate_of or ""]
        f, f0 = case.filing, first.filing
        assert first.plan.expected_outcome == DISPATCH and first.plan.tier in LONG_TIERS
        assert f["complaint_id"] > f0["complaint_id"] and f["event_id"] != f0["event_id"]
        assert not f0["anonymous"] and f0["street"] is not None
        for key in ("caller_phone", "caller_name", "district", "street", "address"):
            assert f[key] == f0[key], key
        assert f0["content"] in f["content"] and f["content"] != f0["content"]
        # What acceptance compares: the category and the located street.
        assert (classify(CONFIG.lexicon, f["content"], kind_hint=f["kind"]).category.code
                == classify(CONFIG.lexicon, f0["content"], kind_hint=f0["kind"]).category.code)
        loc = locate(CONFIG.registry, f["district"], f["street"], f["address"], f["content"])
        loc0 = locate(CONFIG.registry, f0["district"], f0["street"], f0["address"],
                      f0["content"])
        assert loc.street_id == loc0.street_id is not None
        # Filed while the first case is still being handled.
        assert 0 < case.plan.refile_fraction < first.plan.handling.complete_fraction
        assert not first.plan.citizen_calls


def test_citizen_calls_encode_as_intake_records() -> None:
    calls = [c for case in _city(300) for c in case.plan.citizen_calls]
    assert {c.action for c in calls} == {SUPPLEMENT, URGE, WITHDRAW}
    at = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    for i, call in enumerate(calls):
        name, record = citizen_record("BJ20261123-000001", call, at, f"e-{i}")
        decoded = decode(encode(name, record))
        assert decoded.name == name
        assert decoded.record["complaint_id"] == "BJ20261123-000001"


def _event(cid: str, seq: int, event_type: str, **attributes: str) -> dict[str, Any]:
    return {"event_id": f"{cid}:{seq}", "complaint_id": cid, "seq": seq,
            "event_type": event_type, "status": "SIGNED", "tier": "T7D",
            "attributes": attributes}


def test_the_board_counts_each_rule_event_once() -> None:
    board = Board(["A", "B"])
    events = [
        _event("A", 1, "RETURNED"), _event("A", 2, "REDISPATCHED"),
        _event("A", 3, "NOTICE", notice_type="CITY_COORDINATION"),
        _event("A", 4, "EXTENSION_REQUESTED", extra_days="2"),
        _event("A", 5, "EXTENSION_DECIDED", granted="true", decided_by="rule"),
        _event("B", 1, "WHISTLED", units="bj-chengguan,bj-samr"),
        _event("B", 2, "URGED"), _event("B", 3, "URGED"),
        _event("B", 4, "NOTICE", notice_type="URGED"),
        _event("B", 5, "EXTENSION_DECIDED", granted="false", decided_by="x"),
    ]
    for ev in events + events[:3]:  # Kafka may deliver a record twice
        board.lifecycle(ev)
    assert board.rules["RETURNED"] == board.rules["REDISPATCHED"] == 1
    assert board.notices["CITY_COORDINATION"] == 1 and board.notices["URGED"] == 1
    assert board.rules["EXTENSION_GRANTED"] == board.rules["EXTENSION_DENIED"] == 1
    assert board.rules["WHISTLED"] == 1 and board.rules["assisting units"] == 2
    assert board.rules["URGED"] == 2
    line = board.plain_line()
    assert "returns 1" in line and "whistles 1" in line and "urges 2" in line


def test_the_summary_lists_every_rule_and_pending_extensions() -> None:
    counts = {key: (0, 0) for key, *_ in RULE_ROWS}
    counts.update(requested=(3, 3), by_rule=(1, 1), denied=(1, 1), merged=(2, 2),
                  urges=(5, 4))
    table = rules_table(counts)
    assert table.row_count == len(RULE_ROWS)
    notes = list(table.columns[3].cells)
    assert "1 still pending at close" in notes
    assert "2 of them by merged repeat filings" in notes


def test_small_runs_still_work(tmp_path: Path) -> None:
    for cases in (1, 3, 12, 30):
        city = generate_city(cases, seed=5)
        assert len(city) == cases
        assert len({c.filing["complaint_id"] for c in city}) == cases
    with pytest.raises(ValueError):
        generate_city(0)
