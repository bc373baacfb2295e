"""Files employees upload in the portal: kept on the default storage before their message is stored, and read
back by the portal channel's adapter when ingestion downloads them (``downloads``), as every channel's files are.

The envelope carries only the kept file's name (its ``ref``); the download step copies it to the attachments'
own place, and the kept upload is removed once the attachment is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from django.core.files.storage import default_storage

from channel_adapters.base import InboundAttachment, PermanentError
from channel_adapters.portal import PortalAdapter
from tickets.attachments import safe_content_type, safe_filename

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


def give_upload_reader(adapter) -> None:
    """The portal's adapter reads the kept uploads."""
    if isinstance(adapter, PortalAdapter):
        adapter.read_upload = read_upload
