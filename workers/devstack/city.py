"""A small simulated city for ``hotline demo``: citizens' filings and how everyone behaves.

Pure and deterministic: :func:`generate_city` turns a seed into ``ComplaintFiled`` records
(natural Chinese text from slot templates, real districts and streets from
``beijing_units.csv``) and, for every case, a plan of what the units, the citizen, a
supervisor and the callback centre will do with it. ``workers/devstack/demo.py`` plays those plans
against the real stack.

Besides ordinary handling (with the lateness that makes the escalation ladder climb), a
seeded share of the cases exercises each handling rule of DESIGN.md: returns and
re-dispatch (twice: city coordination), extensions (by rule, and longer ones a supervisor
decides), whistled-in assisting units, supplements, urges (twice: one level up),
withdrawals, repeat filings merged into the open case, and callbacks that reopen the case.
Those rules need time to play out, so they go to T7D/T15D cases; the tier of each case
comes from the real classifier, as the worker will compute it.

The words (request templates, slot words, what units and citizens say, the districts)
are data: ``workers/devstack/data/*.yaml``, read by :mod:`workers.devstack.city_data`. The
templates are written against ``categories.yaml``: the classifier takes the *first*
category whose keywords appear in the text, so each template names its own category's
keywords and none of an earlier category's (``tests/test_demo_city.py`` checks every
generated text with the real classifier).
"""

from __future__ import annotations

import csv
import math
import random
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

from activities.dispatch.classify import classify
from activities.dispatch.config import HotlineConfig, load_config
from workers.devstack.city_data import (
    ANSWERED_DIRECTLY,
    BASICALLY_SATISFIED,
    DISPATCH,
    NOT_RESOLVABLE,
    PARTLY_RESOLVED,
    REDIRECTED,
    RESOLVED,
    SATISFIED,
    UNSATISFIED,
    Template,
    WhistleGroup,
    city_data,
)
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
# By template key: the departments a lead unit whistles in, and why.
WHISTLE_GROUPS: dict[str, WhistleGroup] = dict(_DATA.whistle_groups)
# Relative call volume per district, and its approximate centre for a filing's coordinates.
DISTRICT_WEIGHTS: dict[str, float] = _DATA.districts.call_weights
DISTRICT_CENTRES: dict[str, tuple[float, float]] = _DATA.districts.centres
UNREACHED_COMMENT = _PHRASES.unreached_comment

CHANNEL_WEIGHTS: dict[str, float] = {
    "PHONE": 55, "APP": 15, "WECHAT": 12, "MINI_PROGRAM": 10, "WEB": 8,
}

# Acceptance's decision for a repeat filing of an open case (besides the templates'
# DISPATCH, ANSWERED_DIRECTLY and REDIRECTED).
MERGED = "MERGED"

# The citizen's later calls about an open case.
SUPPLEMENT = "SUPPLEMENT"
URGE = "URGE"
WITHDRAW = "WITHDRAW"

# Tiers long enough for returns, extensions, whistles and the citizen's calls to play out
# against a scaled clock (T2H is ~0.15 s and T24H ~1.7 s at the demo's time scale).
LONG_TIERS = ("T7D", "T15D")

_UNIT_SUFFIX = re.compile(r"(满族|回族)?(街道|地区|镇|乡)$")


def whistle_reason(issue: str, unit_names: Sequence[str]) -> str:
    """The lead's reason for a whistle: the issue, and whom it calls in."""
    return f"{issue}，吹哨{'、'.join(unit_names)}到场协同处置。"


# --- plans ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HandlingPlan:
    """How the lead unit handles one dispatch, as fractions of the windows it was given.

    ``sign_fraction`` is a share of the sign-for window (``issued_at`` → ``sign_by``) and
    ``complete_fraction`` a share of the deadline (``issued_at`` → ``due_at``); above 1.0
    the unit is late. ``progress_fraction`` places the interim reply, None for none.
    """

    sign_fraction: float
    complete_fraction: float
    result: str
    reply_text: str
    progress_fraction: float | None = None
    progress_text: str = ""
    contacted_citizen: bool = True


@dataclass(frozen=True)
class CallbackPlan:
    """What the citizen says when the callback centre calls.

    The first ``unreached_attempts`` calls go unanswered (3: never reached).
    """

    unreached_attempts: int
    responded: bool
    resolved: bool
    satisfaction: str
    comment: str
    delay_hours: float = 2.0


@dataclass(frozen=True)
class ExtensionPlan:
    """The lead unit asks for more time (延期) once it has signed.

    ``request_fraction`` places the request as a share of the deadline. Up to the days the
    rules grant at once the workflow decides by itself; a longer request waits for a
    supervisor, whom the demo plays (``supervisor_grants``, ``supervisor_delay_hours`` after
    the request). Once granted, the unit completes ``complete_share`` of the way into the
    added time; when denied it completes at ``HandlingPlan.complete_fraction``, just in time.
    """

    extra_days: int
    reason: str
    request_fraction: float
    supervisor_grants: bool = True
    supervisor_reason: str = _PHRASES.supervisor_grant
    supervisor_delay_hours: float = 4.0
    complete_share: float = 0.5


@dataclass(frozen=True)
class WhistlePlan:
    """The lead unit calls departments in (吹哨) at ``fraction`` of the deadline."""

    units: tuple[str, ...]
    reason: str
    fraction: float


@dataclass(frozen=True)
class CitizenCall:
    """A later call of the citizen about the open case (补充, 催办, 撤诉).

    ``fraction``: when, as a share of the case's deadline counted from its dispatch; always
    before the unit plans to complete.
    """

    action: str  # SUPPLEMENT | URGE | WITHDRAW
    fraction: float
    text: str
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class CasePlan:
    """Everything the simulated city will do with one case.

    ``returns``: the reasons of the lead units that return the case, in order (the unit
    of the next dispatch handles it); each returns at ``return_fraction`` of its sign-for
    window instead of signing. A repeat filing (``expected_outcome`` MERGED) names the
    case it repeats in ``duplicate_of`` and is filed ``refile_fraction`` of that case's
    deadline after it was dispatched.
    """

    complaint_id: str
    template: str
    category: str
    kind: str
    expected_outcome: str
    emergency: bool
    handling: HandlingPlan
    callback: CallbackPlan
    # After a reopen (重办) the same unit handles it again and the citizen is called again.
    reopen_handling: HandlingPlan
    reopen_callback: CallbackPlan
    tier: str = ""  # as the classifier will decide; "" when the case is not dispatched
    returns: tuple[str, ...] = ()
    return_fraction: float = 0.5
    extension: ExtensionPlan | None = None
    whistle: WhistlePlan | None = None
    citizen_calls: tuple[CitizenCall, ...] = ()
    duplicate_of: str | None = None
    refile_fraction: float = 0.0


@dataclass(frozen=True)
class DemoCase:
    """One filing, when to send it (seconds after the start) and its plan.

    ``open311_key``: set when the citizen's app files it through the Open311 API (the
    app's own reference, sent as the Idempotency-Key) instead of the call centre.
    """

    filing: dict[str, Any]
    offset_seconds: float
    plan: CasePlan
    open311_key: str | None = None


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
        plan = _plan(cid, tpl, rng)
        if tpl.outcome == DISPATCH:
            tier = classify(config.lexicon, filing["content"], kind_hint=filing["kind"]).tier
            plan = replace(plan, tier=tier)
        out.append(DemoCase(filing=filing, offset_seconds=offsets[i], plan=plan))
    # A stream of its own, so the rules played on top never change the filings of a seed.
    events = random.Random(f"{seed}/handling-rules")
    originals_of_repeats = _handling_rules(out, repeats, events, config)
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


# --- the handling rules played on top of ordinary handling -----------------------------------


def _handling_rules(city: list[DemoCase], repeats: int, rng: random.Random,
                    config: HotlineConfig) -> list[int]:
    """Give a seeded share of the dispatched cases returns, an extension, a whistle, the
    citizen's later calls; pick the cases that ``repeats`` repeat filings will repeat.

    Plans in ``city`` are replaced in place. Each case gets at most one of these rules
    (so what happens to it stays readable on the board), from the T7D/T15D cases only.

    Returns:
        Indices in ``city`` of the cases to file again.
    """
    plans = [c.plan for c in city]
    dispatched = [i for i, p in enumerate(plans) if p.expected_outcome == DISPATCH]
    n = len(dispatched)
    pool = [i for i in dispatched if plans[i].tier in LONG_TIERS]
    rng.shuffle(pool)
    taken: set[int] = set()

    def take(count: int, fits: Callable[[int], bool] = lambda i: True) -> list[int]:
        picked = [i for i in pool if i not in taken and fits(i)][:max(0, count)]
        taken.update(picked)
        return picked

    def roomy(i: int, low: float = 0.35) -> HandlingPlan:
        """The unit's handling, leaving time before completion for what comes first."""
        h = plans[i].handling
        if h.complete_fraction >= low:
            return h
        complete = round(rng.uniform(low + 0.05, 0.7), 3)
        return replace(h, complete_fraction=complete)

    # Withdrawals (撤诉): one or two.
    for i in take(0 if n < 20 else (1 if n < 60 else 2)):
        h = roomy(i)
        call = CitizenCall(WITHDRAW, round(h.complete_fraction * rng.uniform(0.2, 0.5), 3),
                           rng.choice(_PHRASES.withdraw_reasons))
        plans[i] = replace(plans[i], handling=h, citizen_calls=(call,))

    # Repeat filings (重复件): the same caller names the same street again.
    repeated = take(repeats, lambda i: city[i].filing["street"] is not None
                    and not city[i].filing["anonymous"])
    for i in repeated:
        plans[i] = replace(plans[i], handling=roomy(i))

    # Returns (退单), a third of them twice (→ city coordination).
    n_returns = round(0.06 * n)
    twice = max(1, round(n_returns / 3)) if n_returns >= 2 else 0
    for k, i in enumerate(take(n_returns)):
        reasons = tuple(rng.sample(_PHRASES.return_reasons, 2 if k < twice else 1))
        plans[i] = replace(plans[i], returns=reasons,
                           return_fraction=round(rng.uniform(0.2, 0.8), 3))

    # Extensions (延期): 8 % of the long-tier cases (at least five once there are 40 of
    # them, so a 100-case run shows every outcome); most within the days granted by rule,
    # about a third longer: a supervisor decides those, granting and denying in turn.
    n_ext = math.ceil(0.08 * len(pool))
    if len(pool) >= 40:
        n_ext = max(n_ext, 5)
    longer = max(2, round(n_ext * 0.3)) if n_ext >= 5 else (1 if n_ext >= 3 else 0)
    for k, i in enumerate(take(n_ext)):
        plan = plans[i]
        request = round(rng.uniform(0.3, 0.5), 3)
        if k < longer:
            days = rng.randint(5, 7) if plan.tier == "T7D" else rng.randint(6, 10)
            grants = k % 2 == 0
        else:
            days, grants = rng.choice((2, 3)), True
        h = plan.handling
        # Without more time the unit finishes just in time; its interim reply comes first.
        progress = (round(request * rng.uniform(0.4, 0.8), 3)
                    if h.progress_fraction is not None else None)
        h = replace(h, complete_fraction=round(rng.uniform(0.75, 0.92), 3),
                    progress_fraction=progress)
        ext = ExtensionPlan(
            extra_days=days, reason=rng.choice(_PHRASES.extension_reasons),
            request_fraction=request,
            supervisor_grants=grants,
            supervisor_reason=_PHRASES.supervisor_grant if grants else _PHRASES.supervisor_deny,
            supervisor_delay_hours=round(rng.uniform(2.0, 12.0), 2),
            complete_share=round(rng.uniform(0.3, 0.7), 3),
        )
        plans[i] = replace(plan, handling=h, extension=ext)

    # Whistles (吹哨报到): 5 %, departments sensible for the request.
    for i in take(round(0.05 * n), lambda i: plans[i].template in WHISTLE_GROUPS):
        group = WHISTLE_GROUPS[plans[i].template]
        picked = rng.sample(group.units, rng.choice((1, 2)) if len(group.units) > 1 else 1)
        units = tuple(u for u in group.units if u in picked)
        names = [unit.name if (unit := config.registry.get(u)) else u for u in units]
        h = roomy(i, 0.4)
        whistle = WhistlePlan(units, whistle_reason(group.issue, names),
                              round(h.complete_fraction * rng.uniform(0.2, 0.45), 3))
        plans[i] = replace(plans[i], handling=h, whistle=whistle)

    # Urges (催办): 6 %, about 40 % of them twice (→ one supervision level up).
    n_urged = round(0.06 * n)
    urged_twice = max(1, round(0.4 * n_urged)) if n_urged >= 2 else 0
    for k, i in enumerate(take(n_urged)):
        h = roomy(i)
        cf = h.complete_fraction
        calls = [CitizenCall(URGE, round(cf * rng.uniform(0.25, 0.45), 3),
                             rng.choice(_PHRASES.urges))]
        if k < urged_twice:
            calls.append(CitizenCall(URGE, round(cf * rng.uniform(0.6, 0.85), 3),
                                     rng.choice(_PHRASES.second_urges)))
        plans[i] = replace(plans[i], handling=h, citizen_calls=tuple(calls))

    # Supplements (补充): 4 %, some with a photo.
    for i in take(round(0.04 * n)):
        h = roomy(i)
        text = rng.choice(_PHRASES.supplements)
        photos: tuple[str, ...] = ()
        if "照片" in text:
            photos = (f"https://files.hotline.example/demo/{plans[i].complaint_id}/supplement-1.jpg",)
        call = CitizenCall(SUPPLEMENT, round(h.complete_fraction * rng.uniform(0.1, 0.6), 3),
                           text, photos)
        plans[i] = replace(plans[i], handling=h, citizen_calls=(call,))

    for i, plan in enumerate(plans):
        if plan is not city[i].plan:
            city[i] = replace(city[i], plan=plan)
    return repeated


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
    plan = _plan(cid, template(original.plan.template), rng)
    # Merged at acceptance; were the first case closed already, it would be handled afresh.
    plan = replace(plan, expected_outcome=MERGED, tier=original.plan.tier,
                   duplicate_of=original.plan.complaint_id,
                   refile_fraction=round(original.plan.handling.complete_fraction
                                         * rng.uniform(0.1, 0.5), 3))
    return DemoCase(filing=filing, offset_seconds=last.offset_seconds, plan=plan)


def _weighted(rng: random.Random, items: Sequence[str], weights: Sequence[float]) -> str:
    return rng.choices(list(items), weights=list(weights), k=1)[0]


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
    by_category: dict[str, list[Template]] = {}
    for tpl in ordinary:
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
        channel = _weighted(rng, list(CHANNEL_WEIGHTS), list(CHANNEL_WEIGHTS.values()))
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


def _handling(rng: random.Random, *, reopen: bool = False) -> HandlingPlan:
    # Sign for: most within 10-60 % of the window, ~5 % miss it.
    missed = not reopen and rng.random() < 0.05
    sign = rng.uniform(1.2, 2.5) if missed else rng.uniform(0.1, 0.6)
    # Complete: most at 20-70 % of the deadline, ~8 % late.
    late = not reopen and rng.random() < 0.08
    complete = rng.uniform(1.05, 1.4) if late else rng.uniform(0.2, 0.7)
    if reopen:
        result = RESOLVED if rng.random() < 0.85 else PARTLY_RESOLVED
    else:
        result = _weighted(rng, (RESOLVED, PARTLY_RESOLVED, NOT_RESOLVABLE), (87, 10, 3))
    progress: float | None = None
    if rng.random() < 0.7:
        # A share of the deadline before completion; the unit never reports before signing.
        progress = round(complete * rng.uniform(0.3, 0.7), 3)
    return HandlingPlan(
        sign_fraction=round(sign, 3),
        complete_fraction=round(complete, 3),
        result=result,
        reply_text=rng.choice(_PHRASES.replies[result]),
        progress_fraction=progress,
        progress_text=rng.choice(_PHRASES.progress),
        contacted_citizen=rng.random() < 0.95,
    )


# Satisfaction given the unit's result (SATISFIED, BASICALLY, UNSATISFIED), and how often a
# partly resolved problem counts as resolved for the citizen: overall about 94 % satisfied
# or basically satisfied, and about 10 % of the callbacks unresolved or unsatisfied, which
# reopens the case. After a reopen (the unit went back) the citizen is mostly satisfied.
_SATISFACTION_GIVEN_RESULT: dict[str, tuple[float, float, float]] = {
    RESOLVED: (71, 25, 4),
    PARTLY_RESOLVED: (25, 55, 20),
    NOT_RESOLVABLE: (10, 50, 40),
}
_SATISFACTION_AFTER_REOPEN: dict[str, tuple[float, float, float]] = {
    RESOLVED: (75, 23, 2),
    PARTLY_RESOLVED: (35, 55, 10),
    NOT_RESOLVABLE: (15, 55, 30),
}
_PARTLY_COUNTS_AS_RESOLVED = 0.7


def _callback(rng: random.Random, handling: HandlingPlan, *, reopen: bool = False) -> CallbackPlan:
    roll = rng.random()
    # ~5 % are not reached on the first call; one in five of those never answers.
    unreached = 0 if reopen or roll >= 0.05 else (3 if roll < 0.01 else 1)
    table = _SATISFACTION_AFTER_REOPEN if reopen else _SATISFACTION_GIVEN_RESULT
    satisfaction = _weighted(rng, (SATISFIED, BASICALLY_SATISFIED, UNSATISFIED),
                             table[handling.result])
    if satisfaction == UNSATISFIED:
        resolved = False
    elif handling.result == RESOLVED:
        resolved = True
    elif handling.result == PARTLY_RESOLVED:
        resolved = rng.random() < _PARTLY_COUNTS_AS_RESOLVED
    else:
        resolved = False
    responded = handling.contacted_citizen or rng.random() < 0.5
    return CallbackPlan(
        unreached_attempts=unreached,
        responded=responded,
        resolved=resolved,
        satisfaction=satisfaction,
        comment=rng.choice(_PHRASES.comments[satisfaction]),
        delay_hours=round(rng.uniform(0.5, 6.0), 2),
    )


def _plan(cid: str, tpl: Template, rng: random.Random) -> CasePlan:
    handling = _handling(rng)
    reopen_handling = _handling(rng, reopen=True)
    return CasePlan(
        complaint_id=cid,
        template=tpl.key,
        category=tpl.category,
        kind=tpl.kind,
        expected_outcome=tpl.outcome,
        emergency=tpl.emergency,
        handling=handling,
        callback=_callback(rng, handling),
        reopen_handling=reopen_handling,
        reopen_callback=_callback(rng, reopen_handling, reopen=True),
    )
