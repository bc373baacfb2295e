"""Each report's figures on a desk built by hand (tests/report_data.py), worked out here. The same tests run on
PostgreSQL (percentile_cont) and on SQLite (ordered offset queries): both must give these answers."""

import random
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.report_data import NOW, build
from tickets import reports
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

UTC = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def desk(agent, other_agent):
    with time_machine.travel(NOW, tick=False), timezone.override(UTC):
        yield build(agent, other_agent)


def last_7_days():
    return reports.Period.last_days(7)


def test_a_period_of_the_last_days_ends_with_today_in_the_viewers_zone(desk):
    period = last_7_days()
    assert (period.first_day, period.last_day) == (date(2026, 3, 4), date(2026, 3, 10))
    assert period.start.isoformat() == "2026-03-04T00:00:00+00:00"
    with timezone.override(ZoneInfo("Asia/Tokyo")):  # 21:00 there: still the 10th
        assert reports.Period.last_days(1).first_day == date(2026, 3, 10)
    with timezone.override(ZoneInfo("Pacific/Kiritimati")):  # UTC+14: already the 11th
        assert reports.Period.last_days(1).first_day == date(2026, 3, 11)


def test_volume_by_channel_per_day(desk):
    volume = reports.volume(last_7_days(), "channel")
    assert volume.bucket == "day"
    assert volume.buckets == [date(2026, 3, d) for d in range(4, 11)]
    assert volume.series == {"slack-it": [0, 1, 0, 0, 1, 1, 2], "mail": [0, 0, 1, 0, 1, 0, 1]}
    assert volume.totals_by_bucket == [0, 1, 1, 0, 2, 1, 3]
    assert volume.total == 8


def test_volume_by_type_category_and_team(desk):
    period = last_7_days()
    assert reports.volume(period, "kind").totals_by_series == {
        "Incident": 5,
        "Change": 1,
        "Problem": 1,
        "Service request": 1,
    }
    assert reports.volume(period, "category").totals_by_series == {"(none)": 3, "Network": 3, "Hardware": 2}
    assert reports.volume(period, "team").totals_by_series == {"(none)": 3, "Net": 3, "Desk": 2}


def test_volume_days_are_the_viewers_days(desk):
    """T11 came at midnight UTC on the 8th: 19:00 on the 7th in New York (and New York moved to summer time on the
    8th, at 07:00 UTC: T3, at 08:00 UTC, is 04:00 there, still the 8th)."""
    with timezone.override(NEW_YORK):
        volume = reports.volume(reports.Period.last_days(7), "channel")
    assert volume.buckets == [date(2026, 3, d) for d in range(4, 11)]
    assert volume.totals_by_bucket == [0, 1, 1, 1, 1, 1, 3]
    assert volume.total == 8


def test_volume_by_week_over_longer_periods(desk):
    volume = reports.volume(reports.Period.last_days(90), "channel")
    assert volume.bucket == "week"
    assert all(start.weekday() == 0 for start in volume.buckets)
    assert volume.total == 11
    # Weeks start on Monday: T8 (Sunday 1 February) counts in the week of 26 January, which began before the
    # period; T3 and T11 (Sunday 8 March) in the week of 2 March.
    counts = dict(zip(volume.buckets, volume.totals_by_bucket, strict=True))
    assert counts[date(2026, 1, 26)] == 1
    assert counts[date(2026, 2, 16)] == 1
    assert counts[date(2026, 2, 23)] == 1
    assert counts[date(2026, 3, 2)] == 4  # T3, T4, T5, T11
    assert counts[date(2026, 3, 9)] == 4  # T1, T2, T6, T7


def test_first_response_and_resolution_times(desk):
    """First responses in the period after 1, 2, 3, 4 and 10 hours: median 3, p90 at position 3.6 of 0..4, so
    4 + 0.6 * (10 - 4) = 7.6. Resolutions after 4, 6, 20 and 408 hours (T9 was created before the period):
    median (6 + 20) / 2 = 13, p90 at 2.7: 20 + 0.7 * 388 = 291.6."""
    times = reports.times(last_7_days())
    assert times.first_response.count == 5
    assert reports.hours(times.first_response.median) == 3
    assert reports.hours(times.first_response.p90) == 7.6
    assert times.resolution.count == 4
    assert reports.hours(times.resolution.median) == 13
    assert reports.hours(times.resolution.p90) == 291.6


def test_times_of_an_empty_period_are_none(desk):
    times = reports.times(reports.Period.between(date(2025, 1, 1), date(2025, 1, 31)))
    assert (times.first_response.count, times.first_response.median, times.first_response.p90) == (0, None, None)


def test_percentiles_of_one_value_and_of_an_even_count(desk):
    one = reports.durations(Ticket.objects.filter(subject="T4"), "first_responded_at")
    assert (one.count, one.median, one.p90) == (1, timedelta(hours=4), timedelta(hours=4))
    two = reports.durations(Ticket.objects.filter(subject__in=["T1", "T5"]), "first_responded_at")
    assert two.median == timedelta(hours=5.5)
    assert two.p90 == timedelta(hours=1 + 0.9 * 9)


def test_sla_compliance(desk):
    """First response: T1 and T3 met, T2 and T5 answered late, T6 unanswered past due; T7 not yet due; T4 and T11
    have no target. Resolution: T2 met, T3 late; T1 and T6 running; four without a target."""
    sla = reports.sla_compliance(last_7_days())
    first = sla.first_response
    assert (first.met, first.breached, first.running, first.without_target) == (2, 3, 1, 2)
    assert first.share == 0.4
    resolution = sla.resolution
    assert (resolution.met, resolution.breached, resolution.running, resolution.without_target) == (1, 1, 2, 4)
    assert resolution.share == 0.5


def test_sla_met_exactly_at_the_due_time(desk):
    Ticket.objects.filter(subject="T2").update(first_responded_at=NOW.replace(day=9, hour=10))  # its due time
    assert reports.sla_compliance(last_7_days()).first_response.met == 3


def test_backlog_by_age(desk):
    assert reports.backlog() == {
        "Under 1 day": 3,  # T1, T6, T7
        "1–3 days": 1,  # T11
        "3–7 days": 1,  # T4 (pending is open)
        "1–4 weeks": 1,  # T10
        "Older": 1,  # T8
    }


def test_agent_workload(desk):
    rows = [(w.agent, w.open, w.resolved) for w in reports.workload(last_7_days())]
    assert rows == [("Alex Agent", 2, 2), ("Dana Desk", 1, 2), ("(unassigned)", 4, 0)]


def test_a_period_between_two_dates(desk):
    period = reports.Period.between(date(2026, 3, 8), date(2026, 3, 9))
    assert reports.volume(period).total == 3  # T3, T11, T2
    assert reports.times(period).resolution.count == 3  # T2, T3, T9
    assert [(w.agent, w.resolved) for w in reports.workload(period)][:2] == [("Alex Agent", 2), ("Dana Desk", 1)]


@pytest.mark.parametrize("report", ["volume", "times", "sla", "backlog", "workload"])
def test_each_report_spends_the_same_queries_whatever_the_data(desk, report, agent):
    run = {
        "volume": lambda: reports.volume(last_7_days()),
        "times": lambda: reports.times(last_7_days()),
        "sla": lambda: reports.sla_compliance(last_7_days()),
        "backlog": reports.backlog,
        "workload": lambda: reports.workload(last_7_days()),
    }[report]
    with CaptureQueriesContext(connection) as few:
        run()
    template = desk["T1"]
    Ticket.objects.bulk_create(
        [
            Ticket(
                subject=f"more {n}",
                requester=template.requester,
                channel=template.channel,
                assignee=template.assignee,
                created_at=NOW - timedelta(hours=n),
                first_responded_at=NOW - timedelta(hours=n) + timedelta(minutes=5),
                resolved_at=NOW if n % 2 else None,
                status="resolved" if n % 2 else "open",
            )
            for n in range(1, 40)
        ]
    )
    with CaptureQueriesContext(connection) as many:
        run()
    assert len(many) == len(few)
    # volume: the counts and the names; times: two on PostgreSQL, six on SQLite (a count and two offsets each)
    assert len(few) <= {"volume": 2, "times": 6, "sla": 1, "backlog": 1, "workload": 2}[report]


def percentile_cont(values, fraction):
    """The reference: linear interpolation between the two values around position fraction * (n - 1)."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@pytest.mark.parametrize("seed", range(6))
def test_percentiles_match_the_definition_on_random_durations(seed, agent, other_agent):
    """Random durations (to the microsecond, ties included): the database's median and p90 (percentile_cont on
    PostgreSQL, ordered offsets on SQLite) are the reference's, within a microsecond (PostgreSQL's are doubles)."""
    rng = random.Random(seed)
    with time_machine.travel(NOW, tick=False):
        requester = build(agent, other_agent)["T1"].requester
    count = rng.choice([1, 2, 3, 10, 37, 101])
    durations_ = [timedelta(microseconds=rng.choice([rng.randrange(10**11), 3_600_000_000])) for _ in range(count)]
    Ticket.objects.bulk_create(
        [
            Ticket(subject="random", requester=requester, created_at=NOW, first_responded_at=NOW + duration)
            for duration in durations_
        ]
    )
    figures = reports.durations(Ticket.objects.filter(subject="random"), "first_responded_at")
    assert figures.count == count
    for fraction, found in ((0.5, figures.median), (0.9, figures.p90)):
        assert abs(found - percentile_cont(durations_, fraction)) <= timedelta(microseconds=1)
