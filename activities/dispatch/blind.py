"""Score dispatch on a frozen blind set with the measures of the dispatch issue.

A blind set (``tests/data/blind/``) is written by someone who never read the rules, and
is never tuned on: only its totals are printed by default. Each request goes through what
the ``accept`` activity decides (:func:`decide`): classify, locate, route, and the outcome
(dispatched at once, sent to the dispatch desk, redirected to 110/119/120, rejected).

The measures, each with its count so a reader sees the support:
- **tier right**: over requests that should be dispatched;
- **T2H recall**: of those that should get 2 hours, how many did;
- **lead right**: over requests the machine dispatched alone that should be dispatched
  to a known unit;
- **street right where named**: the caller named a place that fixes the street;
- **emergencies redirected**: an emergency in progress transferred to the right service;
- **no-dispatch sent to a unit**: a consultation, a place outside Beijing or an
  unreasonable demand dispatched with no person's decision (target: none);
- **dispatched without review**: the share of requests that should be dispatched that
  went out at once, and how many of those had tier and lead right.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from activities.dispatch.config import HotlineConfig
from activities.dispatch.decide import first_look
from activities.dispatch.evaluation import read_jsonl

UNLOCATED = "UNLOCATED"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BlindExpected(_Strict):
    tier: str | None
    redirect: str | None = None
    no_dispatch: str | None = None
    lead: str | None = None
    street: str | None = None
    street_named: bool = False
    ambiguous_place: bool = False
    problem: str = ""


class Request(_Strict):
    """A request as an operator files it: the words and the fields they may fill."""

    id: str
    content: str
    district: str | None = None
    street: str | None = None
    address: str | None = None
    urgency_hint: str | None = None
    kind: str | None = None


class BlindItem(Request):
    expect: BlindExpected


def load_blind(path: Path) -> list[BlindItem]:
    """Read a blind set; a bad line raises :class:`EvalError` naming it."""
    return read_jsonl(path, BlindItem)


@dataclass(frozen=True)
class Decision:
    """What accept decided for one request, as the blind score needs it.

    ``outcome``: DISPATCH (at once), REVIEW (the dispatch desk), REDIRECTED, REJECTED,
    ANSWERED_DIRECTLY.
    """

    outcome: str
    tier: str | None
    lead: str | None
    street: str | None
    redirect: str | None = None


@dataclass
class Ratio:
    ok: int = 0
    of: int = 0

    def add(self, good: bool) -> None:
        self.of += 1
        self.ok += bool(good)

    @property
    def rate(self) -> float | None:
        return self.ok / self.of if self.of else None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "of": self.of, "rate": self.rate}


@dataclass
class BlindReport:
    """The dispatch issue's measures on one blind set."""

    total: int = 0
    tier: Ratio = field(default_factory=Ratio)
    t2h_recall: Ratio = field(default_factory=Ratio)
    lead: Ratio = field(default_factory=Ratio)
    street_named: Ratio = field(default_factory=Ratio)
    redirected: Ratio = field(default_factory=Ratio)
    no_dispatch_sent: Ratio = field(default_factory=Ratio)   # ok = sent to a unit (bad)
    without_review: Ratio = field(default_factory=Ratio)     # of those to be dispatched
    right_without_review: Ratio = field(default_factory=Ratio)  # tier and lead right
    outcomes: dict[str, int] = field(default_factory=dict)

    MEASURES = ("tier", "t2h_recall", "lead", "street_named", "redirected",
                "no_dispatch_sent", "without_review", "right_without_review")

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "outcomes": self.outcomes,
                **{name: getattr(self, name).as_dict() for name in self.MEASURES}}


def _lead_right(want: str | None, got: str | None) -> bool:
    return want is not None and want == got


def score(items: list[BlindItem], decide: Callable[[BlindItem], Decision]) -> BlindReport:
    """Run every item through ``decide`` and count the measures."""
    report = BlindReport(total=len(items))
    for item in items:
        exp = item.expect
        got = decide(item)
        report.outcomes[got.outcome] = report.outcomes.get(got.outcome, 0) + 1
        if exp.redirect:
            report.redirected.add(got.outcome == "REDIRECTED" and got.redirect == exp.redirect)
            continue
        if exp.no_dispatch:
            report.no_dispatch_sent.add(got.outcome == "DISPATCH")
            continue
        if exp.street_named:
            report.street_named.add(got.street == exp.street)
        report.tier.add(got.tier == exp.tier)
        if exp.tier == "T2H":
            report.t2h_recall.add(got.tier == "T2H")
        alone = got.outcome == "DISPATCH"
        report.without_review.add(alone)
        if alone and exp.lead not in (None, UNLOCATED):
            report.lead.add(_lead_right(exp.lead, got.lead))
            report.right_without_review.add(got.tier == exp.tier
                                            and _lead_right(exp.lead, got.lead))
    return report


def accept_decision(config: HotlineConfig, item: Request, *, at: date) -> Decision:
    """What the ``accept`` activity decides for the request (no duplicate check: the
    request has no caller)."""
    look = first_look(config, item.content, district=item.district, street=item.street,
                      address=item.address, kind_hint=item.kind,
                      urgency_hint=item.urgency_hint, at=at)
    outcome = look.outcome(config.rules.review.min_confidence)
    street = look.location.street_id
    if outcome == "REDIRECTED":
        return Decision(outcome, None, None, street, look.classification.redirect_to)
    return Decision(outcome, look.classification.tier, look.route.lead.unit_id, street)
