"""The working-day calendar (``calendar.yaml``): public holidays and exchanged working days
per year, as the State Council publishes them.

T7D and T15D count working days. A day in a year the file does not list cannot be
classified, so :meth:`Calendar.add_workdays` raises :class:`CalendarNotCovered` there instead
of guessing (DESIGN.md "Working-day calendar"): the caller refuses loudly. Adding next year
is one reviewed data change — a new entry under ``years`` with its source.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class CalendarNotCovered(LookupError):
    """A working-day count reached a year the calendar does not list."""

    def __init__(self, year: int, covered: tuple[int, ...]) -> None:
        self.year = year
        self.covered = covered
        have = ("no year" if not covered else str(covered[0]) if len(covered) == 1
                else f"{covered[0]}–{covered[-1]}")
        super().__init__(
            f"the working-day calendar does not cover {year} (it covers {have}); add "
            f"{year}'s holidays to calendar.yaml from the State Council's notice")


class CalendarYear(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Where the list was copied from, so a reviewer can check it (notice title and date).
    source: str = Field(min_length=1)
    holidays: list[date] = []
    extra_workdays: list[date] = []
    # True only in test fixtures: generated weekends-only years, never for production.
    synthetic: bool = False


class Calendar(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "Asia/Shanghai"
    # The coverage alert fires this many days before the last listed day.
    warn_days_ahead: int = Field(default=60, ge=1)
    years: dict[int, CalendarYear] = {}

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Calendar:
        years = sorted(self.years)
        gaps = [y for y in range(years[0], years[-1] + 1) if y not in self.years] if years else []
        if gaps:
            # A hole would make "covered until" ambiguous; fill it or drop the older years.
            raise ValueError(f"years must be consecutive: missing {gaps}")
        for year, entry in self.years.items():
            wrong = [d.isoformat() for d in [*entry.holidays, *entry.extra_workdays]
                     if d.year != year]
            if wrong:
                raise ValueError(f"years.{year}: dates from another year {wrong}")
            both = sorted(set(entry.holidays) & set(entry.extra_workdays))
            if both:
                raise ValueError(f"years.{year}: both holiday and working day {both}")
            weekday_extra = [d.isoformat() for d in entry.extra_workdays if d.weekday() < 5]
            if weekday_extra:
                raise ValueError(f"years.{year}: extra_workdays must be a Saturday or Sunday, "
                                 f"not {weekday_extra}")
        return self

    @property
    def covered_years(self) -> tuple[int, ...]:
        return tuple(sorted(self.years))

    @property
    def last_day(self) -> date | None:
        """The last day the calendar can classify (31 December of its last year)."""
        return date(max(self.years), 12, 31) if self.years else None

    def days_left(self, today: date) -> int:
        """Days from ``today`` to the end of coverage (negative once past it)."""
        last = self.last_day
        return (last - today).days if last else -1

    def covers(self, day: date) -> bool:
        return day.year in self.years

    @cached_property
    def _holidays(self) -> frozenset[date]:
        return frozenset(d for y in self.years.values() for d in y.holidays)

    @cached_property
    def _extra(self) -> frozenset[date]:
        return frozenset(d for y in self.years.values() for d in y.extra_workdays)

    def is_workday(self, day: date) -> bool:
        """Raises :class:`CalendarNotCovered` for a day in a year the file does not list."""
        if not self.covers(day):
            raise CalendarNotCovered(day.year, self.covered_years)
        if day in self._extra:
            return True
        return day.weekday() < 5 and day not in self._holidays

    def add_workdays(self, start: datetime, days: int, *, provisional: bool = False) -> datetime:
        """The same local clock time ``days`` working days after ``start``.

        ``provisional=True`` counts an uncovered year's weekdays as working days instead of
        raising — only for a deadline a person has already been told is provisional.
        """
        local = start.astimezone(ZoneInfo(self.timezone))
        counted = 0
        day = local
        while counted < days:
            day += timedelta(days=1)
            if provisional and not self.covers(day.date()):
                counted += day.weekday() < 5
            elif self.is_workday(day.date()):
                counted += 1
        return day.astimezone(start.tzinfo)
