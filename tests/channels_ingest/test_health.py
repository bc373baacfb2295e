"""The health rules (``channels_ingest.health``): plain values in, a state and its reasons out, at a given ``now``."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from channels_ingest.health import (
    BROKEN_AFTER_FAILURES,
    Activity,
    State,
    assess,
    is_broken,
    lag,
    silent_for,
)

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
WEEK_HOURS = 7 * 24


@dataclass
class ChannelRow:
    """The fields of a ``Channel`` the rules read."""

    enabled: bool = True
    healthy: bool = True
    consecutive_failures: int = 0
    last_error: str = ""
    last_error_kind: str = ""
    paused_reason: str = ""
    poll_interval_seconds: int = 60
    last_success_at: datetime | None = NOW - timedelta(seconds=30)


def busy(per_hour, *, quiet_for, pending_since=None):
    """A channel that received ``per_hour`` messages an hour over the week, the last one ``quiet_for`` ago."""
    return Activity(
        last_hour=0, last_week=per_hour * WEEK_HOURS, last_received_at=NOW - quiet_for, oldest_pending_at=pending_since
    )


def test_a_working_channel_is_healthy():
    health = assess(ChannelRow(), busy(10, quiet_for=timedelta(minutes=2)), NOW, polls=True)
    assert (health.state, health.reasons, health.reauthorize) == (State.HEALTHY, [], False)
    assert health.lag == timedelta(seconds=30)  # since the last successful poll


@pytest.mark.parametrize(
    ("failures", "state"),
    [
        (0, State.HEALTHY),
        (1, State.DEGRADED),
        (BROKEN_AFTER_FAILURES - 1, State.DEGRADED),
        (BROKEN_AFTER_FAILURES, State.BROKEN),
        (10, State.BROKEN),
    ],
)
def test_failures_in_a_row_degrade_then_break_a_channel(failures, state):
    channel = ChannelRow(consecutive_failures=failures, last_error="Slack unreachable", last_error_kind="transient")
    health = assess(channel, Activity(), NOW, polls=True)
    assert health.state == state
    if failures:
        assert f"{failures} failure" in " ".join(health.reasons)


def test_refused_credentials_break_at_once_and_ask_to_reauthorize():
    channel = ChannelRow(
        healthy=False,
        consecutive_failures=1,
        last_error="Credentials rejected: Slack error: token_revoked",
        last_error_kind="credentials",
    )
    health = assess(channel, Activity(), NOW, polls=True)
    assert (health.state, health.reauthorize) == (State.BROKEN, True)
    assert health.reasons == ["The platform refused the credentials: re-authorize the channel."]


def test_a_refused_configuration_breaks_without_asking_to_reauthorize():
    channel = ChannelRow(
        healthy=False, consecutive_failures=1, last_error="Slack error: channel_not_found", last_error_kind="permanent"
    )
    health = assess(channel, Activity(), NOW, polls=True)
    assert (health.state, health.reauthorize) == (State.BROKEN, False)


def test_a_rate_limit_degrades_but_is_no_failure():
    channel = ChannelRow(last_error="Rate limited: retry after 60s", last_error_kind="rate_limited")
    health = assess(channel, Activity(), NOW, polls=True)
    assert health.state == State.DEGRADED
    assert health.reasons == ["Rate limited by the platform: polls wait as it asks."]


def test_a_disabled_channel_is_neither_healthy_nor_broken():
    channel = ChannelRow(enabled=False, healthy=False, consecutive_failures=9)
    assert assess(channel, Activity(), NOW, polls=True).state == State.DISABLED
    assert not is_broken(enabled=False, healthy=False, consecutive_failures=9)


def test_a_paused_channel_is_degraded():
    health = assess(ChannelRow(paused_reason="Monthly budget of $5 reached"), Activity(), NOW, polls=True)
    assert (health.state, health.reasons) == (State.DEGRADED, ["Polling is paused."])


# Silence -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("per_hour", "quiet_minutes", "silent"),
    [
        (60, 29, False),  # one a minute: 6 gaps are 6 minutes, but never sooner than 30 minutes
        (60, 31, True),
        (12, 30, False),  # one every 5 minutes: 30 minutes is the threshold itself
        (12, 31, True),
        (6, 59, False),  # the least busy "busy" channel: one every 10 minutes, silent after an hour
        (6, 61, True),
        (5, 600, False),  # under 6 an hour: a quiet channel, never "silent"
    ],
)
def test_a_busy_channel_is_silent_after_six_typical_gaps_and_at_least_30_minutes(per_hour, quiet_minutes, silent):
    activity = busy(per_hour, quiet_for=timedelta(minutes=quiet_minutes))
    assert (silent_for(activity, NOW) is not None) == silent


def test_silence_degrades_and_says_for_how_long():
    health = assess(ChannelRow(), busy(20, quiet_for=timedelta(minutes=45)), NOW, polls=True)
    assert health.state == State.DEGRADED
    assert health.silent_for == timedelta(minutes=45)
    assert health.reasons == ["Silent for 45 minutes, though normally busy."]


def test_a_channel_without_messages_this_week_is_not_silent():
    assert silent_for(Activity(), NOW) is None


# Lag -----------------------------------------------------------------------------------


def test_lag_is_the_larger_of_the_last_success_and_the_oldest_pending_message():
    channel = ChannelRow(last_success_at=NOW - timedelta(minutes=2))
    assert lag(channel, Activity(oldest_pending_at=NOW - timedelta(minutes=7)), NOW, polls=True) == timedelta(minutes=7)
    assert lag(channel, Activity(oldest_pending_at=NOW - timedelta(minutes=1)), NOW, polls=True) == timedelta(minutes=2)


def test_a_pushed_channel_lags_only_by_its_pending_messages():
    channel = ChannelRow(poll_interval_seconds=0, last_success_at=None)
    assert lag(channel, Activity(), NOW, polls=True) is None
    assert lag(channel, Activity(oldest_pending_at=NOW - timedelta(minutes=3)), NOW, polls=False) == timedelta(
        minutes=3
    )


@pytest.mark.parametrize(
    ("interval", "behind_minutes", "degraded"),
    [(60, 5, False), (60, 6, True), (300, 15, False), (300, 16, True)],  # 3 intervals, and at least 5 minutes
)
def test_a_lag_beyond_three_poll_intervals_and_five_minutes_degrades(interval, behind_minutes, degraded):
    channel = ChannelRow(poll_interval_seconds=interval, last_success_at=NOW - timedelta(minutes=behind_minutes))
    health = assess(channel, Activity(), NOW, polls=True)
    assert (health.state == State.DEGRADED) == degraded
    if degraded:
        assert health.reasons == [f"Behind by {behind_minutes} minutes."]
