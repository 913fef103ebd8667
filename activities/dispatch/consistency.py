"""Category consistency: do all the ways callers say one problem land in one category and
one kind of unit? (issue 29: a hotspot counts one category in one street, so a problem
split over four categories never reaches the threshold.)

A phrasing set (``problem_type``, the caller's words, the unit kind expected) is written by
someone who never read the lexicon. For each problem type the measure is the share of its
phrasings in the type's *modal* category — what the set calls the category does not matter,
only that one problem gets one — and the share routed to a unit of the expected kind.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from activities.dispatch.config import HotlineConfig
from activities.dispatch.decide import first_look
from activities.dispatch.evaluation import read_jsonl
from activities.dispatch.registry import STREET_KINDS

UNIT_KINDS = ("STREET", "DEPARTMENT", "UTILITY", "TRANSIT")
# The bus and rail operators are utilities in the registry; callers and the phrasing sets
# treat them as their own kind (a transit line goes to its operator).
TRANSIT_UNITS = frozenset({"bj-bus", "bj-subway", "bj-mtr", "bj-rail-ops"})
TARGET = 0.90


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Phrasing(_Strict):
    id: str
    problem_type: str
    content: str
    district: str | None = None
    expected_unit_kind: str
    expected_category: str
    why: str = ""


def load_phrasings(path: Path) -> list[Phrasing]:
    """Read a phrasing set; a bad line raises ``EvalError`` naming it."""
    return read_jsonl(path, Phrasing, _check)


def _check(item: Any) -> str | None:
    if item.expected_unit_kind not in UNIT_KINDS:
        return f"expected_unit_kind must be one of {', '.join(UNIT_KINDS)}"
    return None


def unit_kind(unit_id: str, kind: str) -> str:
    """The phrasing sets' four kinds from a registry unit id and kind."""
    if kind in STREET_KINDS:
        return "STREET"
    if unit_id in TRANSIT_UNITS:
        return "TRANSIT"
    return "UTILITY" if kind == "utility" else "DEPARTMENT"


@dataclass
class TypeRow:
    """One problem type: where its phrasings went."""

    problem_type: str
    expected_kind: str
    categories: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)

    @property
    def n(self) -> int:
        return sum(self.categories.values())

    @property
    def modal_category(self) -> str:
        return self.categories.most_common(1)[0][0]

    @property
    def modal_share(self) -> float:
        return self.categories.most_common(1)[0][1] / self.n

    @property
    def kind_right(self) -> float:
        return self.kinds[self.expected_kind] / self.n

    def as_dict(self) -> dict[str, Any]:
        return {"problem_type": self.problem_type, "n": self.n,
                "modal_category": self.modal_category,
                "modal_share": round(self.modal_share, 4),
                "categories": dict(self.categories.most_common()),
                "expected_unit_kind": self.expected_kind,
                "unit_kind_right": round(self.kind_right, 4),
                "unit_kinds": dict(self.kinds.most_common())}


@dataclass
class ConsistencyReport:
    rows: list[TypeRow]

    @property
    def types_on_target(self) -> int:
        return sum(r.modal_share >= TARGET for r in self.rows)

    @property
    def mean_modal_share(self) -> float:
        return sum(r.modal_share for r in self.rows) / len(self.rows) if self.rows else 0.0

    @property
    def kind_right(self) -> float:
        total = sum(r.n for r in self.rows)
        return sum(r.kinds[r.expected_kind] for r in self.rows) / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"types": len(self.rows), "types_on_target": self.types_on_target,
                "target": TARGET, "mean_modal_share": round(self.mean_modal_share, 4),
                "unit_kind_right": round(self.kind_right, 4),
                "rows": [r.as_dict() for r in self.rows]}


def consistency(config: HotlineConfig, items: list[Phrasing], *, at: date
                ) -> ConsistencyReport:
    """Classify and route every phrasing as ``accept`` does; group by problem type."""
    rows: dict[str, TypeRow] = {}
    for item in items:
        look = first_look(config, item.content, district=item.district, at=at)
        row = rows.setdefault(item.problem_type,
                              TypeRow(item.problem_type, item.expected_unit_kind))
        row.categories[look.classification.category.code] += 1
        lead = look.route.lead
        row.kinds[unit_kind(lead.unit_id, lead.kind)] += 1
    return ConsistencyReport(sorted(rows.values(), key=lambda r: (r.modal_share, r.problem_type)))
