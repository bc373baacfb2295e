"""Files on messages: recording what arrived, what a reply may carry, and names and types safe to show.

Downloading an inbound file, and every step of its status after ``pending``, is the pipeline's
(``channels_ingest.downloads``); this module records files and keeps an agent's uploads on their reply.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.utils import timezone

from channel_adapters.base import AttachmentLimits, InboundAttachment, ReplyMode

from .models import Attachment

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


# Outbound ---------------------------------------------------------------------


def reply_limits(mode: ReplyMode | None) -> AttachmentLimits | None:
    """What files a reply in ``mode`` may carry here: the channel's limits within ATTACHMENT_MAX_BYTES."""
    if mode is None or mode.attachments is None:
        return None
    return mode.attachments.capped(settings.ATTACHMENT_MAX_BYTES)


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
        content_type = safe_content_type(upload.content_type)
        most = limits.max_bytes_for(content_type)
        if most is None:
            kinds = ", ".join(prefix.rstrip("/") for prefix, _ in limits.by_type)
            return f"{safe_filename(upload.name)} ({content_type}) cannot go with {mode.label.lower()}: it takes {kinds} only."
        if upload.size > most:
            name, size, limit = safe_filename(upload.name), human_size(upload.size), human_size(most)
            kind = next((prefix.rstrip("/") for prefix, _ in limits.by_type if content_type.startswith(prefix)), "")
            return f"{name} is too large ({size}); {f'{kind} ' if kind else ''}files may be at most {limit}."
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
