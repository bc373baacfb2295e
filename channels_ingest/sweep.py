"""Beat's periodic pass: start the polls that are due and recover work whose task was lost.

It holds no state: everything it needs is in the database, so a restarted beat (or broker) loses nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Case, F, Q, When
from django.utils import timezone

from . import delivery, downloads
from .models import Channel, InboundMessage
from .queueing import TaskName, enqueue, enqueue_each
from .usage import enforce_budget

#: Pending inbound rows this old were not picked up by the ingest their store queued.
STALE_PENDING = timedelta(seconds=10)


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
    return {
        "polls": len(due),
        "ingests": enqueue_each(TaskName.INGEST, stalled_channels),
        "redeliveries": delivery.redeliver_overdue(now),
        "downloads": downloads.redownload_overdue(now),
        "unknown": delivery.recover_stalled_sends(now),
    }
