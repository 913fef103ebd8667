"""The case-handling rules file (``rules.yaml``): loaded and validated once at start-up.

Every number the lifecycle uses lives in that file; this module only gives it types, checks
it, and turns tiers into deadlines (natural time, or working days on the calendar).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from activities.dispatch.workdays import Calendar

TIERS = ("T2H", "T24H", "T7D", "T15D")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
CALENDAR_FILE = "calendar.yaml"


class RulesError(ValueError):
    """The rules file is missing or wrong; the message names the file and the key."""


def parse_duration(text: str | int | float) -> timedelta:
    """``"15m"``, ``"2h"``, ``"7d"`` → timedelta; a bare number is seconds."""
    if isinstance(text, int | float):
        return timedelta(seconds=float(text))
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 15m, 2h, 7d)")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TierRule(_Strict):
    deadline: timedelta
    sign_for: timedelta
    working_days: bool = False

    @field_validator("deadline", "sign_for", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @model_validator(mode="after")
    def _sign_before_deadline(self) -> TierRule:
        if self.sign_for >= self.deadline:
            raise ValueError("sign_for must be shorter than the deadline")
        if self.working_days and self.deadline.total_seconds() % 86400:
            raise ValueError("a working-day deadline must be whole days")
        return self


class LadderRule(_Strict):
    warning_fractions: list[float]
    sign_for_misses_to_district: int = Field(ge=1)
    city_after_overdue_fraction: float = Field(gt=0)
    urges_to_escalate: int = Field(ge=1)
    max_returns: int = Field(ge=0)

    @field_validator("warning_fractions")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        if any(not 0 < f < 1 for f in value) or value != sorted(set(value)):
            raise ValueError("warning fractions must be increasing, each between 0 and 1")
        return value


class ExtensionRule(_Strict):
    max_per_case: int = Field(ge=0)
    tiers: list[str]
    max_fraction_of_tier: float = Field(gt=0)
    auto_grant_max_days: int = Field(ge=0)


class CallbackRule(_Strict):
    due: dict[str, timedelta]
    unreached_attempts: int = Field(ge=1)
    unreached_window: timedelta

    @field_validator("due", mode="before")
    @classmethod
    def _due(cls, value: Any) -> dict[str, timedelta]:
        if not isinstance(value, dict):
            raise ValueError("must map each tier to a duration")
        return {str(k): parse_duration(v) for k, v in value.items()}

    @field_validator("unreached_window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> timedelta:
        return parse_duration(value)


class ReopenRule(_Strict):
    max_reopens: int = Field(ge=0)
    max_tier: str


class Weights(_Strict):
    response: float = Field(ge=0, le=1)
    resolution: float = Field(ge=0, le=1)
    satisfaction: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> Weights:
        total = self.response + self.resolution + self.satisfaction
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"weights must add up to 1, they add up to {total:g}")
        return self


class ReviewRule(_Strict):
    """The dispatch desk (派单复核): below ``min_confidence`` a person decides."""

    min_confidence: float = Field(ge=0, le=1)
    window: timedelta  # then the top candidate is dispatched, and the case marked so
    # A T2H at the desk (its only place outside Beijing) waits at most this long; the
    # same as ``window`` when not given.
    urgent_window: timedelta | None = None

    @field_validator("window", "urgent_window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> timedelta | None:
        return None if value is None else parse_duration(value)

    @model_validator(mode="after")
    def _urgent_not_longer(self) -> ReviewRule:
        if self.urgent_window is not None and self.urgent_window > self.window:
            raise ValueError(f"urgent_window ({self.urgent_window}) is longer than window "
                             f"({self.window}): a T2H must not wait longer than other cases")
        return self

    def window_for(self, tier: str) -> timedelta:
        """How long a case of ``tier`` waits at the desk before its top candidate leads."""
        return self.urgent_window if tier == "T2H" and self.urgent_window else self.window


class ModelRule(_Strict):
    """Limits on the learned dispatch model (:func:`activities.dispatch.decide.classify_request`).

    ``not_in_progress``: regular expressions for words that say a matter is long-standing
    or over ("成天", "好几年了", "上个月"): the model reads danger in "冒黑烟" whenever it
    is said, so it does not transfer a request with these words; the rules' own patterns
    for an emergency in progress still do.
    ``tier_min_p``: the model's tier replaces the rules' only where the model gives it at
    least this share of the four tiers' probability (a dispatcher reading "rather than the
    rules' T7D" should see a model that is more sure than not).
    ``tier_min_p_over``: a higher bar by the tier the rules chose (``{T7D: 0.6}``): over
    the rules' T7D the model at 0.5–0.6 was right 39 times and the rules 61 times in the
    sets it never trained on (v12–v23).
    ``public_road``: words that put the matter on a public road ("大街上", "马路边"): there
    the model's lead head does not hand a utility's case to the street (it reads
    "下水道堵了" with the street's name as a compound's drain; parking by the road is
    still the street's, as every writer labels it).
    ``utility_network``: words that put a utility's fault on its network, beyond one
    building ("整个小区停电", "供电局的电缆", "外部管网"): there too the lead head does not
    hand the case to the street.
    ``street_emergency``: an emergency the street answers in two hours, never a transfer
    by the model (someone stuck in a lift: the model reads "高血压" as a 120 call).
    ``equipment_smoke``: smoke or sparks from electrical equipment (a transformer, a meter
    box, a charging post): writers give it to the power company or the street in two hours
    (28 of 35 in our sets), so the model does not transfer it to 119; the rules' fire
    patterns (flames, smoke spreading) still do, and so does the model where ``flames``
    are said.
    ``open_burning``: straw, rubbish or leaves burnt in the open, or a chimney smoking:
    the smoke is the street's or ecology and environment's to stop (T24H: 6 of 6 such
    requests in our sets that said no flames spreading; no chimney's smoke in them was a
    transfer), so the model does not transfer it to 119 unless ``flames`` are said.
    """

    not_in_progress: tuple[re.Pattern[str], ...] = ()
    equipment_smoke: tuple[re.Pattern[str], ...] = ()
    open_burning: tuple[re.Pattern[str], ...] = ()
    flames: tuple[re.Pattern[str], ...] = ()
    street_emergency: tuple[re.Pattern[str], ...] = ()
    tier_min_p: float = Field(default=0.5, ge=0, le=1)
    tier_min_p_over: dict[str, Annotated[float, Field(ge=0, le=1)]] = {}
    public_road: tuple[re.Pattern[str], ...] = ()
    utility_network: tuple[re.Pattern[str], ...] = ()

    @field_validator("not_in_progress", "public_road", "utility_network", "equipment_smoke",
                     "flames", "street_emergency", "open_burning", mode="before")
    @classmethod
    def _patterns(cls, value: Any) -> tuple[re.Pattern[str], ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError("must be a list of regular expressions")
        compiled = []
        for pattern in value:
            try:
                compiled.append(re.compile(pattern))
            except re.error as err:
                raise ValueError(f"{pattern!r} is not a regular expression: {err}") from None
        return tuple(compiled)

    @field_validator("tier_min_p_over")
    @classmethod
    def _tiers(cls, value: dict[str, float]) -> dict[str, float]:
        if unknown := sorted(set(value) - set(TIERS)):
            raise ValueError(f"names no tier: {', '.join(unknown)} (use {', '.join(TIERS)})")
        return value

    def tier_bar(self, rules_tier: str) -> float:
        """How sure the model must be for its tier to replace the rules' ``rules_tier``."""
        return self.tier_min_p_over.get(rules_tier, self.tier_min_p)

    def on_public_road(self, text: str) -> str | None:
        """The words of ``text`` that put the matter on a public road, if any."""
        return _first_match(self.public_road, text)

    def on_utility_network(self, text: str) -> str | None:
        """The words of ``text`` that put a utility's fault on its network, if any."""
        return _first_match(self.utility_network, text)

    def street_emergency_in(self, text: str) -> str | None:
        """The words of ``text`` that make it the street's emergency (a lift), if any."""
        return _first_match(self.street_emergency, text)

    def smoke_but_no_fire(self, text: str) -> tuple[str, str] | None:
        """The words of ``text`` that say the smoke is no fire for 119, and why: electrical
        equipment smoking or sparking, or something burnt in the open; None where
        ``flames`` are said, or neither is."""
        if _first_match(self.flames, text):
            return None
        if smoke := _first_match(self.equipment_smoke, text):
            return smoke, "is equipment for its owner to make safe"
        if burning := _first_match(self.open_burning, text):
            return burning, "is burning in the open or a chimney's smoke, not a fire for 119"
        return None

    def in_progress_ruled_out(self, text: str) -> str | None:
        """The words of ``text`` that say the matter is not happening now, if any."""
        return _first_match(self.not_in_progress, text)


def _first_match(patterns: tuple[re.Pattern[str], ...], text: str) -> str | None:
    """The words the first pattern that matches ``text`` found, or None."""
    for pattern in patterns:
        if found := pattern.search(text):
            return found.group(0)
    return None


class Rules(_Strict):
    version: int
    tiers: dict[str, TierRule]
    ladder: LadderRule
    extension: ExtensionRule
    callback: CallbackRule
    reopen: ReopenRule
    weights: Weights
    calendar: Calendar
    review: ReviewRule = Field(default_factory=lambda: ReviewRule.model_validate(
        {"min_confidence": 0.6, "window": "15m"}))
    model: ModelRule = Field(default_factory=ModelRule)

    @model_validator(mode="after")
    def _every_tier(self) -> Rules:
        for what, keys in (("tiers", self.tiers), ("callback.due", self.callback.due)):
            missing = [t for t in TIERS if t not in keys]
            unknown = [t for t in keys if t not in TIERS]
            if missing or unknown:
                raise ValueError(f"{what}: missing {missing}, unknown {unknown}")
        for name in [*self.extension.tiers, self.reopen.max_tier]:
            if name not in TIERS:
                raise ValueError(f"unknown tier {name!r}; tiers are {', '.join(TIERS)}")
        return self

    def deadline(self, tier: str, start: datetime, scale: float = 1.0, *,
                 provisional: bool = False) -> datetime:
        """When a case of ``tier`` accepted at ``start`` is due, the time scale applied.

        Working-day tiers are first laid on the calendar in real time, then the whole span
        is scaled, so a demo keeps the shape of weekends and holidays.

        Raises:
            CalendarNotCovered: a working-day deadline reaches a year ``calendar.yaml`` does
                not list (unless ``provisional``: then that year's weekdays count).
        """
        rule = self.tiers[tier]
        if rule.working_days:
            real_due = self.calendar.add_workdays(start, rule.deadline.days,
                                                  provisional=provisional)
        else:
            real_due = start + rule.deadline
        return start + (real_due - start) * scale


def load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise RulesError(f"{path}: file not found") from err
    except yaml.YAMLError as err:
        raise RulesError(f"{path}: not valid YAML: {err}") from err


def describe_validation_error(path: Path, err: ValidationError) -> str:
    """One line per problem: ``file: key.path: message``."""
    lines = []
    for problem in err.errors():
        where = ".".join(str(p) for p in problem["loc"]) or "(top level)"
        lines.append(f"{path}: {where}: {problem['msg']}")
    return "\n".join(lines)


def load_calendar(path: Path) -> Calendar:
    """Read and validate ``calendar.yaml``; raise :class:`RulesError` naming the bad key."""
    data = load_yaml(path)
    try:
        return Calendar.model_validate(data)
    except ValidationError as err:
        raise RulesError(describe_validation_error(path, err)) from None


def load_rules(path: Path) -> Rules:
    """Read and validate ``rules.yaml`` and the ``calendar.yaml`` beside it; raise
    :class:`RulesError` naming the file and every bad key."""
    data = load_yaml(path)
    if isinstance(data, dict) and "calendar" not in data:
        # The calendar is its own file so that the yearly update is one reviewed change.
        data["calendar"] = load_calendar(path.parent / CALENDAR_FILE)
    try:
        return Rules.model_validate(data)
    except ValidationError as err:
        raise RulesError(describe_validation_error(path, err)) from None
