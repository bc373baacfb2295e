"""Downloading the files that came with inbound messages, after ingestion (which never waits on them).

Ingestion records each file ``pending`` (``tickets.attachments.record_inbound``); every later change of its
status happens in this module. The adapter fetches the bytes, which are spooled to a temporary file and kept
under a random name on the default storage, up to ATTACHMENT_MAX_BYTES (beyond: ``too_large``). Every
attempt counts, whatever fails: the platform's transient errors and our own (storage, database) are retried
with backoff up to ATTACHMENT_FETCH_MAX_ATTEMPTS; the platform's other errors, or the last attempt, leave the
file ``failed`` with the reason, shown on the ticket. Only a pending attachment changes, so a duplicate task
does nothing.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db.models import F
from django.utils import timezone

from channel_adapters.base import AdapterError, CredentialsError, TransientError
from tickets.attachments import too_large_error
from tickets.models import Attachment, Message, attachment_path

from .backoff import retry_delay
from .models import Channel
from .portal_channel import KIND as PORTAL_KIND
from .portal_channel import forget_upload
from .queueing import TaskName, enqueue_each
from .usage import record_usage

logger = logging.getLogger(__name__)

#: A pending download whose scheduled attempt is this overdue lost its task.
LOST_DOWNLOAD = timedelta(minutes=2)
#: Our own side failing (a full disk, the database away) is an outage more often than a blip: its retries
#: start this many seconds apart, so the attempts span minutes (30, 60, 120, 240 s) rather than seconds.
OUTAGE_FIRST_RETRY_SECONDS = 30


@dataclass
class DownloadOutcome:
    status: str
    retry_in: float | None = None


def download_attachment(attachment_id: int) -> DownloadOutcome:
    """Fetch and keep one pending attachment. Does nothing unless it is still pending."""
    pending = claim_download(attachment_id)
    if pending is None:
        return DownloadOutcome(status="noop")
    channel = Channel.objects.filter(pk=pending.channel_id).first() if pending.channel_id else None
    if channel is None:
        fail_download(attachment_id, "The conversation this file came from is gone.")
        return DownloadOutcome(status="failed")
    try:
        return _fetch_and_store(pending, channel)
    except Exception as exc:
        logger.exception("attachment %s: attempt %s failed on our side", attachment_id, pending.attempts)
        error = f"Could not store the file: {exc}" if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
        return _retry_or_give_up(pending, error, retry_delay(pending.attempts, exc, first=OUTAGE_FIRST_RETRY_SECONDS))


def _fetch_and_store(pending: PendingDownload, channel: Channel) -> DownloadOutcome:
    """One attempt. The platform's errors are decided here; any other error (ours) propagates."""
    adapter = channel.adapter()
    try:
        status = store_download(pending.attachment_id, adapter.fetch_attachment(pending.ref))
    except TransientError as exc:
        return _retry_or_give_up(pending, str(exc), retry_delay(pending.attempts, exc))
    except AdapterError as exc:
        if isinstance(exc, CredentialsError):
            channel.record_credentials_rejected(str(exc))
        logger.warning("attachment %s: download failed: %s", pending.attachment_id, exc)
        fail_download(pending.attachment_id, str(exc))
        return DownloadOutcome(status="failed")
    finally:
        record_usage(channel, adapter.usage)
    if status == Attachment.Status.STORED and channel.kind == PORTAL_KIND:
        forget_upload(pending.ref)  # the attachment holds its own copy now
    return DownloadOutcome(status=status)


def _retry_or_give_up(pending: PendingDownload, error: str, delay: float) -> DownloadOutcome:
    if pending.attempts >= settings.ATTACHMENT_FETCH_MAX_ATTEMPTS:
        fail_download(pending.attachment_id, f"{error} (gave up after {pending.attempts} attempts)")
        return DownloadOutcome(status="failed")
    retry_download_later(pending.attachment_id, f"Attempt {pending.attempts} failed: {error}", delay)
    return DownloadOutcome(status="retry", retry_in=delay)


@dataclass(frozen=True)
class PendingDownload:
    attachment_id: int
    ref: str
    attempts: int
    channel_id: int | None


def claim_download(attachment_id: int) -> PendingDownload | None:
    """The attachment to fetch and its channel, counting the attempt; None unless it is still pending.

    The attempt is due now: if it never records its outcome (its worker died, the database went away), the
    sweep takes it as lost LOST_DOWNLOAD later, not at once, so an outage cannot spend the attempts in a burst.
    """
    counted = Attachment.objects.filter(pk=attachment_id, status=Attachment.Status.PENDING).update(
        attempts=F("attempts") + 1, next_attempt_at=timezone.now()
    )
    if not counted:
        return None
    attachment = Attachment.objects.select_related("message__thread").get(pk=attachment_id)
    thread = attachment.message.thread
    return PendingDownload(
        attachment_id, attachment.external_ref, attachment.attempts, thread.channel_id if thread else None
    )


def store_download(attachment_id: int, chunks: Iterator[bytes]) -> str:
    """Keep the bytes ``chunks`` yields, up to the size limit; returns the attachment's new status.

    Errors raised by ``chunks`` propagate (the caller decides whether to retry). Stops reading at the
    limit and records "too large". Only a pending attachment changes, so a duplicate run is harmless.
    """
    limit = settings.ATTACHMENT_MAX_BYTES
    with closing(chunks), tempfile.TemporaryFile() as spool:
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                _finish(attachment_id, status=Attachment.Status.TOO_LARGE, error=too_large_error(size, limit))
                return Attachment.Status.TOO_LARGE
            spool.write(chunk)
        spool.seek(0)
        name = default_storage.save(attachment_path(None, ""), File(spool))
    if not _finish(attachment_id, status=Attachment.Status.STORED, file=name, size=size, error=""):
        default_storage.delete(name)  # another run stored it first
        return Attachment.objects.values_list("status", flat=True).get(pk=attachment_id)
    return Attachment.Status.STORED


def retry_download_later(attachment_id: int, error: str, delay: float) -> None:
    Attachment.objects.filter(pk=attachment_id, status=Attachment.Status.PENDING).update(
        error=f"{error}; retrying in {delay:.0f}s", next_attempt_at=timezone.now() + timedelta(seconds=delay)
    )


def fail_download(attachment_id: int, error: str) -> None:
    _finish(attachment_id, status=Attachment.Status.FAILED, error=error[:2000])


def _finish(attachment_id, **fields) -> bool:
    return bool(
        Attachment.objects.filter(pk=attachment_id, status=Attachment.Status.PENDING).update(
            next_attempt_at=None, **fields
        )
    )


def redownload_overdue(now: datetime) -> int:
    """Queue again the downloads whose scheduled attempt is long overdue: their task was lost. Returns how many.

    Each is due again from now, so while its new task waits for a worker the sweep does not queue it again.
    """
    lost = list(
        Attachment.objects.filter(
            status=Attachment.Status.PENDING, next_attempt_at__lt=now - LOST_DOWNLOAD
        ).values_list("pk", flat=True)
    )
    Attachment.objects.filter(pk__in=lost, status=Attachment.Status.PENDING).update(next_attempt_at=now)
    return enqueue_each(TaskName.DOWNLOAD, lost)


@dataclass(frozen=True)
class Original:
    """A message as the platform delivered it, read from the platform when asked (``Message.meta["original"]``)."""

    name: str
    content_type: str
    chunks: Iterator[bytes]


def open_original(message: Message) -> Original | None:
    """The original of ``message`` streamed from its channel; None when the channel keeps none. Raises
    ``AdapterError`` when the platform no longer has it or cannot be reached."""
    original = message.meta.get("original") if isinstance(message.meta, dict) else None
    thread = message.thread
    if not isinstance(original, dict) or not original.get("ref") or thread is None:
        return None
    channel = thread.channel
    chunks = channel.adapter().fetch_attachment(original["ref"])
    first = next(chunks, b"")  # reach the platform now, so a failure is an answer, not a broken download
    return Original(
        name=str(original.get("name") or "original"),
        content_type=str(original.get("content_type") or "application/octet-stream"),
        chunks=itertools.chain([first], chunks),
    )
