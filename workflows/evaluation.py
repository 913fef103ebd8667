"""Per-case evaluation (考评): pure rules, shared by the workflow and the tests."""

from __future__ import annotations

from dataclasses import dataclass

SATISFIED_LEVELS = frozenset({"SATISFIED", "BASICALLY_SATISFIED"})


@dataclass(frozen=True)
class CaseFacts:
    """What happened to a case, as the evaluation needs it."""

    counted: bool
    callback_reached: bool
    callback_responded: bool
    callback_resolved: bool
    satisfaction: str | None
    unit_contacted: bool
    unit_result: str | None


@dataclass(frozen=True)
class Scores:
    responded: bool
    resolved: bool
    satisfied: bool
    score: float


def score_case(facts: CaseFacts, weights: dict[str, float]) -> Scores:
    """The three rates of one case and its weighted score (0-100).

    The citizen's word at callback decides; when the citizen was never reached, the
    unit's own report stands for response and resolution, and satisfaction is not given.
    """
    if facts.callback_reached:
        responded = facts.callback_responded
        resolved = facts.callback_resolved
        satisfied = facts.satisfaction in SATISFIED_LEVELS
    else:
        responded = facts.unit_contacted
        resolved = facts.unit_result == "RESOLVED"
        satisfied = False
    score = 100.0 * (
        weights["response"] * responded
        + weights["resolution"] * resolved
        + weights["satisfaction"] * satisfied
    )
    return Scores(responded, resolved, satisfied, round(score, 2))
