"""Raw RFC 5322 bytes → ``ParsedEmail``: headers, addresses, ids, date, bodies, attachments, notes.

``parse_email(raw)`` never raises for any bytes it is given except ``EmailParseError`` (a ``ValueError``)
for input that is not a mail message at all (empty, or no header block). Everything the stdlib parser flags
as broken (MIME defects) or that cannot be decoded as declared is kept, with a note in ``ParsedEmail.notes``.
"""

from __future__ import annotations

import email
import email.errors
import email.headerregistry
import email.message
import email.policy
import email.utils
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, TypeVar

import nh3

from .decoding import decode_bytes, decode_words, raw_header_text

#: ``img src="cid:…"`` must survive sanitizing: the console swaps it for the stored inline part.
URL_SCHEMES = nh3.ALLOWED_URL_SCHEMES | {"cid"}

_MSGID = re.compile(r"<([^<>\s]+)>")
#: Parsed headers remembered across messages: the common values (a text part's Content-Type, MIME-Version)
#: recur in nearly every message, and each message's own are read several times while it is parsed.
HEADER_CACHE = 2048


class EmailParseError(ValueError):
    """Bytes that are not a mail message at all, or too damaged to read; the adapter keeps them as a rejected
    item, with the raw bytes."""


#: What the standard library's parser raises on a damaged message where ``policy.default`` records no defect
#: (found by fuzzing: a header it cannot fold, a part it cannot index, a codec it cannot apply, parts nested
#: deeper than the stack, which it walks recursively).
STDLIB_PARSE_ERRORS = (
    email.errors.MessageError,
    IndexError,
    LookupError,
    UnicodeError,
    ValueError,
    TypeError,
    AttributeError,
    RecursionError,
)

_Read = TypeVar("_Read", bound=Callable[..., Any])


def unreadable_as_parse_error(read: _Read) -> _Read:
    """``read`` raising only ``EmailParseError`` on bad input, whatever the standard library trips on."""

    @functools.wraps(read)
    def guarded(*args, **kwargs):
        try:
            return read(*args, **kwargs)
        except EmailParseError:
            raise
        except STDLIB_PARSE_ERRORS as exc:
            raise EmailParseError(f"unreadable message ({type(exc).__name__}: {exc})") from exc

    return guarded  # type: ignore[return-value]


@dataclass(frozen=True)
class Address:
    email: str
    name: str = ""


@dataclass(frozen=True)
class Part:
    """An attachment or an inline part (``content_id`` set for ``cid:`` references)."""

    name: str
    content_type: str
    size: int
    content_id: str = ""
    inline: bool = False
    #: Path of the part in the MIME tree ("1.2"): how the adapter finds its bytes again.
    index: str = ""


@dataclass
class ParsedEmail:
    message: email.message.EmailMessage
    subject: str = ""
    from_: Address | None = None
    reply_to: tuple[Address, ...] = ()
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    message_id: str = ""
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    date: datetime | None = None
    text: str = ""
    html: str = ""
    attachments: tuple[Part, ...] = ()
    notes: list[str] = field(default_factory=list)

    def header(self, name: str) -> str:
        """One header's decoded value ("" when absent)."""
        value, _notes = header_text(self.message, name)
        return value


def parse_message_ids(value: str) -> tuple[str, ...]:
    """The Message-IDs in a header value, without angle brackets, in order, each once.

    A bare id without brackets (some clients write them) counts when it is the only token and has an ``@``.
    """
    found = _MSGID.findall(value or "")
    if not found:
        bare = (value or "").strip()
        found = [bare] if bare and "@" in bare and not re.search(r"\s", bare) else []
    seen: dict[str, None] = {}
    for item in found:
        seen.setdefault(item.strip(), None)
    return tuple(seen)


class _RememberingRegistry(email.headerregistry.HeaderRegistry):
    """``policy.default``'s header objects, each (name, text) parsed once.

    The standard library parses a header again on every read (``get_content_type`` alone reads Content-Type
    several times per part) and builds a new class for it on each one: that was most of the time spent reading
    a message (docs/benchmarks.md, "Email (issue 11)"). Header objects are immutable strings, so one parsed
    once can be handed out again; other values (objects being set as headers) are built as before.
    """

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type] = {}
        self._parse = functools.lru_cache(maxsize=HEADER_CACHE)(super().__call__)

    def __getitem__(self, name):
        key = name.lower()
        found = self._classes.get(key)
        if found is None:
            found = self._classes[key] = super().__getitem__(name)
        return found

    def __call__(self, name, value):
        if type(value) is str:
            return self._parse(name, value)
        return super().__call__(name, value)


POLICY = email.policy.default.clone(header_factory=_RememberingRegistry())


def read_message(raw: bytes) -> email.message.EmailMessage:
    """Parse bytes leniently (``policy.default`` never raises on broken MIME: it records defects)."""
    if not isinstance(raw, bytes | bytearray):
        raise EmailParseError("a mail message is bytes")
    if not raw.strip():
        raise EmailParseError("empty message")
    message = email.message_from_bytes(bytes(raw), policy=POLICY)
    if not message.keys():
        raise EmailParseError("no header block: not a mail message")
    return message  # type: ignore[return-value]


def header_text(message: email.message.Message, name: str) -> tuple[str, list[str]]:
    """A header's decoded text and notes, read from the raw value so a malformed header cannot raise."""
    raw = _raw_header(message, name)
    if raw is None:
        return "", []
    return decode_words(raw, what=name)


def _raw_header(message: email.message.Message, name: str) -> str | None:
    lowered = name.lower()
    for key, value in message.raw_items() if hasattr(message, "raw_items") else message.items():
        if key.lower() == lowered:
            return str(value)
    return None


def _raw_headers(message: email.message.Message, name: str) -> list[str]:
    lowered = name.lower()
    return [str(value) for key, value in message.raw_items() if key.lower() == lowered]  # type: ignore[attr-defined]


def parse_addresses(values: list[str], *, what: str) -> tuple[tuple[Address, ...], list[str]]:
    """Addresses from raw header values: split before decoding, so a comma inside an encoded display name
    stays inside it."""
    notes: list[str] = []
    addresses: list[Address] = []
    texts = []
    for value in values:
        text, more = raw_header_text(value, what=what)
        notes.extend(more)
        texts.append(text.replace("\r", " ").replace("\n", " "))
    for name, addr in email.utils.getaddresses(texts):
        addr = addr.strip()
        if not addr or "@" not in addr:
            continue
        display, more = decode_words(name, what=what) if name else ("", [])
        notes.extend(more)
        addresses.append(Address(email=addr.lower() if addr.isascii() else addr, name=display))
    return tuple(addresses), notes


@unreadable_as_parse_error
def parse_email(raw: bytes) -> ParsedEmail:
    message = read_message(raw)
    parsed = ParsedEmail(message=message)
    notes = parsed.notes
    parsed.subject, more = header_text(message, "Subject")
    notes.extend(more)
    for attr, name in (("reply_to", "Reply-To"), ("to", "To"), ("cc", "Cc")):
        value, more = parse_addresses(_raw_headers(message, name), what=name)
        setattr(parsed, attr, value)
        notes.extend(more)
    senders, more = parse_addresses(_raw_headers(message, "From")[:1], what="From")
    notes.extend(more)
    parsed.from_ = senders[0] if senders else None
    if len(senders) > 1:
        notes.append(f"From: {len(senders)} addresses; the first is the sender")
    ids = parse_message_ids(_raw_header(message, "Message-ID") or "")
    parsed.message_id = ids[0] if ids else ""
    parsed.in_reply_to = parse_message_ids(_raw_header(message, "In-Reply-To") or "")
    parsed.references = parse_message_ids(" ".join(_raw_headers(message, "References")))
    parsed.date = parse_date(_raw_header(message, "Date"))
    if _raw_header(message, "Date") and parsed.date is None:
        notes.append("Date: unreadable, ignored")
    _read_body(message, parsed)
    return parsed


def parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


# --- bodies and parts -------------------------------------------------------------------------------------


def _read_body(message: email.message.EmailMessage, parsed: ParsedEmail) -> None:
    texts: list[tuple[bool, str]] = []  # (inside a forwarded message, text)
    htmls: list[tuple[bool, str]] = []
    parts: list[Part] = []
    for index, part, forwarded in _leaves(message, "", False):
        _note_defects(part, index, parsed.notes)
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = _filename(part, parsed.notes)
        content_id = parse_message_ids(str(part.get("Content-ID", "") or ""))
        is_body_type = ctype in ("text/plain", "text/html") or part.get_content_maintype() == "multipart"
        if is_body_type and disposition != "attachment" and not filename:
            text = _part_text(part, index, parsed.notes)
            if ctype == "text/html":
                htmls.append((forwarded, text))
            else:
                texts.append((forwarded, text))
            continue
        # A forwarded message/rfc822 is kept whole as an attachment here; its own leaves are walked too.
        payload = _payload_bytes(part, index, parsed.notes)
        parts.append(
            Part(
                name=filename or _default_name(ctype, index),
                content_type=ctype,
                size=len(payload),
                content_id=content_id[0] if content_id else "",
                inline=disposition == "inline" or (bool(content_id) and disposition != "attachment"),
                index=index,
            )
        )
    own_texts = [text for fwd, text in texts if not fwd] or [text for _fwd, text in texts]
    own_htmls = [html for fwd, html in htmls if not fwd] or [html for _fwd, html in htmls]
    parsed.html = sanitize_html("\n".join(own_htmls)) if own_htmls else ""
    if own_texts and any(text.strip() for text in own_texts):
        parsed.text = "\n".join(own_texts)
    elif own_htmls:
        parsed.text = html_to_text("\n".join(own_htmls))
    parsed.attachments = tuple(parts)


def _leaves(part: email.message.Message, index: str, forwarded: bool):
    """Leaf parts with their path; a message/rfc822 is a leaf (kept as an attachment) and its insides too."""
    ctype = part.get_content_type()
    payload = part.get_payload()
    if ctype == "message/rfc822" or (isinstance(payload, list) and part.get_content_maintype() == "message"):
        yield index or "1", part, forwarded
        inner = payload if isinstance(payload, list) else []
        for number, child in enumerate(inner, 1):
            yield from _leaves(child, f"{index}.{number}" if index else str(number), True)
        return
    if isinstance(payload, list):
        for number, child in enumerate(payload, 1):
            yield from _leaves(child, f"{index}.{number}" if index else str(number), forwarded)
        return
    yield index or "1", part, forwarded


def _note_defects(part: email.message.Message, index: str, notes: list[str]) -> None:
    for defect in getattr(part, "defects", ()):
        notes.append(f"part {index}: {type(defect).__name__}")
    epilogue = getattr(part, "epilogue", None)
    if isinstance(part.get_payload(), list) and epilogue and epilogue.strip():
        notes.append(f"part {index}: {len(epilogue)} characters after the closing boundary, kept in the raw message")


def _filename(part: email.message.Message, notes: list[str]) -> str:
    raw = None
    for header, param in (("Content-Disposition", "filename"), ("Content-Type", "name")):
        try:
            raw = part.get_param(param, header=header)
        except (ValueError, IndexError, AttributeError):
            raw = None
        if raw:
            break
    if not raw:
        return ""
    if isinstance(raw, tuple):  # RFC 2231: (charset, language, value)
        try:
            raw = email.utils.collapse_rfc2231_value(raw)
        except (LookupError, ValueError):
            raw = str(raw[2])
    name, more = decode_words(str(raw), what="attachment name")
    notes.extend(more)
    return name.replace("/", "_").replace("\\", "_").strip()


def _default_name(ctype: str, index: str) -> str:
    extension = {"message/rfc822": "eml", "text/rfc822-headers": "txt", "message/delivery-status": "txt"}.get(
        ctype, ctype.split("/")[-1][:10] or "bin"
    )
    return f"part-{index}.{extension}"


def _payload_bytes(part: email.message.Message, index: str, notes: list[str]) -> bytes:
    if part.get_content_type() == "message/rfc822" or isinstance(part.get_payload(), list):
        return part.as_bytes(policy=email.policy.compat32) if hasattr(part, "as_bytes") else b""
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    notes.append(f"part {index}: payload could not be decoded, kept as written")
    return str(part.get_payload()).encode("utf-8", "surrogateescape")


def payload_bytes(message: email.message.Message, index: str) -> bytes:
    """The decoded bytes of the part at ``index`` (as ``Part.index`` names it); the adapter's download."""
    for found, part, _fwd in _leaves(message, "", False):
        if found == index:
            return _payload_bytes(part, index, [])
    raise KeyError(index)


def _part_text(part: email.message.Message, index: str, notes: list[str]) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        payload = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    if part.get_content_maintype() == "multipart":
        notes.append(f"part {index}: multipart without usable boundary, read as text")
    charset = part.get_content_charset()
    text, more = decode_bytes(payload, charset, what=f"part {index}")
    notes.extend(more)
    if part.get_param("format", header="Content-Type") == "flowed":
        text = _unflow(text, delsp=str(part.get_param("delsp", header="Content-Type") or "").lower() == "yes")
    return text.replace("\r\n", "\n")


def _unflow(text: str, *, delsp: bool) -> str:
    """RFC 3676 format=flowed: join soft-broken lines (ending in a space) of the same quote depth."""
    out: list[tuple[int, str, bool]] = []  # (quote depth, text, soft break at its end)
    for raw_line in text.replace("\r\n", "\n").split("\n"):
        stripped = raw_line.lstrip(">")
        depth = len(raw_line) - len(stripped)
        if stripped.startswith(" "):
            stripped = stripped[1:]  # space-stuffing
        soft = stripped.endswith(" ") and stripped.rstrip() != "--"
        if soft and delsp:
            stripped = stripped[:-1]
        if out and out[-1][2] and out[-1][0] == depth:
            out[-1] = (depth, out[-1][1] + stripped, soft)
        else:
            out.append((depth, stripped, soft))
    return "\n".join((">" * depth + " " if depth else "") + line for depth, line, _soft in out)


def sanitize_html(html: str) -> str:
    """HTML safe to show in the console: no scripts, no event handlers, ``cid:`` images kept."""
    return nh3.clean(html, url_schemes=URL_SCHEMES)


class _TextExtractor(HTMLParser):
    BLOCKS = frozenset(
        [
            "p",
            "div",
            "br",
            "tr",
            "li",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "blockquote",
            "pre",
            "table",
            "ul",
            "ol",
            "hr",
            "section",
            "article",
            "header",
            "footer",
        ]
    )
    SKIP = frozenset(("script", "style", "head", "title"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.chunks.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.chunks.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.chunks.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Readable plain text from HTML: block elements become line breaks, scripts and styles are dropped."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = [line.strip() for line in "".join(extractor.chunks).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
