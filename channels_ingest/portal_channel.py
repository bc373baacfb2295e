"""What the pipeline gives the portal channel's adapter, which knows no Django: the files employees upload, and
a notice by email when the desk answers them.

Uploaded files are kept on the default storage before their message is stored; the envelope carries only the
kept file's name (its ``ref``). The download step reads them back through the adapter, as every channel's files
are, copies them to the attachments' own place, and the kept upload is removed once the attachment is stored.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.core.mail import send_mail
from django.urls import reverse

from channel_adapters.base import InboundAttachment, PermanentError, ReplyTarget
from channel_adapters.portal import PortalAdapter
from tickets.attachments import safe_content_type, safe_filename

logger = logging.getLogger(__name__)

#: The portal channel's kind.
KIND = PortalAdapter.kind
#: Uploads waiting to be ingested live here, under random names; a ref naming anything else is refused.
UPLOAD_FOLDER = "portal-uploads"
_CHUNK = 64 * 1024


def keep_upload(upload) -> InboundAttachment:
    """Keep one uploaded file (a Django ``UploadedFile``) and describe it for the envelope."""
    name = default_storage.save(f"{UPLOAD_FOLDER}/{uuid.uuid4().hex}", upload)
    return InboundAttachment(
        name=safe_filename(upload.name),
        content_type=safe_content_type(upload.content_type or ""),
        size=upload.size,
        ref=name,
    )


def _is_upload_ref(ref: str) -> bool:
    folder, _, name = ref.partition("/")
    return folder == UPLOAD_FOLDER and name.isalnum()


def read_upload(ref: str) -> Iterator[bytes]:
    """The bytes of a kept upload, in chunks. Raises ``PermanentError`` for a ref that is not one, or a file gone."""
    if not _is_upload_ref(ref):
        raise PermanentError("This file is not one of the portal's uploads.")
    try:
        handle = default_storage.open(ref, "rb")
    except FileNotFoundError:
        raise PermanentError("The uploaded file is no longer kept.") from None
    with handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def forget_upload(ref: str) -> None:
    """Remove a kept upload once its attachment holds a copy."""
    if _is_upload_ref(ref):
        default_storage.delete(ref)


def notify_reply(target: ReplyTarget) -> None:
    """Tell the employee who wrote last in the conversation, by email, that the desk answered: a link to the
    ticket in the portal, not the text (the portal is where the conversation is read). Best effort: a mail
    server that refuses never fails the reply, which the portal shows anyway."""
    user_id = target.recipient.partition(":")[0]  # the portal's identities are "<user id>:<contact id>"
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first() if user_id.isdigit() else None
    if user is None or not user.email or target.ticket_number is None:
        return
    number = target.ticket_number
    who = target.author_name or "The helpdesk"
    try:
        link = settings.PUBLIC_BASE_URL.rstrip("/") + reverse("portal:ticket", args=[number])
        send_mail(
            f"A reply on your ticket #{number}",
            f"{who} replied to your ticket #{number}:\n\n{link}\n",
            None,
            [user.email],
        )
    except Exception:
        logger.exception("portal: the reply notice for ticket %s could not be sent", number)


def equip(adapter) -> None:
    """The portal's adapter reads the kept uploads and sends reply notices through these."""
    if isinstance(adapter, PortalAdapter):
        adapter.read_upload = read_upload
        adapter.notify_reply = notify_reply
