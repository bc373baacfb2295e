"""One fetched message → what the desk stores: a message ``Envelope``, a delivery report on one of our replies
(a bounce), nothing (noise, our own mail coming back), or a ``Rejected`` item that keeps the raw bytes."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from ..base import (
    DeliveryReport,
    Envelope,
    EnvelopeKind,
    InboundAttachment,
    Rejected,
    Sender,
    plausible_time,
)
from .bounces import parse_bounce
from .noise import Noise, classify
from .parsing import Address, EmailParseError, ParsedEmail, parse_email
from .replies import LANGUAGES, split_reply
from .threading_keys import referenced_ids, ticket_tag

logger = logging.getLogger(__name__)

#: Internet mail predates every Date header worth believing.
EMAIL_EPOCH = datetime(1990, 1, 1, tzinfo=UTC)
#: Identity namespace of email senders: one address is one person on every mailbox of the desk.
NAMESPACE = "email"
#: Message-IDs longer than this are stored by their hash (ids are keys of at most 255 characters).
MAX_ID_LENGTH = 200
#: Message-IDs holding what a key cannot (bytes that were not UTF-8, read as surrogate escapes; control
#: characters, NUL among them) are stored by their hash too: the same bytes in a reply's In-Reply-To still match.
UNFIT_FOR_A_KEY = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
#: How much HTML and quoted text one message keeps for the console; the whole message stays in the mailbox.
MAX_HTML_CHARS = 500_000
MAX_QUOTED_CHARS = 100_000
#: A message that cannot be read at all is kept on its failed row up to this size (the rest stays on the server).
MAX_REJECTED_BYTES = 5 * 1024 * 1024
ORIGINAL_NAME = "original.eml"


@dataclass(frozen=True)
class MailLocation:
    """Where a fetched message lives on the IMAP server: how ``fetch_attachment`` finds its bytes again."""

    mailbox: str
    uidvalidity: int
    uid: int

    def reference(self) -> str:
        return f"{self.mailbox}/{self.uidvalidity}/{self.uid}"


@dataclass(frozen=True)
class OwnMail:
    """What marks mail as the desk's own: its addresses, and the Message-IDs it gives its replies."""

    addresses: frozenset[str]
    id_suffix: str

    def sent(self, parsed: ParsedEmail) -> str:
        """Why ``parsed`` is our own mail come back ("" when it is not)."""
        if parsed.message_id.startswith("helpdesk-") and parsed.message_id.endswith(self.id_suffix):
            return "a reply the desk sent"
        if parsed.from_ and parsed.from_.email in self.addresses:
            return "sent from the desk's own address"
        if parsed.header("X-Loop").strip().lower() in self.addresses:
            return "X-Loop names the desk"
        return ""


def mail_key(message_id: str) -> str:
    """The id a message is stored by: its Message-ID, or the hash of one too long or too odd to be a key."""
    if len(message_id) <= MAX_ID_LENGTH and not UNFIT_FOR_A_KEY.search(message_id):
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()


def interpret(
    raw: bytes,
    *,
    location: MailLocation,
    own: OwnMail,
    tag_pattern: str,
    arrived_at: datetime | None,
    languages: tuple[str, ...] = LANGUAGES,
) -> Envelope | Rejected | None:
    try:
        parsed = parse_email(raw)
    except EmailParseError as exc:
        return _rejected(raw, location, f"Not a readable mail message: {exc}")
    reason = own.sent(parsed)
    if reason:
        logger.info("%s: skipped, %s", location.reference(), reason)
        return None
    verdict = classify(parsed.message)
    if verdict.kind is Noise.BOUNCE:
        return _bounce_report(parsed, raw, arrived_at)
    if verdict:
        logger.info("%s: skipped, %s (%s)", location.reference(), verdict.kind, verdict.reason)
        return None
    if parsed.from_ is None:
        return _rejected(raw, location, "The message has no sender address (From) to answer.")
    return _message(parsed, raw, location, own=own, tag_pattern=tag_pattern, arrived_at=arrived_at, languages=languages)


def _own_key(parsed: ParsedEmail, raw: bytes) -> str:
    if parsed.message_id:
        return mail_key(parsed.message_id)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _sent_at(parsed: ParsedEmail, arrived_at: datetime | None) -> datetime:
    """The Date header when it is plausible, else when the server received the message, else now."""
    for moment in (parsed.date, arrived_at):
        if moment is None:
            continue
        try:
            return plausible_time(moment if moment.tzinfo else moment.replace(tzinfo=UTC), platform_epoch=EMAIL_EPOCH)
        except ValueError:
            continue
    return datetime.now(UTC)


def _person(address: Address) -> Sender:
    return Sender(namespace=NAMESPACE, external_id=address.email, display_name=address.name, email=address.email)


def _addresses(items) -> list[dict]:
    return [{"email": item.email, "name": item.name} for item in items]


def _message(parsed, raw, location, *, own, tag_pattern, arrived_at, languages) -> Envelope:
    key = _own_key(parsed, raw)
    reply = split_reply(parsed.text, languages=languages)
    text = reply.new_text or parsed.text.strip()
    notes = list(parsed.notes)
    html = parsed.html
    if len(html) > MAX_HTML_CHARS:
        html = ""
        notes.append("The HTML body is too large to show here; download the original to read it.")
    attachments: list[InboundAttachment] = []
    inline = {}
    for part in parsed.attachments:
        if part.content_id and part.inline:
            inline[part.content_id] = len(attachments)
        attachments.append(
            InboundAttachment(
                name=part.name, content_type=part.content_type, size=part.size, ref=_ref(location, parsed, part.index)
            )
        )
    sender = parsed.from_.email
    copied = {
        address.email: address
        for address in (*parsed.to, *parsed.cc)
        if address.email not in own.addresses and address.email != sender
    }
    meta = {
        "email": {
            "subject": parsed.subject,
            "from": {"email": parsed.from_.email, "name": parsed.from_.name},
            "to": _addresses(parsed.to),
            "cc": _addresses(parsed.cc),
            "reply_to": _addresses(parsed.reply_to),
            "message_id": parsed.message_id,
            "references": list(parsed.references[-20:]),
            "quoted": reply.full_text.strip()[:MAX_QUOTED_CHARS] if _has_history(reply, text) else "",
            "signature": reply.signature,
            "html": html,
            "notes": notes,
            "inline": inline,
        },
        # The message as it arrived, read from the mailbox when an agent asks for it, not copied into the desk.
        "original": {
            "ref": _ref(location, parsed, ""),
            "name": ORIGINAL_NAME,
            "content_type": "message/rfc822",
            "size": len(raw),
        },
    }
    return Envelope(
        external_id=key,
        kind=EnvelopeKind.MESSAGE,
        thread_key=key,
        sent_at=_sent_at(parsed, arrived_at),
        sender=_person(parsed.from_),
        text=text,
        starts_thread=True,
        meta=meta,
        attachments=tuple(attachments),
        refers_to=tuple(mail_key(item) for item in referenced_ids(parsed)),
        ticket_number=ticket_tag(parsed.subject, tag_pattern),
        copied=tuple(_person(address) for address in copied.values()),
        subject=parsed.subject.strip(),
    )


def _has_history(reply, text: str) -> bool:
    """Whether the full text holds more than the new text and its signature (quoted history, a forward)."""

    def words(value: str) -> list[str]:
        return value.split()

    return words(reply.full_text) not in (words(text), words(text) + words(reply.signature))


def _bounce_report(parsed, raw, arrived_at) -> Envelope | None:
    bounce = parse_bounce(parsed.message)
    if not bounce.permanent or not bounce.original_message_id:
        logger.info("bounce skipped (%s, original %r)", bounce.action or "no action", bounce.original_message_id)
        return None
    original = mail_key(bounce.original_message_id)
    words = " ".join(part for part in (bounce.status, bounce.diagnostic) if part) or "the message was returned"
    who = f" for {bounce.recipient}" if bounce.recipient else ""
    return Envelope(
        external_id=_own_key(parsed, raw),
        kind=EnvelopeKind.STATUS,
        thread_key=original,
        sent_at=_sent_at(parsed, arrived_at),
        target_id=original,
        meta={"status": str(DeliveryReport.FAILED), "error": f"Bounced{who}: {words}"[:1000]},
    )


def _ref(location: MailLocation, parsed: ParsedEmail, part: str) -> str:
    return json.dumps(
        {
            "mailbox": location.mailbox,
            "uidvalidity": location.uidvalidity,
            "uid": location.uid,
            "message_id": parsed.message_id,
            "part": part,
        },
        separators=(",", ":"),
    )


def _rejected(raw: bytes, location: MailLocation, reason: str) -> Rejected:
    kept = raw[:MAX_REJECTED_BYTES]
    return Rejected(
        reference=location.reference(),
        reason=reason,
        raw={
            "mailbox": location.mailbox,
            "uidvalidity": location.uidvalidity,
            "uid": location.uid,
            "size": len(raw),
            "truncated": len(kept) < len(raw),
            "raw_base64": base64.b64encode(kept).decode("ascii"),
        },
    )
