"""IMAP4rev1 syntax (RFC 3501): reading a command's arguments, sequence sets, SEARCH keys, FETCH items, and
writing strings, dates and message parts back.

A command arrives as pieces: text, then (after each ``{n}`` the text ended with) the literal's bytes, then text
again. Arguments come out as nested lists of ``str`` (atoms and quoted strings) and ``bytes`` (literals).
"""

import email.utils
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

from .store import Message

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
FETCH_MACROS = {"ALL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"], "FAST": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]}
BODY_ITEM = re.compile(r"^(BODY(?:\.PEEK)?)\[([^\]]*)\](?:<(\d+)(?:\.(\d+))?>)?$", re.IGNORECASE)
SECTION = re.compile(r"^(HEADER|TEXT|HEADER\.FIELDS(?:\.NOT)?\s*\(([^)]*)\))?$", re.IGNORECASE)


class Bad(Exception):
    """A command the server cannot parse: answered BAD."""


class No(Exception):
    """A command that is understood but refused: answered NO (with the response code in the text)."""


# Reading arguments


def tokenize(pieces: list[bytes]) -> list:
    stack: list[list] = [[]]
    for index, piece in enumerate(pieces):
        if index % 2:
            stack[-1].append(piece)
            continue
        text = piece.decode("utf-8", "surrogateescape")
        at = 0
        while at < len(text):
            char = text[at]
            if char == " ":
                at += 1
            elif char == "(":
                stack.append([])
                at += 1
            elif char == ")":
                if len(stack) == 1:
                    raise Bad("unbalanced parenthesis")
                closed = stack.pop()
                stack[-1].append(closed)
                at += 1
            elif char == '"':
                value, at = _quoted(text, at + 1)
                stack[-1].append(value)
            else:
                value, at = _atom(text, at)
                stack[-1].append(value)
    if len(stack) != 1:
        raise Bad("unbalanced parenthesis")
    return stack[0]


def _quoted(text: str, at: int) -> tuple[str, int]:
    value = []
    while at < len(text):
        char = text[at]
        if char == "\\" and at + 1 < len(text):
            value.append(text[at + 1])
            at += 2
        elif char == '"':
            return "".join(value), at + 1
        else:
            value.append(char)
            at += 1
    raise Bad("unterminated quoted string")


def _atom(text: str, at: int) -> tuple[str, int]:
    """An atom; a ``[...]`` section inside it (``BODY.PEEK[HEADER.FIELDS (A B)]``) may hold spaces and parens."""
    start = at
    while at < len(text) and text[at] not in " ()":
        if text[at] == "[":
            end = text.find("]", at)
            if end < 0:
                raise Bad("unterminated section")
            at = end
        at += 1
    return text[start:at], at


def as_text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, str):
        return value
    raise Bad("expected a string")


# Sequence sets


def parse_set(text, largest: int) -> list[tuple[int, int]]:
    """``1:3,5,7:*`` as ranges; ``*`` is the largest number in use (so ``5:*`` takes the last one even when
    it is below 5, as RFC 3501 says)."""
    ranges = []
    for part in as_text(text).split(","):
        ends = part.split(":")
        if len(ends) > 2 or not all(end == "*" or end.isdigit() for end in ends):
            raise Bad(f"invalid sequence set {text}")
        numbers = [largest if end == "*" else int(end) for end in ends]
        ranges.append((min(numbers), max(numbers)))
    return ranges


def in_set(number: int, ranges: list[tuple[int, int]]) -> bool:
    return any(low <= number <= high for low, high in ranges)


def is_set(token) -> bool:
    return isinstance(token, str) and bool(re.fullmatch(r"[0-9*:,]+", token))


def format_set(numbers: list[int]) -> str:
    """UIDs as a compact set (``3:5,9``), for COPYUID and APPENDUID."""
    parts: list[str] = []
    start = previous = None
    for number in numbers:
        if previous is not None and number == previous + 1:
            previous = number
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}:{previous}")
        start = previous = number
    if start is not None:
        parts.append(str(start) if start == previous else f"{start}:{previous}")
    return ",".join(parts)


# Dates


def parse_date(token) -> date:
    match = re.fullmatch(r"\s?(\d{1,2})-([A-Za-z]{3})-(\d{4})", as_text(token))
    if not match or match[2].title() not in MONTHS:
        raise Bad(f"invalid date {token}")
    return date(int(match[3]), MONTHS.index(match[2].title()) + 1, int(match[1]))


def parse_internaldate(token) -> datetime:
    match = re.fullmatch(r"\s?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)", as_text(token))
    if not match or match[2].title() not in MONTHS:
        raise Bad(f"invalid date-time {token}")
    offset = timedelta(hours=int(match[8]), minutes=int(match[9])) * (-1 if match[7] == "-" else 1)
    return datetime(
        int(match[3]),
        MONTHS.index(match[2].title()) + 1,
        int(match[1]),
        int(match[4]),
        int(match[5]),
        int(match[6]),
        tzinfo=timezone(offset),
    )


def format_internaldate(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return (
        f'"{moment.day:02d}-{MONTHS[moment.month - 1]}-{moment.year:04d} '
        f'{moment:%H:%M:%S} {sign}{minutes // 60:02d}{minutes % 60:02d}"'
    )


def _sent_date(message: Message) -> date | None:
    try:
        return email.utils.parsedate_to_datetime(message.header("Date")).date()
    except (TypeError, ValueError):
        return None


# Writing


def quote(text: str) -> bytes:
    """A string as an IMAP quoted string, or a literal when it cannot be one."""
    data = text.encode("utf-8", "surrogateescape")
    if b"\r" in data or b"\n" in data or any(byte > 127 for byte in data):
        return b"{%d}\r\n" % len(data) + data
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def flag_list(flags) -> bytes:
    return ("(" + " ".join(sorted(flags)) + ")").encode()


# SEARCH

Matcher = Callable[[int, Message], bool]


def parse_search(tokens: list, largest_seq: int, largest_uid: int) -> Matcher:
    """The keys of a SEARCH (after any CHARSET) as one test of (sequence number, message)."""
    if len(tokens) >= 2 and isinstance(tokens[0], str) and tokens[0].upper() == "CHARSET":
        if as_text(tokens[1]).upper() not in ("UTF-8", "US-ASCII"):
            raise No("[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset")
        tokens = tokens[2:]
    if not tokens:
        raise Bad("SEARCH needs a key")
    keys = _SearchKeys(list(tokens), largest_seq, largest_uid)
    matchers = []
    while keys.tokens:
        matchers.append(keys.next())
    return lambda seq, message: all(matcher(seq, message) for matcher in matchers)


class _SearchKeys:
    FLAGS = {
        "ANSWERED": ("\\Answered", True),
        "DELETED": ("\\Deleted", True),
        "DRAFT": ("\\Draft", True),
        "FLAGGED": ("\\Flagged", True),
        "SEEN": ("\\Seen", True),
        "UNANSWERED": ("\\Answered", False),
        "UNDELETED": ("\\Deleted", False),
        "UNDRAFT": ("\\Draft", False),
        "UNFLAGGED": ("\\Flagged", False),
        "UNSEEN": ("\\Seen", False),
    }
    ADDRESS_HEADERS = ("BCC", "CC", "FROM", "TO", "SUBJECT")

    def __init__(self, tokens: list, largest_seq: int, largest_uid: int):
        self.tokens = tokens
        self.largest_seq = largest_seq
        self.largest_uid = largest_uid

    def _take(self):
        if not self.tokens:
            raise Bad("SEARCH key is missing an argument")
        return self.tokens.pop(0)

    def next(self) -> Matcher:
        token = self._take()
        if isinstance(token, list):
            inner = _SearchKeys(token, self.largest_seq, self.largest_uid)
            group = []
            while inner.tokens:
                group.append(inner.next())
            return lambda seq, message: all(matcher(seq, message) for matcher in group)
        if is_set(token):
            ranges = parse_set(token, self.largest_seq)
            return lambda seq, message: in_set(seq, ranges)
        key = as_text(token).upper()
        if key == "ALL":
            return lambda seq, message: True
        if key in self.FLAGS:
            flag, wanted = self.FLAGS[key]
            return lambda seq, message: (flag in message.flags) == wanted
        if key in ("NEW", "OLD", "RECENT"):
            return {
                "NEW": lambda seq, message: message.recent and "\\Seen" not in message.flags,
                "OLD": lambda seq, message: not message.recent,
                "RECENT": lambda seq, message: message.recent,
            }[key]
        if key in ("KEYWORD", "UNKEYWORD"):
            flag = as_text(self._take())
            return lambda seq, message: (flag in message.flags) == (key == "KEYWORD")
        if key == "NOT":
            inner_matcher = self.next()
            return lambda seq, message: not inner_matcher(seq, message)
        if key == "OR":
            left, right = self.next(), self.next()
            return lambda seq, message: left(seq, message) or right(seq, message)
        if key == "UID":
            ranges = parse_set(self._take(), self.largest_uid)
            return lambda seq, message: in_set(message.uid, ranges)
        if key in ("LARGER", "SMALLER"):
            size = int(as_text(self._take()))
            if key == "LARGER":
                return lambda seq, message: len(message.raw) > size
            return lambda seq, message: len(message.raw) < size
        if key in ("BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"):
            return self._date_key(key, parse_date(self._take()))
        if key in self.ADDRESS_HEADERS:
            return _header_matcher(key, as_text(self._take()))
        if key == "HEADER":
            return _header_matcher(as_text(self._take()), as_text(self._take()))
        if key in ("BODY", "TEXT"):
            needle = as_text(self._take()).lower()
            return lambda seq, message: needle in _searchable(message, key == "TEXT")
        raise Bad(f"unknown SEARCH key {key}")

    @staticmethod
    def _date_key(key: str, day: date) -> Matcher:
        """Dates only, each in its own time zone: RFC 3501 disregards time and zone."""
        compare = {
            "BEFORE": lambda other: other is not None and other < day,
            "ON": lambda other: other == day,
            "SINCE": lambda other: other is not None and other >= day,
        }[key.removeprefix("SENT")]
        if key.startswith("SENT"):
            return lambda seq, message: compare(_sent_date(message))
        return lambda seq, message: compare(message.internaldate.date())


def _header_matcher(name: str, needle: str) -> Matcher:
    needle = needle.lower()
    return lambda seq, message: (
        needle in _unfold(message.header(name)).lower() and (bool(needle) or _has_header(message, name))
    )


def _has_header(message: Message, name: str) -> bool:
    return any(line.split(b":", 1)[0].strip().lower() == name.lower().encode() for line in header_lines(message.raw))


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]", " ", value)


def _searchable(message: Message, with_headers: bool) -> str:
    data = message.raw if with_headers else split_message(message.raw)[1]
    return data.decode("utf-8", "replace").lower()


# FETCH


def fetch_items(token) -> list[str]:
    """The data items a FETCH asks for: one atom, a macro, or a parenthesized list."""
    if isinstance(token, list):
        items = [as_text(item) for item in token]
    else:
        item = as_text(token)
        items = FETCH_MACROS.get(item.upper(), [item])
    if not items:
        raise Bad("FETCH needs data items")
    return items


def split_message(raw: bytes) -> tuple[bytes, bytes]:
    """(the header with the blank line that ends it, the body)."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return raw + (b"" if raw.endswith(b"\r\n") else b"\r\n") + b"\r\n", b""
    return raw[: end + 4], raw[end + 4 :]


def header_lines(raw: bytes) -> list[bytes]:
    """Each header field with its continuation lines, CRLF included."""
    header = split_message(raw)[0][:-2]
    fields: list[bytes] = []
    for line in header.split(b"\r\n")[:-1]:  # the header ends with CRLF
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line + b"\r\n"
        else:
            fields.append(line + b"\r\n")
    return fields


def body_section(raw: bytes, section: str) -> bytes:
    match = SECTION.match(section.strip())
    if match is None:
        raise Bad(f"unsupported section [{section}]")
    kind = (match[1] or "").upper()
    if not kind:
        return raw
    header, body = split_message(raw)
    if kind == "HEADER":
        return header
    if kind == "TEXT":
        return body
    names = {(quoted or bare).lower().encode() for quoted, bare in re.findall(r'"([^"]*)"|(\S+)', match[2])}
    keep = kind.startswith("HEADER.FIELDS") and not kind.endswith(".NOT")
    fields = [line for line in header_lines(raw) if (line.split(b":", 1)[0].strip().lower() in names) == keep]
    return b"".join(fields) + b"\r\n"
