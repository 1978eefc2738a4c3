"""Working hours: what an amount of work means on the clock, in a group's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provtrack.domain.working_hours import (
    InvalidWorkingHours,
    WorkingHours,
    read_holidays,
    read_week,
)

OFFICE = read_week({"mon-fri": "08:00-12:00, 13:00-17:00"})
PARIS = WorkingHours("Europe/Paris", OFFICE)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_a_three_hour_job_started_at_four_on_friday_finishes_on_monday() -> None:
    friday_four_pm = utc(2026, 11, 27, 15)  # CET: UTC+1
    assert PARIS.finish(friday_four_pm, timedelta(hours=3)) == utc(2026, 11, 30, 9)  # Monday 10:00


def test_lunch_and_holidays_are_not_working_time() -> None:
    fixed, yearly = read_holidays(["12-25", "2026-12-28"])
    hours = WorkingHours("Europe/Paris", OFFICE, fixed, yearly)
    thursday_eleven = utc(2026, 12, 24, 10)
    # 1 h before lunch, 4 h in the afternoon; Friday 25 and Monday 28 are holidays; 1 h on Tuesday.
    assert hours.finish(thursday_eleven, timedelta(hours=6)) == utc(2026, 12, 29, 8)
    assert hours.is_holiday(date(2030, 12, 25))


def test_a_day_across_the_spring_daylight_saving_change_has_23_working_hours() -> None:
    always_at_work = WorkingHours(
        "Europe/Paris", read_week({"mon-sun": "00:00-24:00"}), frozenset({date(2000, 1, 1)})
    )
    [(begin, end)] = always_at_work.intervals_of(date(2026, 3, 29))
    assert end - begin == timedelta(hours=23)
    [(begin, end)] = always_at_work.intervals_of(date(2026, 10, 25))
    assert end - begin == timedelta(hours=25)


def test_office_hours_keep_to_the_local_clock_across_a_dst_change() -> None:
    friday_four_pm_summer_time = utc(2026, 3, 27, 15)  # CET, UTC+1
    # Monday 10:00 is CEST, UTC+2.
    assert PARIS.finish(friday_four_pm_summer_time, timedelta(hours=3)) == utc(2026, 3, 30, 8)


def test_the_same_hours_in_another_zone_end_at_another_instant() -> None:
    new_york = WorkingHours("America/New_York", OFFICE)
    assert new_york.finish(utc(2026, 11, 27, 15), timedelta(hours=3)) == utc(
        2026, 11, 27, 19
    )  # 10:00 -> 14:00 EST


def test_work_waiting_outside_working_hours_begins_at_the_next_working_instant() -> None:
    saturday = utc(2026, 11, 28, 12)
    assert PARIS.next_working_instant(saturday) == utc(2026, 11, 30, 7)
    assert PARIS.next_working_instant(utc(2026, 11, 30, 9)) == utc(2026, 11, 30, 9)
    assert PARIS.finish(saturday, timedelta(0)) == saturday


def test_round_the_clock_is_plain_arithmetic() -> None:
    assert WorkingHours().always
    start = utc(2026, 11, 28, 23, 30)
    assert WorkingHours().finish(start, timedelta(hours=3)) == start + timedelta(hours=3)


@pytest.mark.parametrize(
    ("week", "message"),
    [
        ({"mon": "8-17"}, "'8-17' is not a range of local times such as 08:00-17:00"),
        ({"mon": "17:00-08:00"}, "the start must come before the end"),
        ({"mon": "08:00-12:00, 11:00-13:00"}, "ranges overlap"),
        ({"someday": "08:00-12:00"}, "'someday' is not a day"),
        ({"mon-fri": "08:00-12:00", "fri": "09:00-10:00"}, "fri is given twice"),
    ],
)
def test_bad_working_hours_are_refused_saying_what_to_write(week: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidWorkingHours, match=message):
        read_week(week)


def test_an_unknown_time_zone_or_a_week_without_work_is_refused() -> None:
    with pytest.raises(InvalidWorkingHours, match="unknown time zone 'Europe/Atlantis'"):
        WorkingHours("Europe/Atlantis", OFFICE)
    with pytest.raises(InvalidWorkingHours, match="at least one working day"):
        WorkingHours("UTC", ((),) * 7)
    with pytest.raises(InvalidWorkingHours, match="is not a date"):
        read_holidays(["Christmas"])


def test_working_hours_survive_their_document() -> None:
    fixed, yearly = read_holidays(["12-25", "2026-12-28"])
    hours = WorkingHours("Europe/Paris", OFFICE, fixed, yearly)
    assert WorkingHours.from_document(hours.to_document()) == hours


instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
works = st.integers(min_value=0, max_value=60 * 60).map(lambda minutes: timedelta(minutes=minutes))


@given(start=instants, first=works, then=works)
def test_work_done_in_two_parts_ends_when_it_ends_in_one(
    start: datetime, first: timedelta, then: timedelta
) -> None:
    assert PARIS.finish(PARIS.finish(start, first), then) == PARIS.finish(start, first + then)


@given(start=instants, work=works, later=works)
def test_more_work_or_a_later_start_never_ends_earlier(
    start: datetime, work: timedelta, later: timedelta
) -> None:
    assert PARIS.finish(start, work + later) >= PARIS.finish(start, work)
    assert PARIS.finish(start + later, work) >= PARIS.finish(start, work)
    assert PARIS.finish(start, work) - start >= work
