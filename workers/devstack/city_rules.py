"""The handling rules the demo city plays on top of ordinary handling.

A seeded share of the dispatched cases exercises each handling rule of DESIGN.md: returns
and re-dispatch (twice: city coordination), extensions (by rule, and longer ones a
supervisor decides), whistled-in assisting units, supplements, urges (twice: one level
up), withdrawals, and repeat filings merged into the open case. Those rules need time to
play out, so they go to T7D/T15D cases.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import replace

from activities.dispatch.config import HotlineConfig
from workers.devstack.city_data import DISPATCH, WhistleGroup, city_data
from workers.devstack.city_plans import (
    SUPPLEMENT,
    URGE,
    WITHDRAW,
    CitizenCall,
    DemoCase,
    ExtensionPlan,
    HandlingPlan,
    WhistlePlan,
)

_DATA = city_data()
_PHRASES = _DATA.phrases
# By template key: the departments a lead unit whistles in, and why.
WHISTLE_GROUPS: dict[str, WhistleGroup] = dict(_DATA.whistle_groups)

# Tiers long enough for returns, extensions, whistles and the citizen's calls to play out
# against a scaled clock (T2H is ~0.15 s and T24H ~1.7 s at the demo's time scale).
LONG_TIERS = ("T7D", "T15D")


def whistle_reason(issue: str, unit_names: Sequence[str]) -> str:
    """The lead's reason for a whistle: the issue, and whom it calls in."""
    return f"{issue}，吹哨{'、'.join(unit_names)}到场协同处置。"


def play_handling_rules(city: list[DemoCase], repeats: int, rng: random.Random,
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
