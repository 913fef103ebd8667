"""The demo city's words, read once from ``workers/devstack/data/*.yaml`` and checked.

- ``templates.yaml``: the kinds of request citizens file (with ``{slots}``), the order
  emergencies are used in, and the departments a unit whistles in per kind of request;
- ``phrases.yaml``: the words that fill the slots, and what units, citizens and
  supervisors say;
- ``districts.yaml``: each district's call volume and centre.

Order in these files matters (a seed picks by position), so the same files give the same
city. A file that is missing, malformed or inconsistent (an unknown slot, kind, outcome or
template key) raises :class:`CityDataError` naming the file and the entry.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

DATA_DIR = Path(__file__).parent / "data"

# What acceptance should decide for a template (the workflow's Outcome values).
DISPATCH: Final = "DISPATCH"
ANSWERED_DIRECTLY: Final = "ANSWERED_DIRECTLY"
REDIRECTED: Final = "REDIRECTED"

# A unit's result and a citizen's satisfaction (the Avro enums' symbols).
RESOLVED: Final = "RESOLVED"
PARTLY_RESOLVED: Final = "PARTLY_RESOLVED"
NOT_RESOLVABLE: Final = "NOT_RESOLVABLE"
SATISFIED: Final = "SATISFIED"
BASICALLY_SATISFIED: Final = "BASICALLY_SATISFIED"
UNSATISFIED: Final = "UNSATISFIED"

# The slots a template's text may use (filled by city._slots).
SLOTS = frozenset({
    "loc", "estate", "road", "road2", "place", "spot", "bld", "unit_no", "floor", "district",
    "time", "when", "days", "months", "years", "year", "amount", "bus", "item", "food", "job",
    "workplace", "line", "age",
})


class CityDataError(ValueError):
    """A data file of the demo city is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Template:
    """One kind of citizen request, with ``{slots}`` filled per case.

    Slots: ``loc`` (district/street/road/estate as a caller says it), ``estate``,
    ``road``, ``road2``, ``place`` (a spot on the road), ``spot`` (a spot in the estate),
    ``bld``, ``unit_no``, ``floor``, ``district``, ``time``, ``when`` (today, for
    emergencies), ``days``, ``months``, ``years``, ``year``, ``amount``, ``bus``,
    ``item``, ``food``, ``job``, ``workplace``, ``line`` (subway), ``age``.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    key: str
    category: str
    kind: Literal["CONSULTATION", "HELP", "COMPLAINT", "REPORT", "SUGGESTION", "PRAISE"]
    text: str
    weight: float = 1.0
    outcome: Literal["DISPATCH", "ANSWERED_DIRECTLY", "REDIRECTED"] = DISPATCH
    emergency: bool = False


@dataclass(frozen=True)
class WhistleGroup:
    """Departments a lead unit calls in (吹哨) for one kind of request, and the issue why."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    units: tuple[str, ...]
    issue: str


Words = tuple[str, ...]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _TemplatesFile(_Strict):
    templates: tuple[Template, ...]
    emergency_order: Words
    whistle_groups: dict[str, WhistleGroup]


class SlotWords(_Strict):
    """The words that fill a template's slots."""

    times: Words
    when: Words
    days: Words
    months: Words
    years: Words
    amounts: Words
    items: Words
    foods: Words
    jobs: Words
    workplaces: Words
    road_suffixes: Words
    estate_suffixes: Words
    places: Words
    spots: Words
    surnames: Words
    given: Words

    @field_validator("*")
    @classmethod
    def _not_empty(cls, value: Words) -> Words:
        if not value:
            raise ValueError("needs at least one word")
        return value


class Phrases(_Strict):
    """What the units, citizens and supervisors of the demo city say."""

    slots: SlotWords
    progress: Words
    replies: dict[str, Words]  # by the unit's result
    comments: dict[str, Words]  # by the citizen's satisfaction
    unreached_comment: str
    return_reasons: Words
    extension_reasons: Words
    supervisor_grant: str
    supervisor_deny: str
    supplements: Words
    urges: Words
    second_urges: Words
    withdraw_reasons: Words
    repeat_prefixes: Words

    @field_validator("progress", "return_reasons", "extension_reasons", "supplements",
                     "urges", "second_urges", "withdraw_reasons", "repeat_prefixes")
    @classmethod
    def _not_empty(cls, value: Words) -> Words:
        if not value:
            raise ValueError("needs at least one phrase")
        return value

    @field_validator("replies", "comments")
    @classmethod
    def _every_key(cls, value: dict[str, Words], info: ValidationInfo) -> dict[str, Words]:
        wanted = {"replies": (RESOLVED, PARTLY_RESOLVED, NOT_RESOLVABLE),
                  "comments": (SATISFIED, BASICALLY_SATISFIED, UNSATISFIED)}[str(info.field_name)]
        missing = [k for k in wanted if not value.get(k)]
        unknown = sorted(set(value) - set(wanted))
        if missing or unknown:
            raise ValueError(f"needs phrases for exactly {', '.join(wanted)}"
                             f" (missing: {', '.join(missing) or '-'}; "
                             f"unknown: {', '.join(unknown) or '-'})")
        return value


class Districts(_Strict):
    """Each district's relative call volume and approximate centre (lat, lon)."""

    call_weights: dict[str, float]
    centres: dict[str, tuple[float, float]]


@dataclass(frozen=True)
class CityData:
    """Everything the city generator reads from the data files."""

    templates: tuple[Template, ...]
    emergency_order: tuple[str, ...]
    whistle_groups: Mapping[str, WhistleGroup]
    phrases: Phrases
    districts: Districts

    @property
    def words(self) -> SlotWords:
        return self.phrases.slots


_Model = TypeVar("_Model", bound=BaseModel)


def _load(path: Path, model: type[_Model]) -> _Model:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CityDataError(f"cannot read {path}: {exc}") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise CityDataError(f"{path}: {exc}") from exc


def _check_templates(path: Path, data: _TemplatesFile) -> None:
    """What one entry cannot say by itself: unique keys, known slots and references."""
    problems: list[str] = []
    keys = [t.key for t in data.templates]
    problems += [f"template {k} appears twice" for k in sorted({k for k in keys
                                                                if keys.count(k) > 1})]
    by_key = {t.key: t for t in data.templates}
    for tpl in data.templates:
        try:
            used = {name for _, name, _, _ in string.Formatter().parse(tpl.text) if name}
        except ValueError as exc:
            problems.append(f"template {tpl.key}: {exc}")
            continue
        unknown = sorted(used - SLOTS)
        if unknown:
            problems.append(f"template {tpl.key} uses unknown slots {', '.join(unknown)}")
    for key in data.emergency_order:
        if key not in by_key or not by_key[key].emergency:
            problems.append(f"emergency_order: {key} is not an emergency template")
    if not any(t.outcome == ANSWERED_DIRECTLY for t in data.templates):
        problems.append("no template with outcome ANSWERED_DIRECTLY")
    if not any(t.outcome == REDIRECTED for t in data.templates):
        problems.append("no template with outcome REDIRECTED")
    if not data.emergency_order:
        problems.append("emergency_order is empty")
    for key, group in data.whistle_groups.items():
        if key not in by_key:
            problems.append(f"whistle_groups: no template {key}")
        if not group.units:
            problems.append(f"whistle_groups: {key} calls no units in")
    if problems:
        raise CityDataError(f"{path}: " + "; ".join(problems))


@cache
def city_data(data_dir: Path = DATA_DIR) -> CityData:
    """The demo city's data files, read and checked once per process.

    Raises:
        CityDataError: A file is missing, malformed or inconsistent.
    """
    templates_path = data_dir / "templates.yaml"
    templates = _load(templates_path, _TemplatesFile)
    _check_templates(templates_path, templates)
    phrases = _load(data_dir / "phrases.yaml", Phrases)
    districts_path = data_dir / "districts.yaml"
    districts = _load(districts_path, Districts)
    if set(districts.centres) != set(districts.call_weights):
        raise CityDataError(f"{districts_path}: call_weights and centres name different "
                            "districts")
    return CityData(templates.templates, templates.emergency_order, templates.whistle_groups,
                    phrases, districts)
