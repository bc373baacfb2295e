"""What a bounce says: which of our messages it returns, the remote server's words, failed or only delayed.

RFC 3464 DSNs (``multipart/report; report-type=delivery-status``) are read field by field; other MTAs'
bounces (qmail, Exim, Gmail's plain text) by the returned original pasted into the body.
"""

from __future__ import annotations

import email.message
import re
from dataclasses import dataclass

from .decoding import decode_bytes
from .parsing import parse_message_ids, unreadable_as_parse_error

_FIELD = re.compile(r"^([A-Za-z-]+):[ \t]*(.*(?:\n[ \t]+.*)*)", re.MULTILINE)
_ORIGINAL_ID = re.compile(r"^[ \t>]*Message-ID:[ \t]*(<[^>\s]+>|\S+@\S+)", re.IGNORECASE | re.MULTILINE)
_STATUS = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")
_SMTP_REPLY = re.compile(r"^.*\b[45]\d\d[ -][45]\.\d{1,3}\.\d{1,3}\b.*$|^.*\b[45]\d\d[ -].*$", re.MULTILINE)


@dataclass(frozen=True)
class Bounce:
    #: The Message-ID of the message that could not be delivered, without brackets ("" when not found).
    original_message_id: str
    #: "failed" or "delayed" (RFC 3464 Action); a delay is a warning, never a failure.
    action: str
    #: Enhanced status code ("5.1.1"), "" when none was given.
    status: str = ""
    #: The remote server's words (Diagnostic-Code, else the best line of the prose).
    diagnostic: str = ""
    recipient: str = ""

    @property
    def permanent(self) -> bool:
        """A failure: ``Action: failed`` (even with a 4.x.x status after days of retries), never a delay."""
        return self.action == "failed"


def _text(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return decode_bytes(payload, part.get_content_charset(), what="bounce")[0]
    raw = part.get_payload()
    if isinstance(raw, list):  # message/delivery-status parses into header blocks
        return "\n\n".join(str(block) for block in raw)
    return str(raw or "")


def _fields(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in _FIELD.findall(text.replace("\r\n", "\n")):
        found.setdefault(name.lower(), re.sub(r"\s+", " ", value).strip())
    return found


@unreadable_as_parse_error
def parse_bounce(message: email.message.Message) -> Bounce:
    """Read a message already classified as a bounce."""
    original_id = ""
    fields: dict[str, str] = {}
    prose: list[str] = []
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            fields = fields if fields else {**_fields(_text(part)), **fields}
        elif ctype in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            inner_message = inner[0] if isinstance(inner, list) and inner else None
            if inner_message is not None and not original_id:
                ids = parse_message_ids(str(inner_message.get("Message-ID", "") or ""))
                original_id = ids[0] if ids else ""
        elif ctype in ("text/rfc822-headers", "message/rfc822-headers"):
            if not original_id:
                original_id = _find_id(_text(part))
        elif part.get_content_maintype() == "text" and not part.is_multipart():
            prose.append(_text(part))
    body = "\n".join(prose)
    if not original_id:
        original_id = _find_id(body, skip=str(message.get("Message-ID", "")))
    action = fields.get("action", "").split()[0].lower() if fields.get("action") else ""
    status = (_STATUS.search(fields.get("status", "")) or [""])[0] if fields.get("status") else ""
    diagnostic = fields.get("diagnostic-code", "")
    if ";" in diagnostic and diagnostic.split(";", 1)[0].strip().lower() in ("smtp", "x-postfix", "x-unix"):
        diagnostic = diagnostic.split(";", 1)[1].strip()
    if not diagnostic:
        diagnostic = _best_line(body)
    if not status:
        found = _STATUS.search(diagnostic or body)
        status = found.group(0) if found else ""
    if not action:
        subject = str(message.get("Subject", "") or "").lower()
        action = "delayed" if ("delay" in subject or "warning" in subject) and "fail" not in subject else "failed"
    recipient = fields.get("final-recipient") or fields.get("original-recipient") or ""
    if ";" in recipient:
        recipient = recipient.split(";", 1)[1].strip()
    if not recipient:
        recipient = str(message.get("X-Failed-Recipients", "") or "").strip()
    return Bounce(
        original_message_id=original_id,
        action=action,
        status=status,
        diagnostic=diagnostic[:1000],
        recipient=recipient,
    )


def _find_id(text: str, *, skip: str = "") -> str:
    skipped = set(parse_message_ids(skip))
    for match in _ORIGINAL_ID.finditer(text or ""):
        ids = parse_message_ids(match.group(1))
        if ids and ids[0] not in skipped:
            return ids[0]
    return ""


def _best_line(body: str) -> str:
    """The remote server's own words in a bounce's prose: its SMTP reply line, if one is quoted."""
    before_original = re.split(
        r"^-+ ?(?:Original message|Below this line|This is a copy).*$", body, maxsplit=1, flags=re.I | re.M
    )[0]
    for match in _SMTP_REPLY.finditer(before_original):
        line = match.group(0).strip()
        if line:
            return line
    return ""
