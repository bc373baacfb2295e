"""Polling: one channel at a time, never two polls of one channel at once, whatever the number of workers.

A lease on the channel row (with a fencing token checked on every page commit) keeps pollers apart across
workers and expires if a worker dies. Each page is stored with the cursor that covers it, in one transaction,
so a poll that stops half-way resumes where its last stored page ended.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from channel_adapters.base import AdapterError, CredentialsError, RateLimited, TransientError

from .ingest import store_envelopes
from .models import Channel
from .usage import record_usage

logger = logging.getLogger(__name__)

POLL_LEASE = timedelta(minutes=5)


class LeaseLost(Exception):
    """Another poller took over this channel (our lease expired)."""


@dataclass
class PollOutcome:
    polled: bool
    stored: int = 0
    error: str = ""
    #: Why the channel was not polled: it is paused (e.g. its monthly budget is spent).
    paused: str = ""


def _acquire_poll_lease(channel_id) -> uuid.UUID | None:
    token = uuid.uuid4()
    now = timezone.now()
    won = (
        Channel.objects.filter(pk=channel_id, enabled=True)
        .filter(Q(poll_lease_expires_at__isnull=True) | Q(poll_lease_expires_at__lt=now))
        .update(poll_lease_token=token, poll_lease_expires_at=now + POLL_LEASE)
    )
    return token if won else None


def _release_poll_lease(channel_id, token):
    Channel.objects.filter(pk=channel_id, poll_lease_token=token).update(
        poll_lease_token=None, poll_lease_expires_at=None
    )


def poll_channel(channel_id: int, *, force: bool = False) -> PollOutcome:
    """Poll one channel once. Never overlaps with another poll of the same channel.

    A lease on the channel row (with a fencing token checked on every page
    commit) keeps pollers apart across workers, and expires if a worker dies.
    A paused channel is not polled (a task queued before the pause included) unless ``force``.
    """
    paused = Channel.objects.filter(pk=channel_id).values_list("paused_reason", flat=True).first()
    if paused and not force:
        return PollOutcome(polled=False, paused=paused)
    token = _acquire_poll_lease(channel_id)
    if token is None:
        return PollOutcome(polled=False)
    channel = Channel.objects.get(pk=channel_id)
    adapter = channel.adapter()
    stored = 0
    try:
        if not channel.state:
            _refresh_state(channel, adapter)
        for page in adapter.poll(channel.cursor):
            with transaction.atomic():
                renewed = Channel.objects.filter(pk=channel_id, poll_lease_token=token).update(
                    cursor=page.cursor, poll_lease_expires_at=timezone.now() + POLL_LEASE
                )
                if not renewed:
                    raise LeaseLost(channel.name)
                stored += store_envelopes(channel, page.envelopes, page.rejected)
            channel.cursor = page.cursor
    except CredentialsError as exc:
        logger.error("channel %s: credentials rejected: %s", channel.name, exc)
        channel.record_error(f"Credentials rejected: {exc}", unhealthy=True)
        return PollOutcome(polled=True, stored=stored, error=str(exc))
    except RateLimited as exc:
        logger.warning("channel %s: rate limited, retry after %ss", channel.name, exc.retry_after)
        channel.record_error(f"Rate limited: {exc}", unhealthy=False, retry_after=exc.retry_after or 60)
        return PollOutcome(polled=True, stored=stored, error=str(exc))
    except AdapterError as exc:
        logger.error("channel %s: poll failed: %s", channel.name, exc)
        channel.record_error(str(exc), unhealthy=not isinstance(exc, TransientError))
        return PollOutcome(polled=True, stored=stored, error=str(exc))
    finally:
        _release_poll_lease(channel_id, token)
        record_usage(channel, adapter.usage)
    channel.record_success(stored=stored)
    return PollOutcome(polled=True, stored=stored)


def _refresh_state(channel, adapter):
    channel.state = adapter.check_credentials()
    adapter.state = channel.state
    channel.save(update_fields=["state"])


def verify_channel(channel: Channel) -> None:
    """Check credentials now; record the result in the channel's health. Raises ``AdapterError``."""
    try:
        _refresh_state(channel, channel.adapter())
    except AdapterError as exc:
        channel.record_error(f"Credentials check failed: {exc}", unhealthy=True)
        raise
    channel.healthy, channel.last_error = True, ""
    channel.save(update_fields=["healthy", "last_error"])
