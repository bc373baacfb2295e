"""The employee portal as a channel: what employees write in the portal's forms travels the same pipeline as a
Slack message or an email, and the desk's replies are shown there.

The portal is the desk's own web page, so there is nothing to poll and no webhook: the portal's views build the
envelopes and store them (``channels_ingest.ingest.store_envelopes``). A reply is "sent" as soon as it is stored,
since the portal shows the ticket's conversation itself; ``send`` only confirms it. Files employees upload are
kept by the portal before their message is stored, and ``fetch_attachment`` reads them back through
``read_upload``; ``send`` tells the employee by email through ``notify_reply``. The pipeline gives the adapter
both (``channels_ingest.portal_channel``): this package knows no storage and no mail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from .base import (
    AttachmentLimits,
    Capability,
    ChannelAdapter,
    OutboundFile,
    PermanentError,
    ReplyMode,
    ReplyTarget,
    Sent,
)

#: Where an employee's files are kept is the desk's own storage: the desk's size cap is the only limit.
REPLY_FILES = AttachmentLimits(max_files=10, max_bytes=2**63 - 1)


class PortalAdapter(ChannelAdapter):
    """No config, no secrets."""

    kind = "portal"
    capabilities = frozenset({Capability.REPLY})
    files_with_text = True
    #: A reply is in the portal once it is stored, whatever became of an attempt (see ``find_sent``).
    finds_sent = True
    #: Reads an uploaded file's bytes by its ref, in chunks; set by the pipeline (``channels_ingest.portal_channel``).
    read_upload: Callable[[str], Iterator[bytes]] | None = None
    #: Tells the person answered that a reply is waiting in the portal (best effort); set by the pipeline.
    notify_reply: Callable[[ReplyTarget], None] | None = None

    def check_credentials(self) -> dict:
        return {}

    def reply_modes(self, target: ReplyTarget) -> list[ReplyMode]:
        return [ReplyMode(key="", label="Reply", max_length=self.max_reply_length, attachments=REPLY_FILES)]

    def send(self, *, target: ReplyTarget, text: str, key: str, files: tuple[OutboundFile, ...] = ()) -> Sent:
        if self.notify_reply is not None:
            self.notify_reply(target)
        return Sent(external_id=f"portal-reply:{key}")

    def find_sent(self, *, target: ReplyTarget, text: str, key: str, since: datetime) -> Sent:
        """Always there: the portal shows the stored reply itself. So an attempt whose worker died is confirmed,
        not repeated, and the employee gets at most one notice (none, if the worker died before sending it)."""
        return Sent(external_id=f"portal-reply:{key}")

    def fetch_attachment(self, ref: str) -> Iterator[bytes]:
        if self.read_upload is None:
            raise PermanentError("This portal adapter was built without access to the uploaded files.")
        return self.read_upload(ref)
