"""A small simulated city for ``hotline demo``: citizens' filings and how everyone behaves.

Pure and deterministic: :func:`generate_city` turns a seed into ``ComplaintFiled`` records
(natural Chinese text from slot templates, real districts and streets from
``beijing_units.csv``) and, for every case, a plan (:mod:`workers.devstack.city_plans`)
of what the units, the citizen, a supervisor and the callback centre will do with it.
``workers/devstack/demo.py`` plays those plans against the real stack.

Besides ordinary handling (with the lateness that makes the escalation ladder climb), a
seeded share of the cases exercises each handling rule of DESIGN.md
(:mod:`workers.devstack.city_rules`), including repeat filings merged into the open case
and callbacks that reopen it. The tier of each case comes from the real classifier, as
the worker will compute it.

The words (request templates, slot words, what units and citizens say, the districts)
are data: ``workers/devstack/data/*.yaml``, read by :mod:`workers.devstack.city_data`. The
templates are written against ``categories.yaml``: the classifier takes the *first*
category whose keywords appear in the text, so each template names its own category's
keywords and none of an earlier category's (``tests/test_demo_city.py`` checks every
generated text with the real classifier).
"""

from __future__ import annotations

import csv
import random
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

from activities.dispatch.config import HotlineConfig, load_config
from activities.dispatch.decide import classify_request
from workers.devstack.city_data import (
    ANSWERED_DIRECTLY,
    DISPATCH,
    REDIRECTED,
    Template,
    city_data,
)
from workers.devstack.city_plans import MERGED, DemoCase, draw_plan, weighted
from workers.devstack.city_rules import play_handling_rules
from workers.open311.model import ApiClient, complaint_id_for
from workers.runtime.settings import REPO_ROOT, get_settings

UNITS_CSV = REPO_ROOT / "deploy" / "config" / "beijing_units.csv"
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST in China since 1991
# Event ids of filings are uuid5 of the complaint id: stable for a seed, unique per case.
_EVENT_NS = uuid.UUID("6f1c2a34-12a5-4b8e-9d0e-8c1f5a3e2b70")

_DATA = city_data()
_WORDS = _DATA.words
_PHRASES = _DATA.phrases

TEMPLATES: tuple[Template, ...] = _DATA.templates
# Emergencies in the order the demo uses them: the brief's three first.
EMERGENCY_ORDER: tuple[str, ...] = _DATA.emergency_order
# Relative call volume per district, and its approximate centre for a filing's coordinates.
DISTRICT_WEIGHTS: dict[str, float] = _DATA.districts.call_weights
DISTRICT_CENTRES: dict[str, tuple[float, float]] = _DATA.districts.centres

CHANNEL_WEIGHTS: dict[str, float] = {
    "PHONE": 55, "APP": 15, "WECHAT": 12, "MINI_PROGRAM": 10, "WEB": 8,
}

_UNIT_SUFFIX = re.compile(r"(满族|回族)?(街道|地区|镇|乡)$")


@dataclass(frozen=True)
class Street:
    district: str
    name: str
    stem: str  # the place name without 街道/地区/镇/乡: "望京" for 望京街道


@dataclass
class _Slots:
    values: dict[str, str] = field(default_factory=dict)
    address: str = ""


# --- reference data --------------------------------------------------------------------------


def load_streets(path: Path = UNITS_CSV) -> dict[str, list[Street]]:
    """Streets, towns and townships of each district, from ``beijing_units.csv``."""
    by_district: dict[str, list[Street]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            name = row["unit_name"].strip()
            district = row["district_name"].strip()
            stem = _UNIT_SUFFIX.sub("", name) or name
            by_district.setdefault(district, []).append(Street(district, name, stem))
    return by_district


def template(key: str) -> Template:
    """The template with this key."""
    for tpl in TEMPLATES:
        if tpl.key == key:
            return tpl
    raise KeyError(key)


# --- generation ------------------------------------------------------------------------------


def complaint_id(day: datetime, serial: int) -> str:
    """The upstream id format: ``BJ20261122-000123`` (Beijing date, daily serial)."""
    return f"BJ{day.astimezone(BEIJING):%Y%m%d}-{serial:06d}"


def generate_city(
    cases: int,
    *,
    seed: int = 12345,
    start: datetime | None = None,
    serial_base: int = 1,
    filing_seconds: float | None = None,
    streets: dict[str, list[Street]] | None = None,
    config: HotlineConfig | None = None,
) -> list[DemoCase]:
    """The filings of one demo run and what everyone will do with them.

    Args:
        cases: how many complaints to file.
        seed: the same seed (with the same other arguments) gives the same city.
        start: the first filing's time (default 2026-11-23 09:00 Beijing, fixed for tests).
        serial_base: the first complaint's serial; a run must not reuse an earlier
            run's ids (each id is a workflow id).
        filing_seconds: spread the filings over this long; default 0.3 s a case, kept
            within 3-40 s.
        streets: the registry (default: read ``beijing_units.csv``).
        config: the lexicon that tells each case's tier (default: the config folder of
            the settings).

    Returns:
        Cases in filing order, repeat filings last (they are filed once the case they
        repeat has been dispatched). Every category is covered once ``cases`` leaves room
        for it, and every district once ``cases >= 16``; about 8 % are consultations
        answered on the phone, a few are emergencies and one is a police or fire matter.
        Of the dispatched cases about 6 % are returned (a third of those twice), 5 %
        whistle departments in, 6 % are urged (some twice) and 4 % supplemented; 8 % of
        the T7D/T15D cases ask for an extension (most for 2-3 days, some longer); one or
        two are withdrawn and about 2.5 % of the filings repeat an open case. About 10 %
        of the callbacks are unresolved or unsatisfied, which reopens the case.
    """
    if cases < 1:
        raise ValueError("cases must be at least 1")
    rng = random.Random(seed)
    streets = streets if streets is not None else load_streets()
    config = config if config is not None else _default_config()
    start = start or datetime(2026, 11, 23, 9, 0, tzinfo=BEIJING)
    if filing_seconds is None:
        filing_seconds = min(40.0, max(3.0, 0.3 * cases))

    repeats = 0 if cases < 20 else max(1, round(cases * 0.025 + 0.25))
    originals = cases - repeats
    chosen = _choose_templates(originals, rng)
    districts = _choose_districts(originals, rng, streets)
    offsets = _offsets(originals, filing_seconds, rng)
    out: list[DemoCase] = []
    for i, (tpl, district) in enumerate(zip(chosen, districts, strict=True)):
        cid = complaint_id(start, serial_base + i)
        filed_at = (start + timedelta(seconds=offsets[i])).astimezone(UTC)
        filing = _filing(cid, tpl, district, filed_at, rng, streets)
        plan = draw_plan(cid, tpl, rng)
        if tpl.outcome == DISPATCH:
            # What accept will decide: the rules, raised by the learned model where it is sure.
            tier = classify_request(config, filing["content"], kind_hint=filing["kind"]).tier
            plan = replace(plan, tier=tier)
        out.append(DemoCase(filing=filing, offset_seconds=offsets[i], plan=plan))
    # A stream of its own, so the rules played on top never change the filings of a seed.
    events = random.Random(f"{seed}/handling-rules")
    originals_of_repeats = play_handling_rules(out, repeats, events, config)
    for j, index in enumerate(originals_of_repeats):
        cid = complaint_id(start, serial_base + originals + j)
        out.append(_repeat_filing(cid, out[index], out[-1], events))
    return out


# Share of the filings that citizens' apps send through the Open311 API.
OPEN311_SHARE = 0.2
OPEN311_CHANNELS = ("APP", "WECHAT", "MINI_PROGRAM", "WEB")


def open311_client(channel: str) -> ApiClient:
    """The demo's Open311 client app of a channel (its key is for the local demo only)."""
    name = f"demo-{channel.lower().replace('_', '-')}"
    return ApiClient(name, f"{name}-local-demo-key", channel)


def route_through_open311(city: list[DemoCase], share: float = OPEN311_SHARE
                          ) -> list[DemoCase]:
    """The city with about ``share`` of its filings sent by apps through Open311.

    Picked evenly among the app, WeChat, mini-program and web filings that no repeat filing
    refers to (a repeat names its first case's id). Each picked case takes the id the
    Open311 service gives it (its app's reference is the Idempotency-Key), so the plan is
    known under that id before it is filed.
    """
    repeated = {c.plan.duplicate_of for c in city if c.plan.duplicate_of}
    eligible = [i for i, c in enumerate(city)
                if c.filing["channel"] in OPEN311_CHANNELS and not c.plan.duplicate_of
                and c.plan.complaint_id not in repeated]
    wanted = min(len(eligible), round(share * len(city)))
    if not wanted:
        return list(city)
    step = len(eligible) / wanted
    picked = {eligible[int(k * step)] for k in range(wanted)}
    out = []
    for i, case in enumerate(city):
        if i not in picked:
            out.append(case)
            continue
        key = case.plan.complaint_id
        cid = complaint_id_for(open311_client(case.filing["channel"]).name, key)
        out.append(replace(case, filing={**case.filing, "complaint_id": cid},
                           plan=replace(case.plan, complaint_id=cid), open311_key=key))
    return out


@cache
def _default_config() -> HotlineConfig:
    return load_config(get_settings().config_dir)


def _repeat_filing(cid: str, original: DemoCase, last: DemoCase,
                   rng: random.Random) -> DemoCase:
    """The same caller files the same problem again while the first case is open (重复件).

    Same phone, district, street and address, the same text said again: acceptance finds
    the open case (same caller, category and street) and merges the new filing into it.
    """
    first = original.filing
    filing = dict(first)
    filing.update(
        event_id=str(uuid.uuid5(_EVENT_NS, f"{cid}/filed")),
        complaint_id=cid,
        filed_at=last.filing["filed_at"],  # the call centre stamps the real time
        channel="PHONE",
        content=rng.choice(_PHRASES.repeat_prefixes) + first["content"],
        attachments=[],
        latitude=None,
        longitude=None,
    )
    plan = draw_plan(cid, template(original.plan.template), rng)
    # Merged at acceptance; were the first case closed already, it would be handled afresh.
    plan = replace(plan, expected_outcome=MERGED, tier=original.plan.tier,
                   duplicate_of=original.plan.complaint_id,
                   refile_fraction=round(original.plan.handling.complete_fraction
                                         * rng.uniform(0.1, 0.5), 3))
    return DemoCase(filing=filing, offset_seconds=last.offset_seconds, plan=plan)


def _choose_templates(cases: int, rng: random.Random) -> list[Template]:
    answered = [t for t in TEMPLATES if t.outcome == ANSWERED_DIRECTLY]
    redirects = [t for t in TEMPLATES if t.outcome == REDIRECTED]
    ordinary = [t for t in TEMPLATES if t.outcome == DISPATCH and not t.emergency]

    n_answered = round(cases * 0.08)
    n_redirect = 1 if cases >= 12 else 0
    n_emergency = max(2, round(cases * 0.03)) if cases >= 12 else (1 if cases >= 4 else 0)
    n_ordinary = max(0, cases - n_answered - n_redirect - n_emergency)

    chosen: list[Template] = [answered[i % len(answered)] for i in range(n_answered)]
    rng.shuffle(chosen)
    chosen += [rng.choice(redirects) for _ in range(n_redirect)]
    chosen += [template(EMERGENCY_ORDER[i % len(EMERGENCY_ORDER)]) for i in range(n_emergency)]

    # One case per category first, so a normal-sized run shows the whole lexicon; then the
    # rest by template weight (heating and noise are what Beijing calls about in winter).
    # A category that is always urgent (someone missing) shows with its emergency: any
    # emergency template whose category no ordinary template covers is drawn this way.
    covered = {t.category for t in ordinary}
    always_urgent = [t for t in TEMPLATES if t.outcome == DISPATCH and t.emergency
                     and t.category not in covered]
    by_category: dict[str, list[Template]] = {}
    for tpl in [*ordinary, *always_urgent]:
        by_category.setdefault(tpl.category, []).append(tpl)
    categories = list(by_category)
    rng.shuffle(categories)
    for code in categories[:n_ordinary]:
        group = by_category[code]
        chosen.append(group[rng.randrange(len(group))])
    rest = n_ordinary - min(n_ordinary, len(categories))
    chosen += rng.choices(ordinary, weights=[t.weight for t in ordinary], k=rest)
    chosen = chosen[:cases]
    rng.shuffle(chosen)
    return chosen


def _choose_districts(
    cases: int, rng: random.Random, streets: dict[str, list[Street]]
) -> list[str]:
    """District of each case: every district at least once (when it fits), the rest by
    weight with largest remainders, shuffled."""
    names = [d for d in DISTRICT_WEIGHTS if d in streets]
    names += sorted(d for d in streets if d not in DISTRICT_WEIGHTS)
    weights = [DISTRICT_WEIGHTS.get(d, 1.0) for d in names]
    floor = 1 if cases >= len(names) else 0
    free = cases - floor * len(names)
    total = sum(weights)
    exact = [free * w / total for w in weights]
    counts = [floor + int(x) for x in exact]
    left = cases - sum(counts)
    by_remainder = sorted(range(len(names)), key=lambda i: (-(exact[i] - int(exact[i])), i))
    for i in by_remainder[:left]:
        counts[i] += 1
    out = [d for d, c in zip(names, counts, strict=True) for _ in range(c)]
    rng.shuffle(out)
    return out


def _offsets(cases: int, seconds: float, rng: random.Random) -> list[float]:
    """A steady pace with some jitter: calls do not arrive on a metronome."""
    step = seconds / cases
    return sorted(
        round(max(0.0, i * step + rng.uniform(-0.4, 0.4) * step), 3) for i in range(cases)
    )


def _slots(tpl: Template, street: Street, with_street: bool, rng: random.Random) -> _Slots:
    stem = street.stem
    road_suffixes = rng.sample(_WORDS.road_suffixes, 2)
    road = stem + road_suffixes[0]
    road2 = stem + road_suffixes[1]
    estate = stem + rng.choice(_WORDS.estate_suffixes)
    bld = f"{rng.randint(1, 28)}号楼"
    district = street.district
    if with_street:
        loc = rng.choice((f"{district}{street.name}{estate}", f"{street.name}{road}{estate}",
                          f"{district}{street.name}{road}{estate}"))
    else:
        loc = rng.choice((f"{district}{road}{estate}", f"{road}{estate}"))
    values = {
        "loc": loc, "estate": estate, "road": road, "road2": road2,
        "place": rng.choice(_WORDS.places), "spot": rng.choice(_WORDS.spots), "bld": bld,
        "unit_no": f"{rng.randint(1, 6)}单元", "floor": f"{rng.randint(8, 20)}层",
        "district": district, "time": rng.choice(_WORDS.times), "when": rng.choice(_WORDS.when),
        "days": rng.choice(_WORDS.days), "months": rng.choice(_WORDS.months),
        "years": rng.choice(_WORDS.years),
        "year": str(rng.randint(2015, 2023)), "amount": rng.choice(_WORDS.amounts),
        "bus": f"{rng.choice((1, 52, 300, 302, 408, 429, 602, 675, 915, 983))}路",
        "line": str(rng.choice((1, 2, 4, 5, 6, 8, 10, 13, 14, 15, 17))),
        "age": str(rng.randint(80, 95)),
        "item": rng.choice(_WORDS.items), "food": rng.choice(_WORDS.foods),
        "job": rng.choice(_WORDS.jobs),
        "workplace": f"{road}附近{rng.choice(_WORDS.workplaces)}",
    }
    uses_estate = any(s in tpl.text for s in ("{loc}", "{estate}", "{bld}"))
    address = f"{district}{street.name if with_street else ''}{road}"
    if uses_estate:
        address += estate + (bld if "{bld}" in tpl.text else "")
    elif "{place}" in tpl.text:
        address += values["place"]
    return _Slots(values, address)


def _filing(
    cid: str, tpl: Template, district: str, filed_at: datetime, rng: random.Random,
    streets: dict[str, list[Street]],
) -> dict[str, Any]:
    street = rng.choice(streets[district])
    # Some callers only give an address; the router then finds the street in it.
    with_street = rng.random() >= 0.12
    slots = _slots(tpl, street, with_street, rng)
    content = tpl.text.format_map(slots.values)

    if tpl.outcome != DISPATCH or tpl.emergency:
        channel = "PHONE"  # answered on the phone, or too urgent to type
    else:
        channel = weighted(rng, list(CHANNEL_WEIGHTS), list(CHANNEL_WEIGHTS.values()))
    anonymous = tpl.outcome == DISPATCH and rng.random() < 0.1
    name: str | None = None
    if not anonymous:
        surname = rng.choice(_WORDS.surnames)
        name = (surname + rng.choice(("先生", "女士")) if rng.random() < 0.7
                else surname + rng.choice(_WORDS.given))
    lat, lon = DISTRICT_CENTRES.get(district, (39.904, 116.407))
    has_coords = channel in ("APP", "WECHAT", "MINI_PROGRAM")
    attachments: list[str] = []
    if has_coords and rng.random() < 0.4:
        attachments = [f"https://files.hotline.example/demo/{cid}/photo-1.jpg"]
    consultation = tpl.outcome == ANSWERED_DIRECTLY
    return {
        "event_id": str(uuid.uuid5(_EVENT_NS, f"{cid}/filed")),
        "complaint_id": cid,
        "filed_at": filed_at,
        "channel": channel,
        "kind": tpl.kind,
        "content": content,
        "caller_phone": f"1380000{rng.randrange(10_000):04d}",
        "caller_name": name,
        "anonymous": anonymous,
        "district": district,
        "street": street.name if with_street and not consultation else None,
        "address": None if consultation else slots.address,
        "latitude": round(lat + rng.uniform(-0.03, 0.03), 5) if has_coords else None,
        "longitude": round(lon + rng.uniform(-0.03, 0.03), 5) if has_coords else None,
        "category_hint": None,
        "urgency_hint": None,
        "answered_directly": consultation,
        "attachments": attachments,
    }
