"""Files on messages: recording what arrived, keeping the bytes once fetched, and what a reply may carry.

Fetching is the channel layer's job (``channels_ingest.attachments``); this module only stores what
it is handed, within ``settings.ATTACHMENT_MAX_BYTES``.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db.models import F
from django.utils import timezone

from channels_ingest.adapters.base import AttachmentLimits, InboundAttachment, ReplyMode

from .models import Attachment, attachment_path

MAX_NAME_LENGTH = 150
MIME_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")


def safe_filename(name: str) -> str:
    """A file name fit for a header and a download folder: no path, no control or invisible characters."""
    name = re.split(r"[/\\]", name or "")[-1]
    name = "".join(c for c in unicodedata.normalize("NFC", name) if unicodedata.category(c)[0] not in "CZ" or c == " ")
    name = " ".join(name.split()).strip(". ")
    if len(name) > MAX_NAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        extension = extension[:16] if dot and stem else ""
        name = name[: MAX_NAME_LENGTH - len(extension) - 2] + "…" + (f".{extension}" if extension else "")
    return name or "attachment"


def safe_content_type(content_type: str) -> str:
    content_type = (content_type or "").split(";")[0].strip().lower()
    return content_type if MIME_TYPE.match(content_type) else "application/octet-stream"


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def too_large_error(size: int, limit: int) -> str:
    return f"Too large to keep: {human_size(size)}; the limit is {human_size(limit)}."


# Inbound ----------------------------------------------------------------------


def record_inbound(message_files: Iterable[tuple[int, InboundAttachment]]) -> dict[int, list[int]]:
    """Create the attachments of newly stored messages, in one query.

    Returns the ids to fetch per message id (one declared over the size limit is not fetched).
    """
    limit = settings.ATTACHMENT_MAX_BYTES
    now = timezone.now()
    rows = []
    for message_id, item in message_files:
        oversize = item.size > limit
        rows.append(
            Attachment(
                message_id=message_id,
                name=safe_filename(item.name),
                content_type=safe_content_type(item.content_type),
                size=item.size,
                external_ref=item.ref,
                alt_text=item.alt_text,
                status=Attachment.Status.TOO_LARGE if oversize else Attachment.Status.PENDING,
                error=too_large_error(item.size, limit) if oversize else "",
                next_attempt_at=None if oversize else now,
            )
        )
    to_fetch = defaultdict(list)
    for attachment in Attachment.objects.bulk_create(rows):
        if attachment.status == Attachment.Status.PENDING:
            to_fetch[attachment.message_id].append(attachment.pk)
    return to_fetch


@dataclass(frozen=True)
class PendingDownload:
    attachment_id: int
    ref: str
    attempts: int
    channel_id: int | None


def claim_download(attachment_id: int) -> PendingDownload | None:
    """The attachment to fetch and its channel, counting the attempt; None unless it is still pending."""
    counted = Attachment.objects.filter(pk=attachment_id, status=Attachment.Status.PENDING).update(
        attempts=F("attempts") + 1
    )
    if not counted:
        return None
    attachment = Attachment.objects.select_related("message__thread").get(pk=attachment_id)
    thread = attachment.message.thread
    return PendingDownload(attachment_id, attachment.external_ref, attachment.attempts, thread.channel_id if thread else None)


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


# Outbound ---------------------------------------------------------------------


def reply_limits(mode: ReplyMode | None) -> AttachmentLimits | None:
    """What files a reply in ``mode`` may carry here: the channel's limits within ATTACHMENT_MAX_BYTES."""
    if mode is None or mode.attachments is None:
        return None
    return AttachmentLimits(
        max_files=mode.attachments.max_files, max_bytes=min(mode.attachments.max_bytes, settings.ATTACHMENT_MAX_BYTES)
    )


def check_reply_files(files, mode: ReplyMode) -> str:
    """Why these uploaded files cannot go with a reply in ``mode``, or "" if they can."""
    if not files:
        return ""
    limits = reply_limits(mode)
    if limits is None:
        return f"{mode.label} cannot carry attachments on this channel; send the text alone."
    if len(files) > limits.max_files:
        return f"{len(files)} files attached; a reply takes at most {limits.max_files}."
    for upload in files:
        if upload.size > limits.max_bytes:
            name, size, limit = safe_filename(upload.name), human_size(upload.size), human_size(limits.max_bytes)
            return f"{name} is too large ({size}); files may be at most {limit}."
    return ""


def attach_reply_files(message, files) -> list[Attachment]:
    """Keep an agent's uploaded files on their (queued) reply. Call inside the reply's transaction."""
    attachments = []
    for upload in files:
        attachment = Attachment(
            message=message,
            name=safe_filename(upload.name),
            content_type=safe_content_type(upload.content_type),
            size=upload.size,
            status=Attachment.Status.STORED,
        )
        attachment.file.save(upload.name, upload, save=False)  # stored under a random name
        attachments.append(attachment)
    return Attachment.objects.bulk_create(attachments)
