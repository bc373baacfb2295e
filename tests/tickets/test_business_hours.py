"""Business time on calendars (tickets.business_hours): time zones, DST changes, holidays; properties."""

from datetime import UTC, date, datetime, timedelta

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickets.business_hours import Schedule, business_between, due_after, due_before, parse_hours

OFFICE = {str(day): [["08:00", "18:00"]] for day in range(5)}
GERMAN = holidays.country_holidays("DE")


def berlin(**kwargs):
    return Schedule(time_zone="Europe/Berlin", week=parse_hours(OFFICE), **kwargs)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_hours_within_one_day():
    # Monday 2 March 2026, 09:00 CET (08:00 UTC): 2 h later is 11:00 CET.
    assert due_after(berlin(), utc(2026, 3, 2, 8), timedelta(hours=2)) == utc(2026, 3, 2, 10)


def test_time_outside_hours_starts_at_the_next_opening():
    # Friday 17:00 CET + 3 h: 1 h on Friday, 2 h from Monday 08:00 CET (07:00 UTC).
    assert due_after(berlin(), utc(2026, 3, 6, 16), timedelta(hours=3)) == utc(2026, 3, 9, 9)
    # Saturday: nothing counts until Monday.
    assert due_after(berlin(), utc(2026, 3, 7, 12), timedelta(minutes=30)) == utc(2026, 3, 9, 7, 30)


def test_spring_forward_keeps_local_hours():
    # DST starts Sunday 29 March 2026: Friday 17:00 CET (16:00 UTC) + 2 h → Monday 09:00 CEST (07:00 UTC).
    assert due_after(berlin(), utc(2026, 3, 27, 16), timedelta(hours=2)) == utc(2026, 3, 30, 7)


def test_fall_back_keeps_local_hours():
    # DST ends Sunday 25 October 2026: Friday 17:00 CEST (15:00 UTC) + 2 h → Monday 09:00 CET (08:00 UTC).
    assert due_after(berlin(), utc(2026, 10, 23, 15), timedelta(hours=2)) == utc(2026, 10, 26, 8)


def test_a_24_hour_calendar_loses_an_hour_on_the_night_dst_starts():
    every_day = Schedule(time_zone="Europe/Berlin", week=parse_hours({str(d): [["00:00", "24:00"]] for d in range(7)}))
    # 28 March 23:00 UTC is 00:00 CET on the 29th; the local day has 23 hours.
    start, end = utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)
    assert business_between(every_day, start, end) == timedelta(hours=23)


def test_public_and_custom_holidays_are_closed():
    # Good Friday 3 April and Easter Monday 6 April 2026 are German public holidays; 7 April a company one.
    closed = {date(2026, 4, 7)}
    schedule = berlin(closed=lambda day: day in GERMAN or day in closed)
    # Thursday 2 April 17:00 CEST (15:00 UTC) + 2 h → Wednesday 8 April 09:00 CEST.
    assert due_after(schedule, utc(2026, 4, 2, 15), timedelta(hours=2)) == utc(2026, 4, 8, 7)


def test_another_time_zone():
    new_york = Schedule(time_zone="America/New_York", week=parse_hours(OFFICE))
    # Monday 9 March 2026 (EDT since the 8th): 08:00 EDT is 12:00 UTC.
    assert due_after(new_york, utc(2026, 3, 9, 11), timedelta(hours=1)) == utc(2026, 3, 9, 13)


def test_always_open():
    assert due_after(Schedule(always_open=True), utc(2026, 3, 7, 12), timedelta(hours=4)) == utc(2026, 3, 7, 16)


def test_bad_hours_are_refused():
    with pytest.raises(ValueError, match="Unknown weekday"):
        parse_hours({"7": [["08:00", "18:00"]]})
    with pytest.raises(ValueError, match="end after it starts"):
        parse_hours({"0": [["18:00", "08:00"]]})
    with pytest.raises(ValueError, match="overlap"):
        parse_hours({"0": [["08:00", "12:00"], ["11:00", "13:00"]]})
    with pytest.raises(ValueError, match="no working hours"):
        due_after(Schedule(), utc(2026, 3, 2), timedelta(hours=1))


def test_a_calendar_closed_every_day_is_refused_not_looped_on():
    with pytest.raises(ValueError, match="no working time"):
        due_after(berlin(closed=lambda day: True), utc(2026, 3, 2), timedelta(hours=1))


instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10))
schedules = st.sampled_from(
    [
        berlin(closed=lambda day: day in GERMAN),
        Schedule(time_zone="America/New_York", week=parse_hours(OFFICE)),
        Schedule(time_zone="Australia/Sydney", week=parse_hours({"0": [["09:00", "12:00"], ["13:00", "17:30"]]})),
        Schedule(always_open=True),
    ]
)


@settings(max_examples=60, deadline=None)
@given(schedules, instants, instants, instants)
def test_business_time_adds_up_over_any_split(schedule, a, b, c):
    a, b, c = sorted([a, b, c])
    assert business_between(schedule, a, c) == business_between(schedule, a, b) + business_between(schedule, b, c)


@settings(max_examples=60, deadline=None)
@given(schedules, instants, durations, durations)
def test_due_time_never_moves_backwards_and_measures_back(schedule, start, shorter, longer):
    shorter, longer = sorted([shorter, longer])
    due = due_after(schedule, start, longer)
    assert due_after(schedule, start, shorter) <= due
    assert due >= start
    assert business_between(schedule, start, due) == longer
    assert due_before(schedule, due, longer) <= start or business_between(schedule, start, due) == longer
