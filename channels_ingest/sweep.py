"""Beat's periodic pass: start the polls that are due and recover work whose task was lost.

It holds no state: everything it needs is in the database, so a restarted beat (or broker) loses nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import Case, F, Q, When
from django.utils import timezone

from . import delivery, downloads
from .models import Channel, InboundMessage
from .queueing import TaskName, enqueue, enqueue_each
from .usage import enforce_budget

logger = logging.getLogger(__name__)

#: Pending inbound rows this old were not picked up by the ingest their store queued.
STALE_PENDING = timedelta(seconds=10)
#: How often a channel's credentials are checked again and its learned state refreshed (templates, names).
STATE_REFRESH = timedelta(hours=1)


def sweep(now: datetime | None = None) -> dict:
    """Queue due polls (and the polls of dead pollers) and stalled ingests, lift budget pauses, and recover lost deliveries and downloads.
    Returns how many of each it queued or failed."""
    now = now or timezone.now()
    for channel in Channel.objects.exclude(paused_reason=""):
        enforce_budget(channel)  # a new month, or a raised budget, resumes polling
    due = list(Channel.objects.due_for_poll(now).values_list("pk", "poll_interval_seconds"))
    lapsed = Q(poll_lease_expires_at__lt=now)
    for channel_id, interval in due:
        # A lapsed lease is cleared with it, so its replacement poll is queued once, not on every pass.
        Channel.objects.filter(pk=channel_id).update(
            next_poll_at=now + timedelta(seconds=interval),
            poll_lease_token=Case(When(lapsed, then=None), default=F("poll_lease_token")),
            poll_lease_expires_at=Case(When(lapsed, then=None), default=F("poll_lease_expires_at")),
        )
        enqueue(TaskName.POLL, channel_id)

    stalled_channels = (
        InboundMessage.objects.filter(status=InboundMessage.Status.PENDING, received_at__lt=now - STALE_PENDING)
        .values_list("channel_id", flat=True)
        .distinct()
    )
    counts = {
        "polls": len(due),
        "state_refreshes": _refresh_stale_states(now),
        "ingests": enqueue_each(TaskName.INGEST, stalled_channels),
        "redeliveries": delivery.redeliver_overdue(now),
        "downloads": downloads.redownload_overdue(now),
        "unknown": delivery.recover_stalled_sends(now),
    }
    # Every few seconds: only a pass that recovered something is worth a line at INFO (each poll says its own).
    recovered = any(count for name, count in counts.items() if name != "polls")
    done = ", ".join(f"{name} {count}" for name, count in counts.items() if count) or "nothing due"
    logger.log(logging.INFO if recovered else logging.DEBUG, "sweep: %s", done)
    return counts


def _refresh_stale_states(now: datetime) -> int:
    """Queue a credentials check for each channel last checked over ``STATE_REFRESH`` ago (once: the mark moves
    now). A channel never checked is left to its first poll or to ``channels add``."""
    stale = Channel.objects.filter(enabled=True, credentials_checked_at__lt=now - STATE_REFRESH)
    ids = list(stale.values_list("pk", flat=True))
    if ids:
        Channel.objects.filter(pk__in=ids).update(credentials_checked_at=now)
    return enqueue_each(TaskName.REFRESH_STATE, ids)
