"""Building mail for the email channel's tests, and a channel wired to the test's Dovecot and SMTP catcher."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from channels_ingest.channel_config import clean_channel_config
from channels_ingest.models import Channel

DESK = "help@desk.example"
ANN = "Ann Example <ann@corp.example>"


def mail(
    text="My laptop will not boot.",
    *,
    subject="Laptop broken",
    sender=ANN,
    to=DESK,
    cc="",
    message_id=None,
    in_reply_to="",
    references="",
    html="",
    files=(),
    date=None,
    headers=None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = format_datetime(date or datetime.now(UTC))
    message["Message-ID"] = message_id or make_msgid(domain="corp.example")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    for name, data, content_type in files:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return _wire(message)


def _wire(message: EmailMessage) -> bytes:
    """As mail travels (and IMAP keeps it): CRLF line ends."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def _headed(subject, sender=ANN) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = DESK
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain="corp.example")
    return message


def html_only_mail(html, *, subject="VPN") -> bytes:
    """A mail whose only body is HTML (as some web mailers and most ticketing exports send)."""
    message = _headed(subject)
    message.set_content(html, subtype="html")
    return _wire(message)


def inline_image_mail(image: bytes, *, cid: str, subject="Error dialog") -> bytes:
    """HTML with an image shown in place (``cid:``), as Outlook and Apple Mail send a pasted screenshot."""
    message = _headed(subject)
    message.set_content("See the screenshot.")
    message.add_alternative(f'<p>See the screenshot:</p><img src="cid:{cid}" alt="dialog">', subtype="html")
    message.get_payload()[1].add_related(image, maintype="image", subtype="png", cid=f"<{cid}>")
    return _wire(message)


def forwarded_inside_itself(depth: int) -> bytes:
    """A message forwarded inside itself ``depth`` times (message/rfc822 parts), deeper than any mail client."""
    raw = mail("the innermost message", subject="inner")
    for level in range(depth):
        head = f"From: {ANN}\r\nTo: {DESK}\r\nSubject: forward {level}\r\nMessage-ID: <nest-{level}@corp.example>\r\n"
        raw = head.encode() + b"MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n" + raw
    return raw


def email_config(dovecot, smtp_catcher, **extra) -> dict:
    dovecot.users.get(DESK) or dovecot.add_user(DESK)
    return {
        "address": DESK,
        "desk_name": "IT Help",
        "imap_host": dovecot.host,
        "imap_port": dovecot.port,
        "imap_security": "none",
        "username": DESK,
        "password": dovecot.users[DESK],
        "smtp_host": smtp_catcher.host,
        "smtp_port": smtp_catcher.port,
        "smtp_security": "none",
        **extra,
    }


def make_email_channel(dovecot, smtp_catcher, name="email-help", **extra) -> Channel:
    config, secrets = clean_channel_config("email", email_config(dovecot, smtp_catcher, **extra))
    return Channel.objects.create(kind="email", name=name, config=config, secrets=secrets)
