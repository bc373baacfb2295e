"""A channel's health, as the Channels page states it: healthy, degraded or broken, and why.

Pure rules over values the page has already read (the channel row and its inbound activity); nothing here
touches the database, so every rule is tested with plain values and an explicit ``now``.

- **Broken** (admins are alerted): the platform refused the credentials ("re-authorize needed"), or refused
  the channel's configuration (a permanent error), or ``BROKEN_AFTER_FAILURES`` platform calls failed in a
  row (e.g. the platform is unreachable).
- **Degraded** (shown, not alerted): a failure or two in a row, a rate limit, paused polling, a lag over its
  limit, or a normally busy channel that has gone silent.
- **Lag**: how far behind the helpdesk may be. For a polled channel, the time since its last successful poll
  (a message sent since then is not in yet); for every channel, the age of the oldest stored message not yet
  turned into a ticket; the larger of the two.
- **Silent**: a channel is normally busy when it received at least ``BUSY_PER_HOUR`` inbound messages an hour
  on average over the last 7 days; it is silent when nothing arrived for ``SILENT_AFTER_GAPS`` typical gaps
  between messages (60 / rate minutes each), and never sooner than ``SILENT_AT_LEAST``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

#: Failed platform calls in a row that make a channel broken (a rate limit is not a failure).
BROKEN_AFTER_FAILURES = 3
#: The window over which a channel's typical rate is measured.
TYPICAL_WINDOW = timedelta(days=7)
#: Inbound messages an hour, on average over TYPICAL_WINDOW, from which a channel counts as normally busy.
BUSY_PER_HOUR = 6
#: A busy channel is silent after this many typical gaps without a message...
SILENT_AFTER_GAPS = 6
#: ...and never sooner than this.
SILENT_AT_LEAST = timedelta(minutes=30)
#: A lag beyond this many poll intervals (and beyond LAG_AT_LEAST) degrades a channel.
LAG_POLL_INTERVALS = 3
LAG_AT_LEAST = timedelta(minutes=5)


class State(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    BROKEN = "broken"
    DISABLED = "disabled"


@dataclass(frozen=True)
class Activity:
    """A channel's inbound messages, as counted for all channels at once (``InboundMessageQuerySet.activity``)."""

    last_hour: int = 0
    last_week: int = 0
    last_received_at: datetime | None = None
    oldest_pending_at: datetime | None = None

    @property
    def typical_per_hour(self) -> float:
        return self.last_week / (TYPICAL_WINDOW / timedelta(hours=1))


@dataclass
class Health:
    state: State
    #: Why the channel is not healthy, one plain sentence each.
    reasons: list[str] = field(default_factory=list)
    reauthorize: bool = False
    lag: timedelta | None = None
    silent_for: timedelta | None = None


def is_broken(*, enabled: bool, healthy: bool, consecutive_failures: int) -> bool:
    """The rule the alerts follow (``Channel.BROKEN`` states it in SQL for the conditional UPDATE)."""
    return enabled and (not healthy or consecutive_failures >= BROKEN_AFTER_FAILURES)


def silent_for(activity: Activity, now: datetime) -> timedelta | None:
    """How long a normally busy channel has received nothing, once that is unusual; None otherwise."""
    rate = activity.typical_per_hour
    if rate < BUSY_PER_HOUR or activity.last_received_at is None:
        return None
    quiet = now - activity.last_received_at
    threshold = max(SILENT_AT_LEAST, timedelta(hours=SILENT_AFTER_GAPS / rate))
    return quiet if quiet > threshold else None


def lag(channel, activity: Activity, now: datetime, *, polls: bool) -> timedelta | None:
    """How far behind the channel may be (see the module's docstring); None when nothing says."""
    behind = []
    if polls and channel.poll_interval_seconds and channel.last_success_at:
        behind.append(now - channel.last_success_at)
    if activity.oldest_pending_at:
        behind.append(now - activity.oldest_pending_at)
    return max(behind, default=None)


def lag_limit(channel, *, polls: bool) -> timedelta:
    interval = timedelta(seconds=channel.poll_interval_seconds) if polls else timedelta(0)
    return max(LAG_AT_LEAST, LAG_POLL_INTERVALS * interval)


def assess(channel, activity: Activity, now: datetime, *, polls: bool) -> Health:
    """The channel's state and the reasons for it."""
    if not channel.enabled:
        return Health(State.DISABLED)
    health = Health(State.HEALTHY, lag=lag(channel, activity, now, polls=polls), silent_for=silent_for(activity, now))
    failures = channel.consecutive_failures
    health.reauthorize = not channel.healthy and channel.last_error_kind == "credentials"
    if is_broken(enabled=True, healthy=channel.healthy, consecutive_failures=failures):
        health.state = State.BROKEN
        if health.reauthorize:
            health.reasons.append("The platform refused the credentials: re-authorize the channel.")
        elif not channel.healthy:
            health.reasons.append("The platform refused the channel's requests; an administrator must fix it.")
        if failures >= BROKEN_AFTER_FAILURES:
            health.reasons.append(f"{failures} failures in a row.")
        return health
    if failures:
        health.reasons.append(f"{failures} failure{'' if failures == 1 else 's'} in a row.")
    if channel.last_error_kind == "rate_limited" and channel.last_error:
        health.reasons.append("Rate limited by the platform: polls wait as it asks.")
    if channel.paused_reason:
        health.reasons.append("Polling is paused.")
    if health.lag is not None and health.lag > lag_limit(channel, polls=polls):
        health.reasons.append(f"Behind by {minutes(health.lag)}.")
    if health.silent_for is not None:
        health.reasons.append(f"Silent for {minutes(health.silent_for)}, though normally busy.")
    if health.reasons:
        health.state = State.DEGRADED
    return health


def minutes(span: timedelta) -> str:
    count = int(span.total_seconds() // 60)
    return f"{count} minute{'' if count == 1 else 's'}"
