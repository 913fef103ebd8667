"""Classification (kind, category, tier) and first routing, from the lexicon in data.

``categories.yaml`` holds the keywords; this module only applies them. Operator hints
(category_hint, urgency_hint) take precedence over the text and are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from activities.registry import CITY_CENTRE_ID, Registry
from activities.rules import TIERS, RulesError, describe_validation_error, load_yaml
from workflows.model import Unit

KINDS = ("CONSULTATION", "HELP", "COMPLAINT", "REPORT", "SUGGESTION", "PRAISE")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Lead(_Strict):
    kind: Literal["street", "department", "utility"]
    unit: str | None = None

    @model_validator(mode="after")
    def _unit_for_org(self) -> Lead:
        if (self.kind == "street") != (self.unit is None):
            raise ValueError("lead.unit is required for department/utility and not for street")
        return self


class Category(_Strict):
    code: str
    name: str
    keywords: list[str]
    tier: str
    lead: Lead

    @model_validator(mode="after")
    def _tier(self) -> Category:
        if self.tier not in TIERS:
            raise ValueError(f"unknown tier {self.tier!r}")
        if "." not in self.code:
            raise ValueError(f"category code {self.code!r} must be two-level: top.sub")
        return self


class Lexicon(_Strict):
    version: int
    emergency_keywords: list[str]
    redirect: dict[str, list[str]]
    unreasonable_keywords: list[str]
    kinds: dict[str, list[str]]
    categories: list[Category]

    @model_validator(mode="after")
    def _consistent(self) -> Lexicon:
        codes = [c.code for c in self.categories]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"duplicate category codes {dupes}")
        if not self.categories or self.categories[-1].keywords:
            raise ValueError("the last category must be the fallback, with no keywords")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown kinds {unknown}; kinds are {', '.join(KINDS)}")
        return self

    def category(self, code: str) -> Category | None:
        return next((c for c in self.categories if c.code == code), None)


def load_lexicon(path: Path, registry: Registry) -> Lexicon:
    """Read and validate ``categories.yaml`` against the unit registry."""
    try:
        lexicon = Lexicon.model_validate(load_yaml(path))
    except ValidationError as err:
        raise RulesError(describe_validation_error(path, err)) from None
    for i, cat in enumerate(lexicon.categories):
        if cat.lead.unit and registry.get(cat.lead.unit) is None:
            raise RulesError(
                f"{path}: categories.{i}.lead.unit: {cat.lead.unit!r} is not in the unit registry"
            )
    return lexicon


@dataclass(frozen=True)
class Classification:
    kind: str
    category: Category
    tier: str
    emergency: bool
    redirect_to: str | None
    unreasonable: bool
    hints_used: list[str] = field(default_factory=list)


def _first_hit(text: str, words: list[str]) -> str | None:
    return next((w for w in words if w in text), None)


def classify(
    lexicon: Lexicon,
    content: str,
    *,
    kind_hint: str | None = None,
    category_hint: str | None = None,
    urgency_hint: str | None = None,
) -> Classification:
    """Kind, category and tier of a request; hints win and are listed in ``hints_used``."""
    hints: list[str] = []
    redirect_to = next(
        (service for service, words in lexicon.redirect.items() if _first_hit(content, words)),
        None,
    )
    unreasonable = _first_hit(content, lexicon.unreasonable_keywords) is not None

    category = lexicon.category(category_hint) if category_hint else None
    if category is not None:
        hints.append("category")
    else:
        category = next(
            (c for c in lexicon.categories if _first_hit(content, c.keywords)),
            lexicon.categories[-1],
        )

    if kind_hint in KINDS:
        kind = kind_hint
        hints.append("kind")
    else:
        kind = next((k for k, words in lexicon.kinds.items() if _first_hit(content, words)),
                    "COMPLAINT")

    emergency = _first_hit(content, lexicon.emergency_keywords) is not None
    if urgency_hint in TIERS:
        tier = urgency_hint
        hints.append("urgency")
    elif emergency:
        tier = "T2H"
    else:
        tier = category.tier
    return Classification(kind, category, tier, emergency, redirect_to, unreasonable, hints)


@dataclass(frozen=True)
class Location:
    district: str | None
    street_id: str | None


def locate(
    registry: Registry, district: str | None, street: str | None, address: str | None,
    content: str,
) -> Location:
    """District and street from the event fields, else from the address and text."""
    dist = registry.district(district)
    street_id = registry.street(dist, street)
    if street_id is None:
        for text in (address, content):
            if text:
                street_id = registry.find_street_in(dist, text)
                if street_id:
                    break
    if dist is None and street_id is not None:
        unit = registry.get(street_id)
        dist = unit.district if unit else None
    if dist is None:
        for name in registry.districts:
            if name in (address or "") or name in content:
                dist = name
                break
    return Location(dist, street_id)


def route(registry: Registry, category: Category, location: Location) -> Unit:
    """The lead unit: the named department/utility, else the street, else its district."""
    unit_id: str
    if category.lead.unit:
        unit_id = category.lead.unit
    elif location.street_id:
        unit_id = location.street_id
    elif location.district:
        unit_id = registry.districts[location.district]
    else:
        unit_id = CITY_CENTRE_ID
    unit = registry.get(unit_id)
    if unit is None:  # load_lexicon checked the slugs, so this is a registry bug
        raise LookupError(f"unit {unit_id!r} not in the registry")
    return unit
