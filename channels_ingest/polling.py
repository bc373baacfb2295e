"""Polling: one channel at a time, never two polls of one channel at once, whatever the number of workers.

A lease on the channel row (with a fencing token checked on every page commit) keeps pollers apart across
workers. The lease is short and renewed while the poll is alive (by each page's commit and by a heartbeat
that also runs during a long platform call), so a dead worker's lease lapses within POLL_LEASE and beat's
sweep starts another poll at once. Each page is stored with the cursor that covers it, in one transaction,
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

from .heartbeat import Heartbeat
from .ingest import store_envelopes
from .models import Channel, ErrorKind
from .outages import is_outage
from .registry import can_poll
from .usage import record_usage

logger = logging.getLogger(__name__)

#: How long a poll's lease lasts unless renewed: a dead poller blocks its channel at most this long (plus one
#: sweep, SWEEP_SECONDS, to start the next poll).
POLL_LEASE = timedelta(seconds=20)
#: The heartbeat renews the lease this often, so a couple of slow renewals (a busy database) do not lose it.
LEASE_RENEWAL = timedelta(seconds=5)
#: The heartbeat gives up after this long: a poll stuck without storing a page lets another poller take over
#: (which the fencing token keeps from overlapping it); a poll that keeps storing pages keeps its lease.
LEASE_HEARTBEAT_LIMIT = timedelta(minutes=15)


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


def _renew_poll_lease(channel_id, token, **fields) -> bool:
    """Extend our lease (and write ``fields``) only while the token is still ours; False once it is not."""
    return bool(
        Channel.objects.filter(pk=channel_id, poll_lease_token=token).update(
            poll_lease_expires_at=timezone.now() + POLL_LEASE, **fields
        )
    )


def _release_poll_lease(channel_id, token):
    Channel.objects.filter(pk=channel_id, poll_lease_token=token).update(
        poll_lease_token=None, poll_lease_expires_at=None
    )


def poll_channel(channel_id: int, *, force: bool = False) -> PollOutcome:
    """Poll one channel once. Never overlaps with another poll of the same channel.

    A lease on the channel row (with a fencing token checked on every page commit) keeps pollers apart
    across workers; it is renewed while the poll runs and lapses within POLL_LEASE if its worker dies.
    A paused channel is not polled (a task queued before the pause included) unless ``force``.
    """
    paused, kind = Channel.objects.filter(pk=channel_id).values_list("paused_reason", "kind").first() or ("", None)
    if paused and not force:
        return PollOutcome(polled=False, paused=paused)
    if kind is None or not can_poll(kind):
        return PollOutcome(polled=False)  # a push-only platform (WhatsApp) given a poll interval by hand
    token = _acquire_poll_lease(channel_id)
    if token is None:
        return PollOutcome(polled=False)
    channel = Channel.objects.get(pk=channel_id)
    adapter = channel.adapter()
    stored = 0
    heartbeat = Heartbeat(
        f"the poll lease of channel {channel_id}",
        lambda: _renew_poll_lease(channel_id, token),
        every=LEASE_RENEWAL,
        limit=LEASE_HEARTBEAT_LIMIT,
    )
    heartbeat.start()
    try:
        if not channel.state:
            _refresh_state(channel, adapter)
        for page in adapter.poll(channel.cursor):
            with transaction.atomic():
                if not _renew_poll_lease(channel_id, token, cursor=page.cursor):
                    raise LeaseLost(channel.name)
                stored += store_envelopes(channel, page.envelopes, page.rejected)
            channel.cursor = page.cursor
    except CredentialsError as exc:
        logger.error("channel %s: credentials rejected: %s", channel.name, exc)
        channel.record_error(f"Credentials rejected: {exc}", kind=ErrorKind.CREDENTIALS, unhealthy=True)
        return PollOutcome(polled=True, stored=stored, error=str(exc))
    except RateLimited as exc:
        logger.warning("channel %s: rate limited, retry after %ss", channel.name, exc.retry_after)
        channel.record_error(
            f"Rate limited: {exc}", kind=ErrorKind.RATE_LIMITED, unhealthy=False, retry_after=exc.retry_after or 60
        )
        return PollOutcome(polled=True, stored=stored, error=str(exc))
    except AdapterError as exc:
        logger.error("channel %s: poll failed: %s", channel.name, exc)
        channel.record_error(str(exc), kind=ErrorKind.of(exc), unhealthy=not isinstance(exc, TransientError))
        return PollOutcome(polled=True, stored=stored, error=str(exc))
    except Exception as exc:
        if isinstance(exc, LeaseLost) or is_outage(exc):
            raise  # not this channel's doing: the task retries, and the sweep polls again
        # A bug reading the platform's answer (an adapter makes a failed row of what it cannot read): the channel
        # shows it, and breaks after a few polls in a row (the admins are told), rather than the task failing
        # unseen at every poll.
        logger.exception("channel %s: poll crashed", channel.name)
        channel.record_error(
            f"The helpdesk could not read this channel's messages ({type(exc).__name__}: {exc}); the log has the "
            "details.",
            kind=ErrorKind.TRANSIENT,
            unhealthy=False,
        )
        return PollOutcome(polled=True, stored=stored, error=f"{type(exc).__name__}: {exc}")
    finally:
        heartbeat.stop()
        _release_poll_lease(channel_id, token)
        record_usage(channel, adapter.usage)
    channel.record_success(stored=stored)
    if channel.first_import is None:
        channel.record_first_import()
    # Polls run every few seconds: a poll that found nothing new is not worth a line at INFO.
    logger.log(logging.INFO if stored else logging.DEBUG, "channel %s: polled, %d new", channel.name, stored)
    return PollOutcome(polled=True, stored=stored)


def _refresh_state(channel, adapter):
    channel.state = adapter.check_credentials()
    channel.credentials_checked_at = timezone.now()
    adapter.state = channel.state
    channel.save(update_fields=["state", "credentials_checked_at"])


def refresh_state(channel_id: int) -> None:
    """The periodic credentials check (``sweep``): learn what changed on the platform (e.g. WhatsApp's approved
    templates) and notice revoked tokens between polls, on push-only channels too. A platform that is only
    unreachable leaves the channel's health alone: the next check tries again."""
    channel = Channel.objects.filter(pk=channel_id, enabled=True).first()
    if channel is None:
        return
    try:
        _refresh_state(channel, channel.adapter())
    except CredentialsError as exc:
        logger.error("channel %s: credentials rejected: %s", channel.name, exc)
        channel.record_credentials_rejected(str(exc))
    except AdapterError as exc:
        logger.warning("channel %s: credentials not checked: %s", channel.name, exc)
    else:
        channel.record_credentials_accepted()


def verify_channel(channel: Channel) -> None:
    """Check credentials now; record the result in the channel's health. Raises ``AdapterError``."""
    try:
        _refresh_state(channel, channel.adapter())
    except AdapterError as exc:
        channel.record_error(f"Credentials check failed: {exc}", kind=ErrorKind.of(exc), unhealthy=True)
        raise
    channel.record_verified()


def try_credentials(channel: Channel) -> dict:
    """Check an unsaved channel's credentials (an admin testing a form): the platform's answer, as the state it
    would keep. Records nothing. Raises ``AdapterError`` with the platform's words."""
    return channel.adapter().check_credentials()
