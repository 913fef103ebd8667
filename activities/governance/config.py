"""``governance.yaml`` (and its optional population file): loaded and validated once."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from activities.dispatch.rules import describe_validation_error, load_yaml, parse_duration


class GovernanceError(ValueError):
    """``governance.yaml`` is missing or wrong; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriorityStreetsRule(_Strict):
    top_n: int = Field(ge=1, le=1000)
    population_file: str | None = None


class PointRule(_Strict):
    """Hotspots near one point: complaints with a location, counted on a grid.

    Each count covers a cell and its eight neighbours (a square of 3 × ``cell_m``), so a
    cluster on a street boundary is counted whole. More places are tested than streets,
    hence its own, usually stricter, thresholds.
    """

    cell_m: float = Field(gt=10, le=5000)
    min_count: int = Field(ge=2)
    max_p_value: float = Field(gt=0, le=1)
    # One projection for every row, so a cell and its eight neighbours are a square:
    # longitude is scaled by the cosine of this latitude everywhere (Beijing spans
    # 39.4°–41.1°: cells there are square to within 2.5 %).
    reference_latitude: float = Field(default=39.9, ge=-80, le=80)


class HotspotRule(_Strict):
    window: timedelta
    baseline: timedelta
    multiplier: float = Field(gt=1)
    min_count: int = Field(ge=2)
    baseline_floor: float = Field(gt=0)
    max_p_value: float = Field(gt=0, le=1)
    cooldown: timedelta
    exclude_outcomes: list[str] = []
    points: PointRule | None = None

    @field_validator("window", "baseline", "cooldown", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("baseline")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value


class TopicWeights(_Strict):
    volume: float = Field(ge=0)
    growth: float = Field(ge=0)
    units: float = Field(ge=0)


class TopicRule(_Strict):
    top_n: int = Field(ge=1)
    previous_months: int = Field(ge=1, le=24)
    weights: TopicWeights
    tracked: list[str] = []


class ScheduleRule(_Strict):
    monthly_evaluation_cron: str
    hotspot_scan_cron: str

    @field_validator("monthly_evaluation_cron", "hotspot_scan_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"not a five-field cron expression: {value!r}")
        return value


class GovernanceConfig(_Strict):
    version: int = 1
    timezone: str = "Asia/Shanghai"
    priority_streets: PriorityStreetsRule
    hotspots: HotspotRule
    topics: TopicRule
    schedules: ScheduleRule
    # Filled by the loader from ``population_file``: (district, street) → residents.
    population: dict[str, int] = {}

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception as err:
            raise ValueError(f"unknown time zone {value!r}") from err
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_governance_config(path: Path) -> GovernanceConfig:
    """Read and validate ``governance.yaml`` (and its optional population file).

    Raises:
        GovernanceError: naming the file and every bad key.
    """
    try:
        data = load_yaml(path)
    except Exception as err:
        raise GovernanceError(f"{path}: {err}") from None
    if not isinstance(data, dict):
        raise GovernanceError(f"{path}: expected a mapping at the top level")
    try:
        cfg = GovernanceConfig.model_validate(data)
    except ValidationError as err:
        raise GovernanceError(describe_validation_error(path, err)) from None
    pop_name = cfg.priority_streets.population_file
    if pop_name:
        pop_path = path.parent / pop_name
        population: dict[str, int] = {}
        try:
            with pop_path.open(encoding="utf-8", newline="") as fh:
                for line, row in enumerate(csv.DictReader(fh), start=2):
                    try:
                        population[place_key(row["district"], row["street"])] = int(
                            row["population"])
                    except (KeyError, TypeError, ValueError):
                        raise GovernanceError(
                            f"{pop_path}:{line}: needs district, street and an integer "
                            "population") from None
        except FileNotFoundError:
            raise GovernanceError(
                f"{path}: priority_streets.population_file: {pop_path} not found") from None
        cfg = cfg.model_copy(update={"population": population})
    return cfg


def place_key(district: str | None, street: str) -> str:
    """The key of a street in :attr:`GovernanceConfig.population`."""
    return f"{district or ''}/{street}"
