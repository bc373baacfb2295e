"""Ingest: inbound events stored first, exactly once, then turned into ticket messages in batches.

Every inbound event becomes an ``InboundMessage`` row, unique per (channel, external id), before anything
else happens; a re-poll, a redelivered webhook or the same message by webhook and by poll all collapse into
that one row. Ingestion then hands batches of pending rows to the domain (``tickets.inbound``) and marks each
row processed, skipped or failed in the same transaction. Every status change of an ``InboundMessage``
(pending, triage, processed, skipped, failed) happens in this module.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections import defaultdict
from collections.abc import Sequence

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from channel_adapters.base import Envelope, Rejected
from tickets.bulk_insert import insert_new_rows
from tickets.inbound import receive_batch
from tickets.models import TicketThread

from . import acknowledgements, triage
from .models import Channel, InboundMessage
from .names import with_known_names
from .outages import is_outage, warn_outage
from .queueing import TaskName, enqueue, enqueue_on_commit

logger = logging.getLogger(__name__)


# Storing ------------------------------------------------------------------


def store_envelopes(channel: Channel, envelopes: list[Envelope], rejected: Sequence[Rejected] = ()) -> int:
    """Insert envelopes not stored yet; returns how many were new. Schedules ingestion on commit.

    The count is the INSERT's own: rows it skipped because they were already stored, or because a concurrent
    store of the same events inserted them first, are not counted. What the adapter could not interpret is
    stored too, as failed rows (see ``store_rejected``)."""
    if rejected:
        store_rejected(channel, rejected)
    if not envelopes:
        return 0
    by_id = {e.external_id: e for e in envelopes}
    with transaction.atomic():
        inserted = insert_new_rows(
            InboundMessage,
            [
                {"channel_id": channel.pk, "external_id": ext, "payload": storable(e.to_json())}
                for ext, e in by_id.items()
            ],
        )
        if inserted:
            schedule_ingest(channel.pk)
    return len(inserted)


#: The external id of a row holding an item the adapter rejected (its raw data, not an envelope).
REJECTED_PREFIX = "rejected:"


def store_rejected(channel: Channel, rejected: Sequence[Rejected]) -> None:
    """Keep each item an adapter could not interpret as a failed row holding the platform's raw data and the
    reason, for an admin to see. Its id is a digest of that data, so an item met again by every poll (it
    stays in the lookback window) is stored, and logged, once."""
    by_id = {}
    for item in rejected:
        payload = storable({"rejected": item.reference, "reason": item.reason, "raw": item.raw})
        digest = hashlib.sha256(json.dumps([payload["rejected"], payload["raw"]], sort_keys=True).encode())
        by_id[f"{REJECTED_PREFIX}{digest.hexdigest()}"] = payload
    known = set(
        InboundMessage.objects.filter(channel=channel, external_id__in=by_id).values_list("external_id", flat=True)
    )
    rows = []
    for external_id, payload in by_id.items():
        if external_id in known:
            continue
        logger.warning("channel %s: rejected inbound %s: %s", channel.name, payload["rejected"], payload["reason"])
        rows.append(
            InboundMessage(
                channel=channel,
                external_id=external_id,
                payload=payload,
                status=InboundMessage.Status.FAILED,
                error=f"Rejected by the {channel.kind} adapter: {payload['reason']}"[:2000],
                processed_at=timezone.now(),
            )
        )
    InboundMessage.objects.bulk_create(rows, ignore_conflicts=True)


#: What PostgreSQL refuses in text and JSON: U+0000, and UTF-16 surrogates (a platform's JSON can escape half
#: of a pair, "\ud83d"), which are not characters at all.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: Deeper than any real payload; a raw item nested further is cut there, so writing it cannot overflow the stack.
MAX_STORED_DEPTH = 64


def storable(value, depth=0):
    """A payload as PostgreSQL can hold it, the rest intact: unstorable characters become U+FFFD (visible
    where the text is shown), numbers JSON cannot hold (inf, nan) become text, and nesting stops at
    ``MAX_STORED_DEPTH``."""
    if isinstance(value, str):
        return UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if depth >= MAX_STORED_DEPTH and isinstance(value, dict | list):
        return "(nested too deeply to keep)"
    if isinstance(value, dict):
        return {storable(str(key)): storable(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item, depth + 1) for item in value]
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
        try:
            # Short-lived, so a flag left by a task lost with its worker only delays the next one briefly.
            first = cache.add(_ingest_flag(channel_id), 1, timeout=10)
        except Exception as exc:
            # The rows are committed: the sweep ingests them. A burst must not queue one task per request.
            if not is_outage(exc):
                raise
            warn_outage(f"channel {channel_id}: ingest left to the sweep, the cache is unavailable", exc)
            return
        if first:
            enqueue(TaskName.INGEST, channel_id)

    transaction.on_commit(queue_once)


# Ingesting ----------------------------------------------------------------


def ingest_channel(channel_id: int, *, batch_size: int | None = None) -> int:
    """Turn all pending inbound rows of a channel into ticket messages; returns how many were handled.

    An outage (``outages.is_outage``) stops it with the error, every row not yet handled still pending: the
    caller retries later (the task, with backoff), and the sweep finds them if it does not."""
    _clear_ingest_flag(channel_id)
    batch_size = batch_size or settings.INGEST_BATCH_SIZE
    handled = 0
    while True:
        count = _ingest_batch(channel_id, batch_size)
        if not count:
            return handled
        handled += count


def _clear_ingest_flag(channel_id):
    try:
        cache.delete(_ingest_flag(channel_id))
    except Exception as exc:
        if not is_outage(exc):
            raise
        # Left alone, the flag expires in seconds; until then the sweep queues the ingests it would have.
        warn_outage(f"channel {channel_id}: ingest flag not cleared, the cache is unavailable", exc)


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
        except Exception as exc:
            if is_outage(exc):
                raise
            logger.exception(
                "channel %s: batch of %d failed; retrying its messages one by one", channel.name, len(rows)
            )
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
    except Exception as exc:
        if is_outage(exc):
            raise  # the whole batch rolls back and stays pending, rows already done included
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
    envelopes = with_known_names(channel, [e for e in envelopes if e.external_id not in held])
    outcomes = receive_batch(channel=channel, envelopes=envelopes)
    _fetch_attachments_after_commit([a for outcome in outcomes.values() for a in outcome.attachments_to_fetch])
    acknowledgements.acknowledge(channel, envelopes, outcomes)
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
    for attachment_id in attachment_ids:
        enqueue_on_commit(TaskName.DOWNLOAD, attachment_id)


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


def requeue_failed(channel: Channel) -> int:
    """Put a channel's failed inbound rows back in the queue (an admin's decision, once the cause is fixed):
    pending again, their error cleared, ingested after commit. Returns how many. Items the adapter rejected
    stay failed: they hold the platform's raw data, which ingesting again could only fail on."""
    with transaction.atomic():
        failed = InboundMessage.objects.filter(channel=channel, status=InboundMessage.Status.FAILED)
        count = failed.exclude(external_id__startswith=REJECTED_PREFIX).update(
            status=InboundMessage.Status.PENDING, error="", processed_at=None
        )
        if count:
            schedule_ingest(channel.pk)
    logger.info("channel %s: re-queued %d failed inbound messages", channel.name, count)
    return count


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
