"""Canaries: requests whose decision the project itself relies on.

The stack tests, the demo city and the benchmarks file these requests and assert what
acceptance decides for them (the lift of 望京 that has waited three days is 24 hours for
its street). A new dispatch model may score better on the held-out set and still change
one of them; ``hotline routing learn`` then keeps the current model and names the
canaries the candidate changes. Each canary pins only the parts of the decision that are
relied on (null: not pinned), and says who relies on it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from activities.dispatch.blind import Decision, Request
from activities.dispatch.evaluation import read_jsonl
from activities.dispatch.rules import TIERS

OUTCOMES = ("DISPATCH", "REVIEW", "REDIRECTED", "REJECTED", "ANSWERED_DIRECTLY")
SERVICES = ("110", "119", "120")
# What each pinned part may be, and what a dispatcher calls it.
_ALLOWED = {"outcome": ("outcome", OUTCOMES), "tier": ("tier", TIERS),
            "redirect": ("service", SERVICES)}


class Pinned(BaseModel):
    """The parts of the decision a canary pins; None leaves a part free."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: str
    tier: str | None = None
    lead: str | None = None
    redirect: str | None = None

    @field_validator("outcome", "tier", "redirect")
    @classmethod
    def _known(cls, value: str | None, info: ValidationInfo) -> str | None:
        what, allowed = _ALLOWED[info.field_name or ""]
        if value is not None and value not in allowed:
            raise ValueError(f"unknown {what} {value} (one of {', '.join(allowed)})")
        return value


class Canary(Request):
    why: str
    decision: Pinned


def load_canaries(path: Path) -> list[Canary]:
    """Read a canary file; a bad line raises :class:`EvalError` naming it."""
    return read_jsonl(path, Canary)


def changed(canary: Canary, got: Decision) -> str | None:
    """What differs from the pinned decision, in a dispatcher's words; None if nothing."""
    pinned = canary.decision
    wanted = {"outcome": (pinned.outcome, got.outcome), "tier": (pinned.tier, got.tier),
              "lead": (pinned.lead, got.lead), "redirect": (pinned.redirect, got.redirect)}
    diffs = [f"{name} {now} instead of {want}" for name, (want, now) in wanted.items()
             if want is not None and want != now]
    return "; ".join(diffs) or None


def misses(canaries: list[Canary], decide: Callable[[Canary], Decision]) -> dict[str, str]:
    """Each canary whose decision ``decide`` changes, by id, with what changed."""
    out: dict[str, str] = {}
    for canary in canaries:
        if (diff := changed(canary, decide(canary))) is not None:
            out[canary.id] = diff
    return out
