"""Writing a message from fields (what a simulated person sends) and reading one back (what the desk sent)."""

import base64
import email.policy
import mimetypes
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, make_msgid, parsedate_to_datetime

from ..common import ControlError


def compose(payload: dict) -> bytes:
    """An RFC 5322 message from control fields: from, to, cc (address strings or lists), subject, text, html,
    message_id, in_reply_to, references (a list or a string), date (ISO 8601), headers ({name: value}),
    attachments ([{"filename", "content_base64", "content_type"?, "content_id"? (inline)}])."""
    sender = payload.get("from")
    if not sender:
        raise ControlError("from is required (or raw)")
    message = EmailMessage()
    message["From"] = sender
    for field in ("to", "cc"):
        if payload.get(field):
            value = payload[field]
            message[field.title()] = ", ".join(value) if isinstance(value, list) else value
    message["Subject"] = payload.get("subject", "")
    when = datetime.fromisoformat(payload["date"]) if payload.get("date") else datetime.now(UTC)
    message["Date"] = format_datetime(when if when.tzinfo else when.replace(tzinfo=UTC))
    domain = sender.rpartition("@")[2].rstrip(">") or "example.com"
    message["Message-ID"] = payload.get("message_id") or make_msgid(domain=domain)
    if payload.get("in_reply_to"):
        message["In-Reply-To"] = payload["in_reply_to"]
    references = payload.get("references")
    if references:
        message["References"] = " ".join(references) if isinstance(references, list) else references
    for name, value in (payload.get("headers") or {}).items():
        message[name] = value
    message.set_content(payload.get("text", ""))
    if payload.get("html"):
        message.add_alternative(payload["html"], subtype="html")
    for item in payload.get("attachments") or []:
        _attach(message, item)
    return bytes(message)


def _attach(message: EmailMessage, item: dict) -> None:
    filename = item.get("filename") or "attachment"
    content_type = item.get("content_type") or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    maintype, _, subtype = content_type.partition("/")
    content = base64.b64decode(item.get("content_base64", ""))
    if item.get("content_id"):  # an inline part (an image the HTML shows with cid:)
        message.add_attachment(
            content,
            maintype=maintype,
            subtype=subtype,
            filename=filename,
            disposition="inline",
            cid=f"<{item['content_id'].strip('<>')}>",
        )
    else:
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)


def describe(raw: bytes) -> dict:
    """What the desk sent, read back: headers, text and HTML bodies, attachments (without their bytes)."""
    message = BytesParser(policy=email.policy.default).parsebytes(raw)

    def addresses(name: str) -> list[dict]:
        return [{"name": n, "email": a} for n, a in getaddresses([str(v) for v in message.get_all(name, [])])]

    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    attachments = []
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True) or b""
        attachments.append(
            {
                "filename": part.get_filename() or "",
                "content_type": part.get_content_type(),
                "size": len(payload),
                "content_id": str(part.get("Content-ID", "")).strip("<>"),
                "content_base64": base64.b64encode(payload).decode(),
            }
        )
    try:
        date = parsedate_to_datetime(str(message["Date"])).isoformat() if message["Date"] else None
    except (TypeError, ValueError):
        date = None
    return {
        "subject": str(message.get("Subject", "")),
        "from": addresses("From"),
        "to": addresses("To"),
        "cc": addresses("Cc"),
        "reply_to": addresses("Reply-To"),
        "message_id": str(message.get("Message-ID", "")).strip(),
        "in_reply_to": str(message.get("In-Reply-To", "")).strip(),
        "references": str(message.get("References", "")).split(),
        "date": date,
        "headers": [[name, str(value)] for name, value in message.items()],
        "text": _content(text_part),
        "html": _content(html_part),
        "attachments": attachments,
    }


def _content(part) -> str:
    """A body part's text with plain newlines; one with an unknown or lying charset is read as UTF-8 with
    replacements."""
    if part is None:
        return ""
    try:
        text = part.get_content()
    except (LookupError, UnicodeDecodeError):
        text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    return text.replace("\r\n", "\n")
