"""Business time on a calendar: pure functions, no database.

A ``Schedule`` is a calendar's working week in its own time zone (intervals per weekday, local wall-clock
times), the days it is closed (public holidays from the ``holidays`` package, and custom dates), or
"always open" (24/7). Working intervals are built day by day in local time and converted to UTC before
any arithmetic, so a DST change moves them with the wall clock (an 08:00–18:00 day stays 08:00–18:00
local, and is an hour shorter or longer in UTC only where the change falls inside it).

``due_after`` adds business time to an instant, ``due_before`` takes it away, ``business_between``
measures it between two instants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

ZERO = timedelta(0)
#: A calendar with working hours but none in this many days (every day a holiday) is refused, not looped on.
MAX_DAYS = 3 * 366

Interval = tuple[time, time | None]  # None as the end: midnight at the end of the day ("24:00")


def parse_hours(hours: dict) -> dict[int, list[Interval]]:
    """``{"0": [["08:00", "18:00"]], ...}`` (Monday is 0; "24:00" ends at midnight) as times. ValueError if bad."""
    week: dict[int, list[Interval]] = {}
    for day, intervals in (hours or {}).items():
        weekday = int(day)
        if not 0 <= weekday <= 6:
            raise ValueError(f"Unknown weekday {day!r}: use 0 (Monday) to 6 (Sunday).")
        parsed = []
        for start_text, end_text in intervals:
            start = time.fromisoformat(start_text)
            end = None if end_text == "24:00" else time.fromisoformat(end_text)
            if end is not None and end <= start:
                raise ValueError(f"An interval must end after it starts: {start_text}–{end_text}.")
            parsed.append((start, end))
        parsed.sort()
        for (_, end), (start, _) in pairwise(parsed):
            if end is None or end > start:
                raise ValueError("Working intervals of one day must not overlap.")
        week[weekday] = parsed
    return week


@dataclass(frozen=True)
class Schedule:
    time_zone: str = "UTC"
    #: Weekday (Monday 0) → working intervals, local time.
    week: dict[int, list[Interval]] = field(default_factory=dict)
    #: Whether a local date is closed (a holiday).
    closed: Callable[[date], bool] = lambda day: False
    always_open: bool = False

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def _day_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        if self.closed(day):
            return []
        zone = self.zone
        spans = []
        for start, end in self.week.get(day.weekday(), []):
            begin = datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
            if end is None:
                finish = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
            else:
                finish = datetime.combine(day, end, tzinfo=zone).astimezone(UTC)
            if finish > begin:
                spans.append((begin, finish))
        return spans

    def intervals_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals (UTC) ending after ``at``, in order, clipped to start no earlier than ``at``."""
        at = at.astimezone(UTC)
        day = at.astimezone(self.zone).date() - timedelta(days=1)
        idle = 0
        while True:
            spans = self._day_intervals(day)
            idle = 0 if spans else idle + 1
            if idle > MAX_DAYS:
                raise ValueError("This calendar has no working time in the next three years.")
            for begin, finish in spans:
                if finish > at:
                    yield max(begin, at), finish
            day += timedelta(days=1)

    def intervals_before(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals (UTC) starting before ``at``, latest first, clipped to end no later than ``at``."""
        at = at.astimezone(UTC)
        day = at.astimezone(self.zone).date() + timedelta(days=1)
        idle = 0
        while True:
            spans = self._day_intervals(day)
            idle = 0 if spans else idle + 1
            if idle > MAX_DAYS:
                raise ValueError("This calendar has no working time in the previous three years.")
            for begin, finish in reversed(spans):
                if begin < at:
                    yield begin, min(finish, at)
            day -= timedelta(days=1)


def _check(schedule: Schedule) -> None:
    if not schedule.always_open and not any(schedule.week.values()):
        raise ValueError("This calendar has no working hours.")


def due_after(schedule: Schedule, start: datetime, duration: timedelta) -> datetime:
    """The instant (UTC) when ``duration`` of business time has passed from ``start``."""
    if duration < ZERO:
        return due_before(schedule, start, -duration)
    start = start.astimezone(UTC)
    if schedule.always_open:
        return start + duration
    _check(schedule)
    left = duration
    for begin, finish in schedule.intervals_from(start):
        if finish - begin >= left:
            return begin + left
        left -= finish - begin
    raise AssertionError("unreachable")  # pragma: no cover - intervals_from never ends


def due_before(schedule: Schedule, end: datetime, duration: timedelta) -> datetime:
    """The instant (UTC) ``duration`` of business time before ``end``."""
    end = end.astimezone(UTC)
    if schedule.always_open:
        return end - duration
    _check(schedule)
    if duration <= ZERO:
        return end
    left = duration
    for begin, finish in schedule.intervals_before(end):
        if finish - begin >= left:
            return finish - left
        left -= finish - begin
    raise AssertionError("unreachable")  # pragma: no cover


def business_between(schedule: Schedule, start: datetime, end: datetime) -> timedelta:
    """Business time from ``start`` to ``end`` (zero when ``end`` is not after ``start``)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return ZERO
    if schedule.always_open:
        return end - start
    _check(schedule)
    total = ZERO
    for begin, finish in schedule.intervals_from(start):
        if begin >= end:
            break
        total += min(finish, end) - begin
    return total
