"""Routing (权责清单): which unit leads a case and which assist.

The rules are data (``routing.yaml``): category × place → lead and assisting units, with
effective dates; this module validates them at start-up and applies them
(:func:`decide_for`, given the table and the registry). The activities ask through
:func:`activities.dispatch.decide.decide_route`, which takes the whole configuration.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from activities.dispatch.lexicon import Lexicon
from activities.dispatch.location import Location
from activities.dispatch.registry import CITY_CENTRE_ID, STREET_KINDS, Registry
from activities.dispatch.rules import RulesError, describe_validation_error, load_yaml
from activities.dispatch.textindex import any_of
from workflows.model import Unit

KEYWORD_TARGETS = ("street", "district", "city", "property")


class RoutingError(RulesError):
    """The routing table is wrong; the message names the file and the rule."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Where(_Strict):
    district: list[str] = []
    street_kind: list[str] = []
    street: list[str] = []
    # Regular expressions on the request's words: the rule applies when one matches
    # (a transit line names its operator: "14号线" → 京港地铁).
    mentions: list[str] = []
    # ... and none of these does (the same words said of something else: 漏气 beside
    # stored gas cylinders is a leak, the gas company's).
    unless: list[str] = []

    @field_validator("mentions", "unless")
    @classmethod
    def _patterns(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"{info.field_name}: {pattern!r} is not a regular expression: "
                                 f"{err}") from None
        return value

    @model_validator(mode="after")
    def _unless_needs_mentions(self) -> Where:
        if self.unless and not self.mentions:
            raise ValueError("unless: only beside mentions (it says when the words do not count)")
        return self

    @field_validator("street_kind")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        bad = [k for k in value if k not in STREET_KINDS]
        if bad:
            raise ValueError(f"unknown street kinds {bad} (use {', '.join(STREET_KINDS)})")
        return value

    @property
    def specificity(self) -> int:
        # What the caller's own words name outranks a district or a kind of street, not a
        # list of streets.
        return (4 * bool(self.street) + 3 * bool(self.mentions) + 2 * bool(self.district)
                + bool(self.street_kind))

    @cached_property
    def mention(self) -> re.Pattern[str] | None:
        return any_of(self.mentions)

    @cached_property
    def exception(self) -> re.Pattern[str] | None:
        return any_of(self.unless)

    def mentioned(self, text: str) -> bool:
        """Whether the words name what the rule is about (no ``mentions``: always)."""
        if self.mention is None:
            return True
        return bool(self.mention.search(text)) and not (
            self.exception is not None and self.exception.search(text))


def _names(pattern: str, code: str) -> bool:
    """Whether a rule's category entry ("*", "top.*" or a code) names ``code``."""
    return pattern == "*" or pattern == code or (
        pattern.endswith(".*") and code.startswith(pattern[:-1]))


class Rule(_Strict):
    id: str = Field(min_length=1)
    category: str | list[str]
    # Categories the rule leaves to their own rules although ``category`` covers them
    # ("*" but not a utility's fault that happens to name a park or a cable company).
    except_category: list[str] = []
    where: Where = Where()
    lead: list[str] = Field(min_length=1)
    assisting: list[str] = []
    valid_from: date | None = None
    valid_to: date | None = None
    # The words name the remit so exactly (炸街, a polluter's discharge) that the learned
    # model's reading "a matter in the street's territory" does not move the lead.
    keep_lead: bool = False

    @model_validator(mode="after")
    def _kept_lead_is_a_units(self) -> Rule:
        if self.keep_lead and all(t in KEYWORD_TARGETS for t in self.lead):
            raise ValueError("keep_lead: only on a rule led by a department or utility "
                             "(the model's street head never moves a street's lead)")
        return self

    @property
    def categories(self) -> list[str]:
        return [self.category] if isinstance(self.category, str) else list(self.category)

    @property
    def reads_words_only(self) -> bool:
        """Whether the rule is chosen by the caller's words whatever the category
        (category "*" with ``mentions``): the words name the remit."""
        return bool(self.where.mentions) and self.categories == ["*"]

    @property
    def category_specificity(self) -> int:
        cats = self.categories
        if cats == ["*"]:
            return 0
        return 1 if any(c.endswith(".*") for c in cats) else 2

    @property
    def rank(self) -> tuple[int, int, int]:
        dated = self.valid_from is not None or self.valid_to is not None
        return (self.where.specificity, self.category_specificity, int(dated))

    def covers(self, code: str) -> bool:
        return (any(_names(c, code) for c in self.categories)
                and not any(_names(c, code) for c in self.except_category))

    def valid_at(self, day: date) -> bool:
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_to is None or day < self.valid_to


class RoutingTable(_Strict):
    version: int
    valid_from: date
    fallback: list[str] = ["district", "city"]
    rules: list[Rule] = Field(min_length=1)

    _cache: dict[str, list[Rule]] = PrivateAttr(default_factory=dict)

    def rule(self, rule_id: str) -> Rule | None:
        """The rule of that id, if the table has one (a scan: about a hundred rules, asked
        once a decision, and nothing cached to go stale in a copy)."""
        return next((r for r in self.rules if r.id == rule_id), None)

    def candidates(self, code: str) -> list[Rule]:
        """The rules for a category, most specific first (cached per code)."""
        cache = self._cache
        if code not in cache:
            rules = [r for r in self.rules if r.covers(code)]
            cache[code] = sorted(rules, key=lambda r: r.rank, reverse=True)
        return cache[code]


@dataclass(frozen=True)
class RouteDecision:
    """The lead unit, the assisting units, and which rule decided (for the record)."""

    lead: Unit
    assisting: list[Unit] = field(default_factory=list)
    rule: str = "default"
    table_version: int = 0
    # why the lead is not the rule's first choice ("street unknown", "excluded: …")
    note: str = ""


def _day(at: date | datetime | None) -> date:
    if at is None:
        return date.today()
    return at.date() if isinstance(at, datetime) else at


def _matches(rule: Rule, registry: Registry, location: Location, day: date,
             text: str) -> bool:
    if not rule.valid_at(day):
        return False
    where = rule.where
    if not where.mentioned(text):
        return False
    if where.district and location.district not in where.district:
        return False
    if where.street or where.street_kind:
        if location.street_id is None:
            return False
        if where.street and location.street_id not in where.street:
            return False
        rec = registry.record(location.street_id)
        if where.street_kind and (rec is None or rec.kind not in where.street_kind):
            return False
    return True


def _resolve(target: str, registry: Registry, location: Location, day: date) -> str | None:
    if target == "street":
        return registry.current(location.street_id, day) if location.street_id else None
    if target == "district":
        return registry.districts.get(location.district) if location.district else None
    if target == "city":
        return CITY_CENTRE_ID
    if target == "property":
        return location.property_company
    rec = registry.record(target)
    return target if rec is not None and rec.valid_at(day) else None


def decide_for(
    table: RoutingTable, registry: Registry, category_code: str, location: Location, *,
    at: date | datetime | None = None, exclude: Collection[str] = (), text: str = "",
) -> RouteDecision:
    """Apply the routing table: the most specific rule valid on ``at`` for the place (and,
    for rules with ``mentions``, the request's ``text``)."""
    day = _day(at)
    rule = next((r for r in table.candidates(category_code)
                 if _matches(r, registry, location, day, text)), None)
    if rule is None:  # load_routing_table checks coverage; this is a bug or a date before it
        raise LookupError(f"no routing rule for {category_code} on {day}")
    note = ""
    lead_id: str | None = None
    for i, target in enumerate([*rule.lead, *table.fallback]):
        uid = _resolve(target, registry, location, day)
        if uid is None:
            continue
        if uid in exclude:
            note = note or f"{uid} returned the case"
            continue
        lead_id = uid
        if i and not note:
            note = f"{', '.join(rule.lead)} unknown for this place"
        break
    if lead_id is None:  # everyone returned it: the city centre coordinates (no ping-pong)
        lead_id, note = CITY_CENTRE_ID, "every candidate returned the case"
    assisting: list[Unit] = []
    for target in rule.assisting:
        uid = _resolve(target, registry, location, day)
        unit = registry.get(uid) if uid else None
        if unit and uid != lead_id and uid not in exclude and unit not in assisting:
            assisting.append(unit)
    lead = registry.get(lead_id)
    if lead is None:
        raise LookupError(f"unit {lead_id!r} not in the registry")
    return RouteDecision(lead, assisting, rule.id, table.version, note)


# --- loading and validation ------------------------------------------------------------------


def load_routing_table(path: Path, registry: Registry, lexicon: Lexicon,
                       *, today: date | None = None) -> RoutingTable:
    """Read ``routing.yaml`` and check it against the registry and the lexicon.

    Raises:
        RoutingError: naming the rule (index and id) and what is wrong: an unknown
            category, unit, district or street; dates out of order; two rules that tie;
            a category with no rule for some day.
    """
    data: Any = load_yaml(path)
    try:
        table = RoutingTable.model_validate(data)
    except ValidationError as err:
        raise RoutingError(describe_validation_error(path, err)) from None
    _validate(path, table, registry, lexicon, today or date.today())
    return table


def _validate(path: Path, table: RoutingTable, registry: Registry, lexicon: Lexicon,
              today: date) -> None:
    codes = [c.code for c in lexicon.categories]
    tops = {c.top for c in lexicon.categories}
    seen: dict[str, int] = {}
    for i, rule in enumerate(table.rules):
        where = f"{path}: rules[{i}] ({rule.id})"
        if rule.id in seen:
            raise RoutingError(f"{where}: duplicate id (also rules[{seen[rule.id]}])")
        seen[rule.id] = i
        for cat in [*rule.categories, *rule.except_category]:
            if cat == "*":
                continue
            if cat.endswith(".*"):
                if cat[:-2] not in tops:
                    raise RoutingError(f"{where}: category {cat!r}: no category has top "
                                       f"level {cat[:-2]!r}")
            elif cat not in codes:
                raise RoutingError(f"{where}: unknown category {cat!r} (not in "
                                   "categories.yaml)")
        if rule.valid_from and rule.valid_to and rule.valid_from >= rule.valid_to:
            raise RoutingError(f"{where}: valid_from {rule.valid_from} is not before "
                               f"valid_to {rule.valid_to}")
        for target in [*rule.lead, *rule.assisting]:
            if target in KEYWORD_TARGETS:
                continue
            rec = registry.record(target)
            if rec is None:
                raise RoutingError(f"{where}: unknown unit {target!r} (not in the registry)")
            if rec.valid_to is not None and (rule.valid_to is None or rule.valid_to > rec.valid_to):
                raise RoutingError(f"{where}: unit {target} ({rec.name}) ends on "
                                   f"{rec.valid_to}, before the rule does")
        for name in rule.where.district:
            if name not in registry.districts:
                raise RoutingError(f"{where}: unknown district {name!r}")
        for code in rule.where.street:
            rec = registry.record(code)
            if rec is None or rec.kind not in STREET_KINDS:
                raise RoutingError(f"{where}: {code!r} is not a street, town or township")
    for target in table.fallback:
        if target not in KEYWORD_TARGETS and registry.record(target) is None:
            raise RoutingError(f"{path}: fallback: unknown unit {target!r}")
    _check_ties(path, table, registry)
    _check_coverage(path, table, codes, today)


def _overlap(a: Rule, b: Rule, kind_of: Callable[[str], str | None]) -> bool:
    def span(r: Rule) -> tuple[date, date]:
        return (r.valid_from or date.min, r.valid_to or date.max)

    (a0, a1), (b0, b1) = span(a), span(b)
    if not (a0 < b1 and b0 < a1):
        return False
    wa, wb = a.where, b.where
    for xs, ys in ((wa.district, wb.district), (wa.street_kind, wb.street_kind),
                   (wa.street, wb.street), (wa.mentions, wb.mentions)):
        if xs and ys and not set(xs) & set(ys):
            return False
    # Streets named by one rule that are none of the kinds the other names (the airport's
    # street office and a rule for towns) never meet.
    for named, kinds in ((wa.street, wb.street_kind), (wb.street, wa.street_kind)):
        if named and kinds and not {kind_of(code) for code in named} & set(kinds):
            return False
    return True


def _check_ties(path: Path, table: RoutingTable, registry: Registry) -> None:
    def kind_of(code: str) -> str | None:
        rec = registry.record(code)
        return None if rec is None else rec.kind

    rules = table.rules
    for i, a in enumerate(rules):
        for j in range(i + 1, len(rules)):
            b = rules[j]
            if a.rank != b.rank or not _overlap(a, b, kind_of):
                continue
            shared = [c for c in a.categories if any(
                c == d or c == "*" or d == "*" or (c.endswith(".*") and d.startswith(c[:-1]))
                or (d.endswith(".*") and c.startswith(d[:-1])) for d in b.categories)]
            if shared:
                raise RoutingError(
                    f"{path}: rules[{i}] ({a.id}) and rules[{j}] ({b.id}) both apply to "
                    f"{shared[0]} with the same specificity: make one more specific or "
                    "separate their dates"
                )


def _check_coverage(path: Path, table: RoutingTable, codes: list[str], today: date) -> None:
    days = {table.valid_from, max(today, table.valid_from)}
    for rule in table.rules:
        for d in (rule.valid_from, rule.valid_to):
            if d is not None and d >= table.valid_from:
                days.add(d)
    for code in codes:
        for day in sorted(days):
            if not any(r.covers(code) and r.valid_at(day) and not r.where.specificity
                       for r in table.rules):
                raise RoutingError(f"{path}: no rule routes {code} on {day} wherever it "
                                   "happens (add a rule without `where`)")
