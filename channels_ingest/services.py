"""The bridge between adapters and tickets: poll, store, ingest, triage, and the beat sweep.

Every step is idempotent. Inbound events are stored first (unique per
channel and external id), then ingested in batches; the cursor is saved in
the same transaction as what it covers.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from tickets.models import Attachment, Message, Ticket, TicketThread
from tickets.services import (
    ReplyError,
    receive_batch,
    refresh_identities,
    reply_to_ticket,
)

from . import triage
from .adapters.base import AdapterError, CredentialsError, Envelope, RateLimited, Rejected, Sender, TransientError
from .models import Channel, InboundMessage
from .usage import enforce_budget, record_usage

logger = logging.getLogger(__name__)

POLL_LEASE = timedelta(minutes=5)
STALE_PENDING = timedelta(seconds=10)
STALE_SENDING = timedelta(minutes=5)
LOST_RETRY = timedelta(minutes=2)


class LeaseLost(Exception):
    """Another poller took over this channel (our lease expired)."""


# Storing ------------------------------------------------------------------


def store_envelopes(channel: Channel, envelopes: list[Envelope], rejected: list[Rejected] = ()) -> int:
    """Insert envelopes not stored yet; returns how many were new. Schedules ingestion on commit."""
    for item in rejected:
        logger.warning("channel %s: rejected inbound %s: %s", channel.name, item.reference, item.reason)
    if not envelopes:
        return 0
    by_id = {e.external_id: e for e in envelopes}
    with transaction.atomic():
        known = set(
            InboundMessage.objects.filter(channel=channel, external_id__in=by_id).values_list("external_id", flat=True)
        )
        rows = [
            InboundMessage(channel=channel, external_id=ext, payload=without_nul(e.to_json()))
            for ext, e in by_id.items()
            if ext not in known
        ]
        InboundMessage.objects.bulk_create(rows, ignore_conflicts=True)
        if rows:
            schedule_ingest(channel.pk)
    return len(rows)


def without_nul(value):
    """PostgreSQL refuses U+0000 in text and JSON; keep the rest of a message intact."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {key: without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    return value


def _ingest_flag(channel_id):
    return f"ingest-queued:{channel_id}"


def schedule_ingest(channel_id: int) -> None:
    """Queue one ingest task for the channel once the current transaction commits.

    A burst of webhooks queues one task, not one per request: the flag is
    cleared by the task before it reads pending rows, so nothing committed
    after that read goes unnoticed.
    """

    def queue_once():
        from .tasks import enqueue, ingest_channel

        # Short-lived, so a flag left by a task lost with its worker only delays the next one briefly.
        if cache.add(_ingest_flag(channel_id), 1, timeout=10):
            enqueue(ingest_channel, channel_id)

    transaction.on_commit(queue_once)


# Polling ------------------------------------------------------------------


@dataclass
class PollOutcome:
    polled: bool
    stored: int = 0
    error: str = ""


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


def poll_channel(channel_id: int) -> PollOutcome:
    """Poll one channel once. Never overlaps with another poll of the same channel.

    A lease on the channel row (with a fencing token checked on every page
    commit) keeps pollers apart across workers, and expires if a worker dies.
    """
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


# Ingesting ----------------------------------------------------------------


def ingest_channel(channel_id: int, *, batch_size: int | None = None) -> int:
    """Turn all pending inbound rows of a channel into ticket messages; returns how many were handled."""
    cache.delete(_ingest_flag(channel_id))
    batch_size = batch_size or settings.INGEST_BATCH_SIZE
    handled = 0
    while True:
        count = _ingest_batch(channel_id, batch_size)
        if not count:
            return handled
        handled += count


def _ingest_batch(channel_id, batch_size) -> int:
    with transaction.atomic():
        _relax_commit_durability()
        # Serializes ingestion per channel (so a new thread opens one ticket),
        # without blocking webhook inserts, which only need a key-share lock.
        channel = Channel.objects.select_for_update(no_key=True).filter(pk=channel_id).first()
        if channel is None:
            return 0
        rows = list(
            InboundMessage.objects.filter(channel=channel, status=InboundMessage.Status.PENDING).order_by("id")[
                :batch_size
            ]
        )
        if not rows:
            return 0
        try:
            with transaction.atomic():
                _ingest_rows(channel, rows)
        except Exception:
            logger.exception("channel %s: batch of %d failed; retrying its messages one by one", channel.name, len(rows))
            for row in rows:
                _ingest_alone(channel, row)
    return len(rows)


def _relax_commit_durability():
    """Let PostgreSQL acknowledge this commit before its WAL reaches disk.

    Safe here, and only here: the durable record is the InboundMessage row,
    committed synchronously when it was stored. A crash can only lose the
    ingestion and the "processed" mark together, and ingestion is idempotent,
    so the row is simply ingested again.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


def _ingest_alone(channel, row):
    try:
        with transaction.atomic():
            _ingest_rows(channel, [row])
    except Exception as exc:  # noqa: BLE001 - one bad message must not block the rest
        logger.exception("channel %s: inbound %s failed", channel.name, row.external_id)
        InboundMessage.objects.filter(pk=row.pk).update(
            status=InboundMessage.Status.FAILED,
            attempts=F("attempts") + 1,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            processed_at=timezone.now(),
        )


def _ingest_rows(channel, rows):
    envelopes = [Envelope.from_json(row.payload) for row in rows]
    held = _hold_for_triage(channel, rows, envelopes)
    envelopes = _with_known_names(channel, [e for e in envelopes if e.external_id not in held])
    outcomes = receive_batch(channel=channel, envelopes=envelopes)
    _fetch_attachments_after_commit([a for outcome in outcomes.values() for a in outcome.attachments_to_fetch])
    _acknowledge_publicly(channel, envelopes, outcomes)
    rows = [row for row in rows if row.external_id not in held]
    now = timezone.now()
    processed = [r.pk for r in rows if outcomes.get(r.external_id, None) and outcomes[r.external_id].stored]
    InboundMessage.objects.filter(pk__in=processed).update(
        status=InboundMessage.Status.PROCESSED, attempts=F("attempts") + 1, processed_at=now
    )
    skipped = defaultdict(list)
    for row in rows:
        outcome = outcomes.get(row.external_id)
        if outcome is None or not outcome.stored:
            skipped[outcome.note if outcome else "not interpreted"].append(row.pk)
    for note, ids in skipped.items():
        InboundMessage.objects.filter(pk__in=ids).update(
            status=InboundMessage.Status.SKIPPED, attempts=F("attempts") + 1, error=note, processed_at=now
        )


def _fetch_attachments_after_commit(attachment_ids):
    """Files are downloaded by their own tasks: ingestion does not wait on (possibly large) downloads."""
    if not attachment_ids:
        return
    from .tasks import enqueue, fetch_attachment

    def queue():
        for attachment_id in attachment_ids:
            enqueue(fetch_attachment, attachment_id)

    transaction.on_commit(queue)


def _hold_for_triage(channel, rows, envelopes) -> set[str]:
    """Public messages the channel's rules do not ticket at once wait in the triage list.

    Not those an agent already accepted, nor replies in a conversation that has a ticket.
    """
    accepted = {row.external_id for row in rows if row.triaged_by_id}
    candidates = [e for e in envelopes if e.external_id not in accepted and triage.needs_triage(e, channel.config)]
    if not candidates:
        return set()
    ticketed = set(
        TicketThread.objects.filter(
            channel=channel, key__in={e.thread_key for e in candidates}, detached_at=None
        ).values_list("key", flat=True)
    )
    held = {e.external_id for e in candidates if e.thread_key not in ticketed}
    InboundMessage.objects.filter(channel=channel, external_id__in=held).update(status=InboundMessage.Status.TRIAGE)
    return held


def _acknowledge_publicly(channel, envelopes, outcomes):
    """Optionally answer a public message that opened a ticket with its number, where everyone saw it."""
    template = channel.config.get("public_ack")
    if not template:
        return
    opened = {
        outcomes[e.external_id].ticket_id
        for e in envelopes
        if e.public and e.external_id in outcomes and outcomes[e.external_id].opened_ticket
    }
    for ticket in Ticket.objects.filter(pk__in=opened):
        try:
            reply_to_ticket(ticket=ticket, author=None, body=template.format(ticket=ticket.pk), mode="public")
        except ReplyError as exc:
            logger.warning("channel %s: no public acknowledgement for ticket %s: %s", channel.name, ticket.pk, exc)


def accept_triaged(inbound_ids, *, user) -> int:
    """An agent turns triaged public messages into tickets."""
    rows = InboundMessage.objects.filter(pk__in=inbound_ids, status=InboundMessage.Status.TRIAGE)
    channel_ids = set(rows.values_list("channel_id", flat=True))
    with transaction.atomic():
        count = rows.update(status=InboundMessage.Status.PENDING, triaged_by=user, triaged_at=timezone.now())
        for channel_id in channel_ids:
            schedule_ingest(channel_id)
    return count


def dismiss_triaged(inbound_ids, *, user) -> int:
    """An agent decides triaged public messages need no ticket. They stay on record as skipped."""
    return InboundMessage.objects.filter(pk__in=inbound_ids, status=InboundMessage.Status.TRIAGE).update(
        status=InboundMessage.Status.SKIPPED,
        triaged_by=user,
        triaged_at=timezone.now(),
        processed_at=timezone.now(),
        error=f"Dismissed in triage by {user.get_username()}",
    )


def _with_known_names(channel, envelopes):
    """Fill in cached names now; ask the platform for the rest after commit, off the ingest path.

    Ingestion never waits on (or is rate-limited by) a profile lookup: a new
    person's name appears a moment after their first message.
    """
    senders = {e.sender for e in envelopes if e.sender and not e.sender.display_name}
    if not senders:
        return envelopes
    known = channel.adapter().describe_senders(list(senders), fetch=False)
    unknown = [vars(s).copy() for s in senders if s.external_id not in known]
    if unknown:
        from .tasks import describe_senders, enqueue

        transaction.on_commit(lambda: enqueue(describe_senders, channel.pk, unknown))
    return [
        Envelope(**{**vars(e), "sender": known[e.sender.external_id]}) if e.sender and e.sender.external_id in known else e
        for e in envelopes
    ]


def describe_senders(channel_id: int, senders: list[Sender]) -> int:
    """Look up names on the platform and update the people they belong to; returns how many were found.

    Runs after ingestion, so the channel may have been deleted meanwhile: then there is nothing to do.
    """
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return 0
    described = channel.adapter().describe_senders(senders, fetch=True)
    refresh_identities(list(described.values()))
    return len(described)


# Housekeeping -------------------------------------------------------------


def sweep(now=None) -> dict:
    """Beat's periodic pass: start due polls and recover work a lost task left behind."""
    from .tasks import deliver_message as deliver_task
    from .tasks import fetch_attachment as fetch_task
    from .tasks import ingest_channel as ingest_task
    from .tasks import poll_channel as poll_task

    now = now or timezone.now()
    for channel in Channel.objects.exclude(paused_reason=""):
        enforce_budget(channel)  # a new month, or a raised budget, resumes polling
    due = list(Channel.objects.due_for_poll(now).values_list("pk", "poll_interval_seconds"))
    for channel_id, interval in due:
        Channel.objects.filter(pk=channel_id).update(next_poll_at=now + timedelta(seconds=interval))
        poll_task.delay(channel_id)

    stalled_channels = set(
        InboundMessage.objects.filter(status=InboundMessage.Status.PENDING, received_at__lt=now - STALE_PENDING)
        .values_list("channel_id", flat=True)
        .distinct()
    )
    for channel_id in stalled_channels:
        ingest_task.delay(channel_id)

    lost = list(
        Message.objects.filter(
            delivery_status=Message.DeliveryStatus.QUEUED, delivery_next_attempt_at__lt=now - LOST_RETRY
        ).values_list("pk", flat=True)
    )
    for message_id in lost:
        deliver_task.delay(message_id)

    lost_downloads = list(
        Attachment.objects.filter(
            status=Attachment.Status.PENDING, next_attempt_at__lt=now - LOST_RETRY
        ).values_list("pk", flat=True)
    )
    for attachment_id in lost_downloads:
        fetch_task.delay(attachment_id)

    unknown = Message.objects.filter(
        delivery_status=Message.DeliveryStatus.SENDING, delivery_started_at__lt=now - STALE_SENDING
    ).update(
        delivery_status=Message.DeliveryStatus.FAILED,
        delivery_error="The worker sending this reply stopped mid-send; it may or may not have arrived. "
        "Check the conversation before retrying.",
    )
    return {
        "polls": len(due),
        "ingests": len(stalled_channels),
        "redeliveries": len(lost),
        "downloads": len(lost_downloads),
        "unknown": unknown,
    }

