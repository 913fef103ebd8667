"""What everyone in the demo city will do with one case: the plan types, and the ordinary
plan drawn for a case.

:mod:`workers.devstack.city` writes a :class:`CasePlan` for each filing (the handling
rules of :mod:`workers.devstack.city_rules` then vary some of them);
``workers/devstack/demo_*.py`` play them against the real stack. Times are shares of the
windows the workflow gives (sign-for window, deadline), so a plan fits any time scale.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workers.devstack.city_data import (
    BASICALLY_SATISFIED,
    NOT_RESOLVABLE,
    PARTLY_RESOLVED,
    RESOLVED,
    SATISFIED,
    UNSATISFIED,
    Template,
    city_data,
)

_PHRASES = city_data().phrases
UNREACHED_COMMENT = _PHRASES.unreached_comment

# Acceptance's decision for a repeat filing of an open case (besides the templates'
# DISPATCH, ANSWERED_DIRECTLY and REDIRECTED).
MERGED = "MERGED"

# The citizen's later calls about an open case.
SUPPLEMENT = "SUPPLEMENT"
URGE = "URGE"
WITHDRAW = "WITHDRAW"


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


def weighted(rng: random.Random, items: Sequence[str], weights: Sequence[float]) -> str:
    return rng.choices(list(items), weights=list(weights), k=1)[0]


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
        result = weighted(rng, (RESOLVED, PARTLY_RESOLVED, NOT_RESOLVABLE), (87, 10, 3))
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
    satisfaction = weighted(rng, (SATISFIED, BASICALLY_SATISFIED, UNSATISFIED),
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


def draw_plan(cid: str, tpl: Template, rng: random.Random) -> CasePlan:
    """The ordinary plan of a case: how its unit handles it and what the citizen says."""
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
