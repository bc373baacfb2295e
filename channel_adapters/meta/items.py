"""Reading Meta's payloads (webhook items and Graph answers) for the Facebook Page and Instagram adapters: ids,
times, text and attachments, each checked before it is trusted. What cannot be read raises ``BadItem``, which the
adapter keeps as a failed row with the item as Meta sent it.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from ..base import Envelope, InboundAttachment, plausible_time
from .graph import GRAPH_EPOCH, parse_iso_time

#: Ids Meta gives people, Pages, accounts, posts and comments ("1423587017700273", "137542570280222_139560936744456").
#: They end up in URL paths and stored keys, so nothing else is taken.
META_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")
#: Message ids ("mid.$cAAE1UUyiiwthh0NPrVbVf4HFNDGl", "m_ToF35NI1...", Instagram's long base64 ones).
MID = re.compile(r"[\x21-\x7e]{1,300}")
#: Stored event ids are at most this long (``InboundMessage.external_id``); longer ones keep a digest of the tail.
MAX_EVENT_ID = 255
#: Attachment types whose ``payload.url`` is the file itself.
MEDIA_TYPES = {"image", "video", "audio", "file", "story_mention", "ig_reel", "reel", "share"}
DEFAULT_CONTENT_TYPES = {"image": "image/jpeg", "video": "video/mp4", "audio": "audio/mpeg", "ig_reel": "video/mp4"}


class BadItem(ValueError):
    """A webhook or polled item that cannot be understood; kept as a failed row with what Meta sent."""


def meta_id(value: object, what: str) -> str:
    """An id as Meta sends it (a string; some payloads carry numbers); raises BadItem for anything else."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not META_ID.fullmatch(value):
        raise BadItem(f"{what} is not a Meta id: {str(value)[:60]!r}")
    return value


def message_id(value: object) -> str:
    if not isinstance(value, str) or not MID.fullmatch(value):
        raise BadItem(f"not a message id: {str(value)[:60]!r}")
    return value


def event_id(*parts: str) -> str:
    """Parts joined with ":" into a stored event id; one too long keeps its first part and a digest of the rest."""
    joined = ":".join(parts)
    if len(joined) <= MAX_EVENT_ID:
        return joined
    digest = hashlib.sha256(joined.encode()).hexdigest()[:32]
    return f"{parts[0][: MAX_EVENT_ID - 34]}:{digest}"


def event_time(value: object) -> datetime:
    """A webhook or Graph time: epoch milliseconds (Messenger events), epoch seconds (feed changes, entry times),
    as a number or digit string, or an ISO time (the Graph API; some Instagram payloads). Raises BadItem for
    anything else, or for a time Meta could not have stamped (``plausible_time``)."""
    try:
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.isascii() and value.isdigit():
            number = int(value)
        if number is not None:
            # 10^11 seconds is the year 5138; 10^11 milliseconds is 1973. Meta sends both kinds.
            moment = datetime.fromtimestamp(number / 1000 if number >= 10**11 else number, UTC)
        elif isinstance(value, str) and len(value) <= 40:
            try:
                moment = parse_iso_time(value)
            except ValueError:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            raise ValueError(f"not a time: {str(value)[:40]!r}")
        return plausible_time(moment, platform_epoch=GRAPH_EPOCH)
    except (ValueError, OverflowError, OSError) as exc:
        raise BadItem(str(exc)) from None


def named_in(item: object) -> str:
    """The message or comment id an item names, if any, for the failed row that keeps it."""
    if not isinstance(item, Mapping):
        return ""
    for holder in (item, item.get("message"), item.get("value"), item.get("message_edit"), item.get("reaction")):
        if isinstance(holder, Mapping):
            for key in ("mid", "comment_id", "id"):
                if isinstance(holder.get(key), str) and holder[key]:
                    return holder[key]
    return ""


def mapping_in(value: object) -> Mapping:
    """An object from a payload where one is optional: itself, or an empty one for anything else."""
    return value if isinstance(value, Mapping) else {}


def text_of(value: object, what: str = "text") -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadItem(f"{what} is not a string")
    return value


def as_dict(value: object, what: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise BadItem(f"{what} is not an object")
    return value


def as_list(value: object, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadItem(f"{what} is not a list")
    return value


def file_name_and_type(url: str, kind: str, index: int) -> tuple[str, str]:
    """A name and content type for a file Meta gives only as a URL: from the URL's path, else from its kind."""
    path = PurePosixPath(urlsplit(url).path)
    guessed = mimetypes.guess_type(path.name)[0] if path.suffix else None
    content_type = guessed or DEFAULT_CONTENT_TYPES.get(kind, "application/octet-stream")
    if kind == "audio" and content_type.startswith("video/"):
        content_type = "audio/" + content_type.split("/", 1)[1]  # Messenger's voice clips are .mp4 files of audio
    name = path.name if path.suffix else f"{kind}-{index + 1}{mimetypes.guess_extension(content_type) or ''}"
    return name[:200], content_type


def webhook_attachments(attachments: list) -> tuple[tuple[InboundAttachment, ...], list[str]]:
    """A webhook message's ``attachments[]``: files, and lines of text for what is not a file (a location, a shared
    link, a template, a type Meta added since). Nothing is dropped without a word to the agent."""
    files, lines = [], []
    for index, attachment in enumerate(attachments):
        attachment = as_dict(attachment, "attachment")
        kind = text_of(attachment.get("type"), "attachment type") or "unknown"
        payload = mapping_in(attachment.get("payload"))
        url = payload.get("url")
        if kind in MEDIA_TYPES and isinstance(url, str) and url.startswith(("http://", "https://")):
            name, content_type = file_name_and_type(url, "image" if kind in ("story_mention", "share") else kind, index)
            if payload.get("sticker_id") is not None:
                name = f"sticker-{str(payload['sticker_id'])[:40]}{PurePosixPath(name).suffix or '.png'}"
            files.append(InboundAttachment(name=name, content_type=content_type, size=0, ref=url))
        elif kind == "location":
            coordinates = mapping_in(payload.get("coordinates"))
            lat, long = coordinates.get("lat"), coordinates.get("long")
            lines.append(f"[location: {lat}, {long}]" if lat is not None and long is not None else "[location]")
        elif kind in ("fallback", "template", "share"):
            title = attachment.get("title") or payload.get("title") or ""
            link = attachment.get("url") or attachment.get("URL") or url or ""
            lines.append(" ".join(str(part) for part in (f"[{kind}]", title, link) if part))
        else:
            lines.append(f"[{kind[:40]} attachment]")
    return tuple(files), lines


def graph_attachments(message: Mapping) -> tuple[InboundAttachment, ...]:
    """A polled message's ``attachments.data[]`` (which, unlike a webhook's, name the file and its size) and its
    sticker."""
    found = []
    container = message.get("attachments")
    items = container.get("data") if isinstance(container, Mapping) else None
    for index, attachment in enumerate(items if isinstance(items, list) else []):
        if not isinstance(attachment, Mapping):
            continue
        url = None
        for key in ("image_data", "video_data", "audio_data"):
            data = attachment.get(key)
            if isinstance(data, Mapping) and isinstance(data.get("url"), str):
                url = data["url"]
        url = url or attachment.get("file_url") or attachment.get("url")
        if not isinstance(url, str) or not url:
            continue
        guessed_name, guessed_type = file_name_and_type(url, "file", index)
        size = attachment.get("size")
        found.append(
            InboundAttachment(
                name=str(attachment.get("name") or guessed_name)[:200],
                content_type=str(attachment.get("mime_type") or guessed_type),
                size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else 0,
                ref=url,
            )
        )
    sticker = message.get("sticker")
    if isinstance(sticker, str) and sticker.startswith(("http://", "https://")):
        name, content_type = file_name_and_type(sticker, "image", len(found))
        found.append(InboundAttachment(name=f"sticker-{name}", content_type=content_type, size=0, ref=sticker))
    return tuple(found)


def chronological(envelopes: list[Envelope]) -> list[Envelope]:
    """A page's envelopes oldest first. Meta lists newest first and its times have whole seconds, so messages
    sent within one second keep the order the person sent them in."""
    return sorted(reversed(envelopes), key=lambda envelope: envelope.sent_at)
