"""Measure classification, location and routing against a labelled set.

A labelled set is JSON Lines, one request a line, as a caller and operator gave it, with
what a careful human dispatcher decided::

    {"id": "r001", "content": "…", "district": "朝阳", "street": "望京街道", "address": "…",
     "at": "2022-05-03", "hints": {"category": "…", "kind": "…", "urgency": "T2H"},
     "expect": {"category": "health.epidemic", "kind": "CONSULTATION", "tier": "T24H",
                "district": "朝阳区", "street": "110105026", "street_named": true,
                "lead": "bj-health", "redirect": null, "unreasonable": false}}

Only ``id``, ``content`` and ``expect`` (with category, kind, tier) are required. Each
request goes through the same steps as the ``accept`` activity: classify, locate, then
(for a dispatch) the routing table.

A set exported from the ledger (``hotline routing corrections``) also carries a
``correction`` on each line: which person's act made the label, and what it teaches
(docs/dispatch.md, "The loop: corrections").
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from activities.dispatch.config import HotlineConfig
from activities.dispatch.decide import first_look
from activities.dispatch.rules import TIERS

FIELDS = ("category", "top", "kind", "tier", "redirect", "district", "street", "lead")
CLASS_FIELDS = ("category", "top", "kind", "tier", "redirect")


class EvalError(ValueError):
    """The labelled file is wrong; the message names the line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hints(_Strict):
    category: str | None = None
    kind: str | None = None
    urgency: str | None = None


class Expected(_Strict):
    category: str
    kind: str
    tier: str
    district: str | None = None
    street: str | None = None
    street_named: bool = False
    lead: str | None = None
    redirect: str | None = None
    unreasonable: bool = False


# What a person did to the machine's choice, as ``hotline routing corrections`` exports it.
CorrectionKind = Literal["DISPATCHED", "ANSWERED_DIRECTLY", "REJECTED", "REASSIGNED",
                         "RETURNED"]
CORRECTION_KINDS: tuple[str, ...] = get_args(CorrectionKind)


class Correction(_Strict):
    """Where a label exported from the ledger came from. ``teaches_tier``: the tier in
    ``expect`` is a person's (a dispatcher chose or confirmed it), so the tier model may
    learn it; otherwise it is the machine's and only the unit or the outcome is a label.
    ``not_lead``: a unit that returned the case (退单) — it must not lead."""

    kind: CorrectionKind
    complaint_id: str
    event_id: str
    at: datetime
    by: str | None = None
    reason: str | None = None
    not_lead: str | None = None
    teaches_tier: bool = False


class Labelled(_Strict):
    id: str
    content: str
    district: str | None = None
    street: str | None = None
    address: str | None = None
    at: date | None = None
    hints: Hints = Hints()
    expect: Expected
    correction: Correction | None = None


def read_jsonl(path: Path, model: type[BaseModel], check: Callable[[Any], str | None]
               = lambda _: None) -> list[Any]:
    """The records of a JSON Lines set as ``model``; a bad line (unparsable, invalid, a
    repeated id, or what ``check`` says is wrong) raises EvalError naming it."""
    records: list[Any] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec: Any = model.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError) as err:
                raise EvalError(f"{path}:{number}: {err}") from None
            problem = f"duplicate id {rec.id}" if rec.id in seen else check(rec)
            if problem:
                raise EvalError(f"{path}:{number}: {problem}")
            seen.add(rec.id)
            records.append(rec)
    return records


def load_labelled(path: Path) -> list[Labelled]:
    """Read a labelled set; a bad line raises EvalError naming it."""
    return read_jsonl(path, Labelled, lambda rec: None if rec.expect.tier in TIERS
                      else f"unknown tier {rec.expect.tier}")


@dataclass(frozen=True)
class Prediction:
    """What the system decided for one request."""

    category: str
    kind: str
    tier: str
    redirect: str | None
    unreasonable: bool
    district: str | None
    street: str | None
    lead: str | None
    rule: str | None

    def value(self, name: str) -> Any:
        if name == "top":
            return self.category.partition(".")[0]
        return getattr(self, name)


def expected_value(exp: Expected, name: str) -> Any:
    if name == "top":
        return exp.category.partition(".")[0]
    return getattr(exp, name)


def predict(config: HotlineConfig, rec: Labelled, *, at: date | None = None) -> Prediction:
    """Run one request through classification, location and routing."""
    day = rec.at or at or date.today()
    look = first_look(config, rec.content, district=rec.district, street=rec.street,
                      address=rec.address, kind_hint=rec.hints.kind,
                      category_hint=rec.hints.category, urgency_hint=rec.hints.urgency, at=day)
    cl, loc = look.classification, look.location
    lead: str | None = None
    rule: str | None = None
    if cl.redirect_to is None and not cl.unreasonable:
        lead, rule = look.route.lead.unit_id, look.route.rule
    return Prediction(cl.category.code, cl.kind, cl.tier, cl.redirect_to, cl.unreasonable,
                      loc.district, loc.street_id, lead, rule)


@dataclass
class ClassStats:
    label: str
    support: int = 0      # expected this class
    predicted: int = 0    # predicted this class
    correct: int = 0

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.support if self.support else None


@dataclass
class Report:
    """Accuracy per field, per-class precision/recall, T2H recall, tier confusion."""

    total: int
    accuracy: dict[str, float]
    correct: dict[str, int]
    street_named: tuple[int, int]          # (correct, of)
    t2h_recall: tuple[int, int]            # (predicted T2H, of expected T2H)
    confusion: dict[str, dict[str, int]]   # expected tier → predicted tier → count
    classes: dict[str, list[ClassStats]]
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def street_named_accuracy(self) -> float:
        ok, of = self.street_named
        return ok / of if of else 1.0

    @property
    def t2h_recall_rate(self) -> float:
        ok, of = self.t2h_recall
        return ok / of if of else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "accuracy": self.accuracy,
            "street_where_named": {"correct": self.street_named[0], "of": self.street_named[1],
                                   "accuracy": self.street_named_accuracy},
            "t2h_recall": {"found": self.t2h_recall[0], "of": self.t2h_recall[1],
                           "recall": self.t2h_recall_rate},
            "tier_confusion": self.confusion,
            "classes": {
                name: [{"label": c.label, "support": c.support, "predicted": c.predicted,
                        "precision": c.precision, "recall": c.recall} for c in stats]
                for name, stats in self.classes.items()
            },
            "errors": self.errors,
        }


def evaluate(config: HotlineConfig, records: list[Labelled], *, at: date | datetime | None = None
             ) -> Report:
    """Evaluate every record; ``at`` is the filing day of records without their own."""
    day = at.date() if isinstance(at, datetime) else at
    correct: Counter[str] = Counter()
    named_ok = named_of = t2h_ok = t2h_of = 0
    confusion = {t: dict.fromkeys(TIERS, 0) for t in TIERS}
    pairs: dict[str, list[tuple[Any, Any]]] = {name: [] for name in CLASS_FIELDS}
    errors: list[dict[str, Any]] = []
    for rec in records:
        pred = predict(config, rec, at=day)
        exp = rec.expect
        wrong: dict[str, Any] = {}
        for name in FIELDS:
            want, got = expected_value(exp, name), pred.value(name)
            if want == got:
                correct[name] += 1
            else:
                wrong[name] = {"expected": want, "got": got}
            if name in pairs:
                pairs[name].append((want, got))
        if exp.street_named:
            named_of += 1
            named_ok += exp.street == pred.street
        if exp.tier == "T2H":
            t2h_of += 1
            t2h_ok += pred.tier == "T2H"
        confusion[exp.tier][pred.tier] += 1
        if wrong:
            errors.append({"id": rec.id, "content": rec.content, "rule": pred.rule, **wrong})
    total = len(records)
    return Report(
        total=total,
        accuracy={n: (correct[n] / total if total else 1.0) for n in FIELDS},
        correct=dict(correct),
        street_named=(named_ok, named_of),
        t2h_recall=(t2h_ok, t2h_of),
        confusion=confusion,
        classes={name: _class_stats(pairs[name]) for name in CLASS_FIELDS},
        errors=errors,
    )


def _class_stats(pairs: list[tuple[Any, Any]]) -> list[ClassStats]:
    stats: dict[str, ClassStats] = {}

    def get(label: Any) -> ClassStats:
        key = "—" if label is None else str(label)
        return stats.setdefault(key, ClassStats(key))

    for want, got in pairs:
        get(want).support += 1
        get(got).predicted += 1
        if want == got:
            get(want).correct += 1
    return sorted(stats.values(), key=lambda s: (-s.support, s.label))
