"""What WhatsApp's webhook messages say: each message type read as text an agent understands (a location, shared
contacts, a button pressed, what WhatsApp could not pass on), its file, and reactions and edits as envelopes.

Every reader raises ``BadItem`` for what it cannot interpret; the adapter keeps that item as ``Rejected``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from ..base import Envelope, EnvelopeKind, InboundAttachment, plausible_time
from .graph import GRAPH_EPOCH, parse_unix_time

MEDIA_PREFIX = "media:"
#: Message types whose content is a media object with an ``id`` (voice notes come as ``audio`` with
#: ``voice: true``; newer payloads may name them ``voice``).
MEDIA_TYPES = ("image", "video", "audio", "voice", "document", "sticker")
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}
#: Ids end up in stored keys: printable ASCII without spaces, bounded. A wamid is base64 and may hold "/", "+"
#: and "="; a media id also ends up in a URL path, so it is held to letters, digits, "_" and "-".
ID = re.compile(r"[!-~]{1,256}")
MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class BadItem(ValueError):
    """A webhook item that cannot be interpreted; it becomes a ``Rejected`` with the raw item."""


def text_id(value, what="id") -> str:
    if not isinstance(value, str) or not ID.fullmatch(value):
        raise BadItem(f"{what} is not an id: {str(value)[:60]!r}")
    return value


def event_time(value) -> datetime:
    try:
        return plausible_time(parse_unix_time(value), platform_epoch=GRAPH_EPOCH)
    except (ValueError, OverflowError, OSError) as exc:
        raise BadItem(f"bad timestamp: {exc}") from None


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value) -> list:
    return value if isinstance(value, list) else []


def words(value) -> str:
    """A string from a payload field; "" for anything else."""
    return value.strip() if isinstance(value, str) else ""


def base_type(mime_type: str) -> str:
    """``audio/ogg; codecs=opus`` → ``audio/ogg``."""
    return mime_type.split(";")[0].strip().lower()


def error_words(error: Mapping) -> dict:
    """The parts of a WhatsApp error object (statuses[].errors[], messages[].errors[]) worth keeping."""
    details = as_dict(error.get("error_data")).get("details") or error.get("details")
    return {
        "code": error.get("code") if isinstance(error.get("code"), int) else None,
        "title": words(error.get("title")),
        "message": words(error.get("message")),
        "details": words(details),
    }


def describe_error_words(error: Mapping) -> str:
    """ "Title: message: details (code n)", each part once (WhatsApp often repeats the title as the message)."""
    parts: list[str] = []
    for part in (error["title"], error["message"], error["details"]):
        if part and part not in parts:
            parts.append(part)
    text = ": ".join(parts)
    return f"{text} (code {error['code']})" if error["code"] else text


def content(message, kind, value) -> tuple[str, tuple[InboundAttachment, ...]]:
    """What a message says, as text an agent reads, and its file if it has one."""
    if kind == "text":
        body = as_dict(message.get("text")).get("body")
        if not isinstance(body, str):
            raise BadItem("text message without text.body")
        return body, ()
    if kind in MEDIA_TYPES and isinstance(message.get(kind), dict):
        return media_content(message[kind], kind)
    if kind == "location":
        return location_text(as_dict(message.get("location"))), ()
    if kind == "contacts":
        return contacts_text(as_list(message.get("contacts"))), ()
    if kind == "interactive" and isinstance(message.get("interactive"), dict):
        return interactive_text(message["interactive"]), ()
    if kind == "button":
        button = as_dict(message.get("button"))
        return f"Pressed the button: {words(button.get('text')) or words(button.get('payload'))}", ()
    if kind == "order":
        return order_text(as_dict(message.get("order"))), ()
    if kind == "system":
        system = as_dict(message.get("system"))
        return f"[WhatsApp notice: {words(system.get('body')) or words(system.get('type')) or 'system message'}]", ()
    if kind == "request_welcome":
        return "[The person opened a chat with this number for the first time.]", ()
    return unsupported_text(message, kind, value), ()


def media_content(media: Mapping, kind) -> tuple[str, tuple[InboundAttachment, ...]]:
    media_id = media.get("id")
    if not isinstance(media_id, str) or not MEDIA_ID.fullmatch(media_id):
        raise BadItem(f"{kind} without a media id")
    content_type = base_type(words(media.get("mime_type"))) or "application/octet-stream"
    voice = kind == "voice" or (kind == "audio" and media.get("voice") is True)
    label = "voice-message" if voice else f"{'animated-' if media.get('animated') is True else ''}{kind}"
    name = words(media.get("filename"))[:200] or f"{label}-{media_id}{EXTENSIONS.get(content_type, '')}"
    size = media.get("file_size")
    attachment = InboundAttachment(
        name=name,
        content_type=content_type,
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else 0,
        ref=MEDIA_PREFIX + media_id,
    )
    caption = media.get("caption")
    return (caption if isinstance(caption, str) else ""), (attachment,)


def location_text(location: Mapping) -> str:
    latitude, longitude = location.get("latitude"), location.get("longitude")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (latitude, longitude)):
        raise BadItem("location without coordinates")
    place = ", ".join(part for part in (words(location.get("name")), words(location.get("address"))) if part)
    link = words(location.get("url")) or f"https://maps.google.com/?q={latitude},{longitude}"
    return f"Shared a location: {place + ' ' if place else ''}({latitude}, {longitude}) {link}"


def contacts_text(contacts: list) -> str:
    lines = ["Shared contacts:"]
    for contact in contacts:
        if not isinstance(contact, dict):
            continue
        name = as_dict(contact.get("name"))
        full = words(name.get("formatted_name")) or " ".join(
            part for part in (words(name.get("first_name")), words(name.get("last_name"))) if part
        )
        details = [
            " ".join(part for part in (words(phone.get("phone")), f"({words(phone.get('type'))})") if part != "()")
            for phone in as_list(contact.get("phones"))
            if isinstance(phone, dict) and words(phone.get("phone"))
        ]
        details += [
            words(email.get("email"))
            for email in as_list(contact.get("emails"))
            if isinstance(email, dict) and words(email.get("email"))
        ]
        lines.append(f"- {full or '(no name)'}{': ' + ', '.join(details) if details else ''}")
    if len(lines) == 1:
        raise BadItem("contacts message without contacts")
    return "\n".join(lines)


def interactive_text(interactive: Mapping) -> str:
    kind = interactive.get("type")
    if kind == "button_reply":
        reply = as_dict(interactive.get("button_reply"))
        return f"Chose: {words(reply.get('title')) or words(reply.get('id'))}"
    if kind == "list_reply":
        reply = as_dict(interactive.get("list_reply"))
        title, description = words(reply.get("title")) or words(reply.get("id")), words(reply.get("description"))
        return f"Chose: {title}{f' ({description})' if description else ''}"
    if kind == "nfm_reply":
        reply = as_dict(interactive.get("nfm_reply"))
        return f"Submitted a form: {words(reply.get('body')) or words(reply.get('name'))}\n{reply.get('response_json', '')}"
    return f"[An interactive reply of a kind this helpdesk does not read: {str(kind)[:40]}]"


def order_text(order: Mapping) -> str:
    lines = ["Sent an order:"]
    for item in as_list(order.get("product_items")):
        if isinstance(item, dict):
            lines.append(
                f"- {item.get('quantity', '?')} x {words(item.get('product_retailer_id'))} "
                f"({item.get('item_price', '?')} {words(item.get('currency'))})"
            )
    if words(order.get("text")):
        lines.append(words(order.get("text")))
    return "\n".join(lines)


def unsupported_text(message, kind, value) -> str:
    """A message WhatsApp could not pass on, or of a type this adapter does not know: said, never dropped."""
    shown = words(as_dict(message.get("unsupported")).get("type")) or kind
    errors = [e for e in as_list(message.get("errors")) + as_list(value.get("errors")) if isinstance(e, dict)]
    reason = describe_error_words(error_words(errors[0])) if errors else ""
    return f"[unsupported message type: {shown[:40]}{f' ({reason})' if reason else ''}]"


def message_meta(message) -> dict:
    context = as_dict(message.get("context"))
    meta = {}
    if context.get("forwarded") is True:
        meta["forwarded"] = True
    if context.get("frequently_forwarded") is True:
        meta["forwarded"] = meta["frequently_forwarded"] = True
    if isinstance(context.get("id"), str):
        meta["in_reply_to"] = context["id"]  # the message this one quotes (ours or theirs)
    referral = as_dict(message.get("referral"))
    if referral:
        meta["referral"] = {k: words(referral.get(k)) for k in ("source_type", "source_url", "headline")}
    return meta


def reaction(message, wa_id, common) -> Envelope:
    data = as_dict(message.get("reaction"))
    target = text_id(data.get("message_id"), "reaction.message_id")
    emoji = data.get("emoji") if isinstance(data.get("emoji"), str) else ""
    removed = not emoji
    timestamp = message.get("timestamp")
    return Envelope(
        external_id=f"{target}:reaction:{wa_id}:{'unreact' if removed else 'react'}:{timestamp}",
        kind=EnvelopeKind.REACTION,
        target_id=target,
        reopens=False,
        meta={"emoji": emoji, "removed": removed},
        **common,
    )


def edit(message, wamid, common) -> Envelope:
    data = as_dict(message.get("edit"))
    original = text_id(data.get("original_message_id"), "original_message_id")
    edited = as_dict(data.get("message"))
    kind = edited.get("type")
    if kind == "text":
        text = as_dict(edited.get("text")).get("body")
    else:
        text = as_dict(edited.get(kind)).get("caption") if isinstance(kind, str) else None
    if not isinstance(text, str):
        raise BadItem("edit without the new text or caption")
    return Envelope(
        # The edit's own wamid: two edits within one second stay two events.
        external_id=f"{original}:edit:{wamid}",
        kind=EnvelopeKind.EDIT,
        target_id=original,
        text=text,
        reopens=False,
        **common,
    )
