"""Working hours of a work group: the hours its people work in their own time zone, their holidays,
and what an amount of work means on the clock (a 3-hour install started at 16:00 on a Friday, in a
group working 08:00-17:00 on weekdays, finishes at 11:00 on Monday).

Working time is real elapsed time inside working intervals: an interval that spans a daylight
saving change is an hour shorter or longer, as the people in it live it. Time zones come from the
IANA database of the standard library (`zoneinfo`); everything else is arithmetic.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_A_DAY = 24 * 60
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_HORIZON_DAYS = 3 * 366  # work that does not fit in three years of calendar is a calendar mistake

Interval = tuple[int, int]  # minutes after local midnight, start < end <= 1440
ROUND_THE_CLOCK: tuple[tuple[Interval, ...], ...] = (((0, MINUTES_A_DAY),),) * 7


class InvalidWorkingHours(ValueError):
    """A working-hours definition that cannot be used; the message says what to write instead."""


@lru_cache(maxsize=64)
def time_zone(name: str) -> ZoneInfo:
    """The IANA zone, e.g. Europe/Paris; InvalidWorkingHours for a name the database lacks."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidWorkingHours(f"unknown time zone {name!r} (an IANA name such as Europe/Paris)") from None


def parse_intervals(text: str) -> tuple[Interval, ...]:
    """`"08:00-12:00, 13:00-17:00"` -> ((480, 720), (780, 1020)); `24:00` ends a day."""
    intervals: list[Interval] = []
    for part in str(text).split(","):
        match = _RANGE.match(part)
        if not match:
            raise InvalidWorkingHours(f"{part.strip()!r} is not a range of local times such as 08:00-17:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if m1 > 59 or m2 > 59 or end > MINUTES_A_DAY or start >= end:
            raise InvalidWorkingHours(f"{part.strip()!r}: the start must come before the end, within a day")
        intervals.append((start, end))
    intervals.sort()
    for (_, end), (start, _) in itertools.pairwise(intervals):
        if start < end:
            raise InvalidWorkingHours(f"{text!r}: ranges overlap")
    return tuple(intervals)


def _format_intervals(intervals: tuple[Interval, ...]) -> str:
    return ", ".join(f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in intervals)


def parse_days(key: str) -> list[int]:
    """`mon` -> [0]; `mon-fri` -> [0..4] (Monday is 0)."""
    first, _, last = str(key).strip().lower().partition("-")
    if first not in DAYS or (last and last not in DAYS):
        raise InvalidWorkingHours(f"{key!r} is not a day (mon ... sun) or a range of days such as mon-fri")
    start, end = DAYS.index(first), DAYS.index(last or first)
    if end < start:
        raise InvalidWorkingHours(f"{key!r}: a range of days runs forward, e.g. mon-fri")
    return list(range(start, end + 1))


def parse_holiday(text: str) -> date | tuple[int, int]:
    """`2026-12-25` (that day) or `12-25` (every year)."""
    value = str(text).strip()
    try:
        if len(value) == 5:
            month, day = (int(p) for p in value.split("-"))
            date(2024, month, day)  # a leap year: 02-29 is a valid yearly holiday
            return month, day
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidWorkingHours(f"{value!r} is not a date (2026-12-25) or a yearly date (12-25)") from None


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """When a group works. `week` has seven entries, Monday first, each the day's intervals."""

    zone_name: str = "UTC"
    week: tuple[tuple[Interval, ...], ...] = ROUND_THE_CLOCK
    holidays: frozenset[date] = frozenset()
    yearly_holidays: frozenset[tuple[int, int]] = frozenset()

    def __post_init__(self) -> None:
        time_zone(self.zone_name)
        if len(self.week) != 7:
            raise InvalidWorkingHours("a week has seven days")
        if not any(self.week):
            raise InvalidWorkingHours("working hours need at least one working day")

    @property
    def always(self) -> bool:
        """Round the clock, every day: work takes as long on the clock as its duration."""
        return self.week == ROUND_THE_CLOCK and not (self.holidays or self.yearly_holidays)

    def is_holiday(self, day: date) -> bool:
        return day in self.holidays or (day.month, day.day) in self.yearly_holidays

    def intervals_of(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's working intervals as UTC instants (none on a holiday)."""
        if self.is_holiday(day):
            return []
        zone = time_zone(self.zone_name)
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        # Adding to an aware datetime moves its wall clock: 08:00 is 08:00 local on a DST day too.
        return [
            ((midnight + timedelta(minutes=s)).astimezone(UTC), _end_of(midnight, e).astimezone(UTC))
            for s, e in self.week[day.weekday()]
        ]

    def _intervals_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        day = at.astimezone(time_zone(self.zone_name)).date()
        for offset in range(_HORIZON_DAYS):
            for begin, end in self.intervals_of(day + timedelta(days=offset)):
                if end > at:
                    yield max(begin, at), end
        raise InvalidWorkingHours(f"no working time within {_HORIZON_DAYS} days of {at.isoformat()}")

    def next_working_instant(self, at: datetime) -> datetime:
        """`at` itself inside working hours, else the start of the next working interval."""
        if self.always:
            return at
        begin, _ = next(self._intervals_from(at))
        return begin

    def finish(self, start: datetime, work: timedelta) -> datetime:
        """When `work` of working time begun (or waiting to begin) at `start` is done."""
        if self.always or work <= timedelta(0):
            return start + max(work, timedelta(0))
        remaining = work
        for begin, end in self._intervals_from(start):
            if end - begin >= remaining:
                return begin + remaining
            remaining -= end - begin
        raise AssertionError("unreachable: _intervals_from raises at its horizon")

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "timeZone": self.zone_name,
            "week": {DAYS[n]: _format_intervals(day) for n, day in enumerate(self.week) if day},
        }
        holidays = sorted(d.isoformat() for d in self.holidays) + sorted(
            f"{m:02d}-{d:02d}" for m, d in self.yearly_holidays
        )
        if holidays:
            document["holidays"] = holidays
        return document

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> WorkingHours:
        week = read_week(document.get("week"))
        fixed, yearly = read_holidays(document.get("holidays") or [])
        return cls(str(document.get("timeZone") or "UTC"), week, fixed, yearly)


def read_week(raw: Any) -> tuple[tuple[Interval, ...], ...]:
    """`{mon-fri: "08:00-17:00", sat: "09:00-12:00"}` -> the seven days; None: round the clock."""
    if raw is None:
        return ROUND_THE_CLOCK
    if not isinstance(raw, Mapping):
        raise InvalidWorkingHours(
            "working hours are a mapping of days to ranges, e.g. {mon-fri: 08:00-17:00}"
        )
    week: list[tuple[Interval, ...]] = [()] * 7
    for key, ranges in raw.items():
        for day in parse_days(str(key)):
            if week[day]:
                raise InvalidWorkingHours(f"{DAYS[day]} is given twice")
            week[day] = parse_intervals(str(ranges))
    return tuple(week)


def read_holidays(raw: Any) -> tuple[frozenset[date], frozenset[tuple[int, int]]]:
    if not isinstance(raw, list):
        raise InvalidWorkingHours("holidays are a list of dates (2026-12-25) or yearly dates (12-25)")
    fixed: set[date] = set()
    yearly: set[tuple[int, int]] = set()
    for entry in raw:
        parsed = parse_holiday(entry)
        if isinstance(parsed, date):
            fixed.add(parsed)
        else:
            yearly.add(parsed)
    return frozenset(fixed), frozenset(yearly)


def _end_of(midnight: datetime, minutes: int) -> datetime:
    if minutes == MINUTES_A_DAY:  # 24:00 is the next day's midnight, whatever length the day had
        following = midnight.date() + timedelta(days=1)
        return datetime(following.year, following.month, following.day, tzinfo=midnight.tzinfo)
    return midnight + timedelta(minutes=minutes)
