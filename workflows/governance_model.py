"""Dataclasses the governance workflows and activities exchange (requests and results).

They live on the workflow side so that ``workflows/governance.py`` imports nothing from
``activities/``; the activities import them from here. No I/O, and no ``from __future__
import annotations`` (as in :mod:`workflows.model`: the payload converter resolves the type
hints on every decode).
"""

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class TopicVolumeRequest:
    """Volume of one category over [start, end)."""

    category: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class MonthRequest:
    """A month to evaluate; empty ``month``: the month before ``at`` (a Schedule's run)."""

    month: str = ""
    at: datetime | None = None


@dataclass(frozen=True)
class RankingSummary:
    month: str
    groups: dict[str, int] = field(default_factory=dict)  # group → units ranked
    published: int = 0


@dataclass(frozen=True)
class ScanRequest:
    now: datetime


@dataclass(frozen=True)
class HotspotRef:
    warning_id: str
    street: str
    category: str
    count: int


@dataclass(frozen=True)
class GovernanceCaseResult:
    warning_id: str
    complaint_id: str
    started: bool  # False: the case already existed (a retried activity)
