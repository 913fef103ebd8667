"""Calendar months as the governance reports count them (boundaries in a time zone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_MONTH_FORMAT = "%Y-%m"


def month_bounds(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """``"2026-10"`` → [start, end) as UTC datetimes, month boundaries in ``tz``.

    Raises:
        ValueError: ``month`` is not ``YYYY-MM``.
    """
    first = datetime.strptime(month, _MONTH_FORMAT).replace(tzinfo=tz)
    nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first.astimezone(UTC), nxt.astimezone(UTC)


def shift_month(month: str, delta: int) -> str:
    """The month ``delta`` months after ``month`` (negative: before)."""
    year, mon = (int(p) for p in month.split("-"))
    index = year * 12 + (mon - 1) + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def previous_month(at: datetime, tz: ZoneInfo) -> str:
    """The calendar month before the one ``at`` falls in (the month a schedule closes)."""
    return shift_month(at.astimezone(tz).strftime(_MONTH_FORMAT), -1)
