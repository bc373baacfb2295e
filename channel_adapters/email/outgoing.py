"""A reply as a finished mail (``OutgoingMail``): recipients, threading headers, the ticket tag, text and HTML,
files. Sending it is the pipeline's ``MailTransport`` (Django's email backend: any SMTP relay, or an ESP
through django-anymail), so this module also says what SMTP's failures mean (``smtp_failure``).
"""

from __future__ import annotations

import html
import re
import smtplib
import socket
from dataclasses import dataclass, field
from email.utils import formataddr
from typing import Protocol

from ..base import (
    AdapterError,
    CredentialsError,
    OutboundFile,
    OutcomeUnknown,
    PermanentError,
    ReplyTarget,
    TransientError,
)
from .threading_keys import tag_subject

#: A reply's Message-ID starts with this; mail coming back with such an id from our domain is our own.
ID_PREFIX = "helpdesk-"
_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|antw|vs|r|ref|tr|fw|fwd|wg)\s*:\s*", re.IGNORECASE)
#: References kept on a reply: enough for every client to thread, short enough for every server.
MAX_REFERENCES = 20


@dataclass(frozen=True)
class OutgoingMail:
    message_id: str
    subject: str
    from_address: str
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()
    text: str = ""
    html: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    files: tuple[OutboundFile, ...] = ()

    @property
    def from_header(self) -> str:
        return formataddr((self.from_name, self.from_address))


class MailTransport(Protocol):
    """Hands a finished mail to a mail system; raises the contract's errors (``smtp_failure`` for SMTP's)."""

    def send(self, mail: OutgoingMail) -> None: ...

    def check(self) -> None:
        """Log in to the mail system and out again; raises ``CredentialsError`` if it refuses."""


class SendsMail:
    """An adapter whose replies are mail. The pipeline gives it a ``mail_transport`` (Django's email backend,
    with the channel's SMTP settings): the adapter builds each mail, the transport delivers it."""

    mail_transport: MailTransport | None = None

    def smtp_settings(self) -> dict:
        """Host, port, security, username and the password or bearer token the transport logs in with."""
        raise NotImplementedError


def reply_subject(subject: str, ticket_number: int | None, tag_template: str) -> str:
    """ "Re: <subject> [#123]": one "Re:", whatever prefixes clients stacked up, and the ticket tag once."""
    bare = subject.strip()
    while _REPLY_PREFIX.match(bare):
        bare = _REPLY_PREFIX.sub("", bare, count=1)
    subject = f"Re: {bare}" if bare else "Re: your request"
    return tag_subject(subject, ticket_number, tag_template) if ticket_number else subject


def text_to_html(text: str) -> str:
    """The agent's plain text as simple HTML: escaped, paragraphs kept, line breaks kept."""
    paragraphs = [part for part in re.split(r"\n\s*\n", text.strip()) if part.strip()]
    body = "".join(f"<p>{html.escape(part).replace(chr(10), '<br>')}</p>" for part in paragraphs)
    return f'<!DOCTYPE html><html><body style="font-family:sans-serif">{body}</body></html>'


def build_reply(
    *,
    target: ReplyTarget,
    text: str,
    message_id: str,
    address: str,
    desk_name: str,
    tag_template: str,
    copy_followers: bool,
    files: tuple[OutboundFile, ...] = (),
) -> OutgoingMail:
    answered = target.reply_to_meta.get("email", {}) if isinstance(target.reply_to_meta, dict) else {}
    reply_to = [item["email"] for item in answered.get("reply_to") or () if item.get("email")]
    to = tuple(dict.fromkeys(reply_to or ([target.recipient] if target.recipient else [])))
    if not to:
        raise PermanentError("This conversation has no address to reply to.")
    cc = tuple(
        address_
        for address_ in dict.fromkeys(target.followers if copy_followers else ())
        if address_ not in to and address_ != address
    )
    parent = answered.get("message_id", "")
    references = [*answered.get("references", ()), parent] if parent else list(answered.get("references", ()))
    headers = {"Message-ID": f"<{message_id}>", "X-Loop": address}
    if parent:
        headers["In-Reply-To"] = f"<{parent}>"
    if references:
        headers["References"] = " ".join(f"<{item}>" for item in references[-MAX_REFERENCES:])
    if not target.author_name:
        # The desk's own acknowledgement (RFC 3834): auto-responders must not answer it, Exchange included.
        headers["Auto-Submitted"] = "auto-replied"
        headers["X-Auto-Response-Suppress"] = "All"
    from_name = f"{target.author_name} ({desk_name})" if target.author_name else desk_name
    return OutgoingMail(
        message_id=message_id,
        subject=(
            tag_subject(target.subject, target.ticket_number, tag_template)
            if target.subject and target.ticket_number
            else target.subject or reply_subject(answered.get("subject", ""), target.ticket_number, tag_template)
        ),
        from_address=address,
        from_name=from_name,
        to=to,
        cc=cc,
        reply_to=(address,),
        text=text,
        html=text_to_html(text),
        headers=headers,
        files=files,
    )


def smtp_failure(exc: BaseException, *, delivered: bool) -> AdapterError:
    """What an SMTP failure means for a reply. ``delivered`` is whether the message had been handed over
    (the transaction started): a connection lost or timed out after that may have delivered it."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        words = _reply(exc.smtp_code, exc.smtp_error)
        if 400 <= exc.smtp_code < 500:  # e.g. 454 4.7.0, a temporary authentication failure (RFC 4954)
            return TransientError(f"The SMTP server could not log in for now: {words}")
        return CredentialsError(f"The SMTP server refused the login: {words}")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(f"{who}: {_reply(code, words)}" for who, (code, words) in exc.recipients.items())
        temporary = all(400 <= code < 500 for code, _words in exc.recipients.values())
        return (TransientError if temporary else PermanentError)(f"The SMTP server refused the recipients ({refused})")
    if isinstance(exc, smtplib.SMTPResponseException):
        error = TransientError if 400 <= exc.smtp_code < 500 else PermanentError
        return error(f"The SMTP server refused the message: {_reply(exc.smtp_code, exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPServerDisconnected | socket.timeout | TimeoutError | ConnectionError):
        words = str(exc) or type(exc).__name__
        if delivered:
            return OutcomeUnknown(f"The SMTP connection ended before the server confirmed the message ({words})")
        return TransientError(f"Could not reach the SMTP server ({words})")
    if isinstance(exc, OSError):
        return TransientError(f"Could not reach the SMTP server ({exc.strerror or exc})")
    return PermanentError(f"Sending failed: {exc}")


def _reply(code: int, words: bytes | str) -> str:
    text = words.decode("utf-8", "replace") if isinstance(words, bytes) else str(words)
    return f"{code} {' '.join(text.split())}"
