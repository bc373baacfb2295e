"""Turning bytes and header values into text without ever losing them.

Every function here returns text plus the notes to show a reader when something could not be decoded as
declared: a wrong or unknown charset, raw 8-bit bytes in a header, an RFC 2047 word that does not decode.
Undecodable bytes become U+FFFD only as a last resort, and then the note says so; nothing is dropped.
"""

from __future__ import annotations

import codecs
import email.errors
import email.header
import re

import charset_normalizer

#: Charset labels mail clients use that Python's codecs do not know, or know under another name.
CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "x-sjis": "shift_jis",
    "shift-jis": "shift_jis",
    "x-euc-jp": "euc_jp",
    "gb2312": "gb18030",  # a superset: real GB2312 mail often carries GBK characters
    "gbk": "gb18030",
    "big5": "big5hkscs",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "unicode-1-1-utf-7": "utf-7",
    "x-unknown": "",
    "unknown-8bit": "",
    "none": "",
}


def codec_for(charset: str | None) -> str:
    """The Python codec for a MIME charset label, or "" when there is none we can trust."""
    label = (charset or "").strip().strip("\"'").lower()
    if not label:
        return ""
    label = CHARSET_ALIASES.get(label, label)
    if not label:
        return ""
    try:
        return codecs.lookup(label).name
    except LookupError:
        return ""


def decode_bytes(data: bytes, charset: str | None, *, what: str = "text") -> tuple[str, list[str]]:
    """Decode ``data`` declared as ``charset``; returns (text, notes).

    Order: the declared charset, UTF-8 (the usual lie behind ``us-ascii`` labels), a body declared UTF-8 that
    mostly is (``_mostly_utf8``) with its stray bytes replaced, a detected charset, and finally the declared (or
    UTF-8) charset with replacement characters, noted.
    """
    notes: list[str] = []
    declared = codec_for(charset)
    if charset and not declared:
        notes.append(f"{what}: unknown charset {charset!r}")
    for codec in (declared, "utf-8"):
        if not codec:
            continue
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        if codec != declared and declared:
            notes.append(f"{what}: declared {charset!r} but is {codec}")
        return text, notes
    if declared == "utf-8" and _mostly_utf8(data):
        notes.append(f"{what}: declared {charset!r}, but not all of it is; undecodable bytes shown as \ufffd")
        return data.decode("utf-8", errors="replace"), notes
    best = charset_normalizer.from_bytes(data).best()
    if best is not None and best.encoding:
        notes.append(f"{what}: declared {charset or 'no charset'!r}, decoded as detected {best.encoding}")
        return str(best), notes
    notes.append(f"{what}: could not be decoded as {charset or 'UTF-8'!r}; undecodable bytes shown as \ufffd")
    return data.decode(declared or "utf-8", errors="replace"), notes


#: A well-formed UTF-8 sequence of two to four bytes; another 8-bit byte is one UTF-8 cannot read.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")


def _mostly_utf8(data: bytes) -> bool:
    """Whether UTF-8 text holds a few stray bytes (a Latin-1 "é" pasted in), rather than being text in another
    charset: its well-formed UTF-8 characters outnumber the bytes that are not part of one. Detection would
    read the whole of such a body in a charset that fits the stray bytes, turning the rest to mojibake.
    Text in a legacy charset mislabelled UTF-8 almost never forms UTF-8 sequences by chance."""
    sequences = _UTF8_SEQUENCE.findall(data)
    stray = len(_HIGH_BYTE.findall(data)) - sum(len(sequence) for sequence in sequences)
    return len(sequences) > stray


_SURROGATES = re.compile("[\udc80-\udcff]")
#: A run of raw bytes, with the ASCII between them (a multi-byte character never spans plain ASCII).
_SURROGATE_RUNS = re.compile("[\udc80-\udcff][\udc80-\udcff\x00-\x7f]*[\udc80-\udcff]|[\udc80-\udcff]")


def raw_header_text(value: str, *, what: str) -> tuple[str, list[str]]:
    """A header value as parsed from bytes (raw 8-bit bytes arrive as surrogate escapes) back to text.

    Each run of raw bytes is read on its own, so text already decoded around it (an encoded word) stays as it
    is: as UTF-8 where it is, else Windows-1252 (the usual culprit), else Latin-1 (which decodes anything).
    """
    if not _SURROGATES.search(value):
        return value, []
    readings: set[str] = set()

    def read(run: re.Match) -> str:
        data = run.group().encode("ascii", "surrogateescape")
        for charset, reading in (("utf-8", "UTF-8"), ("cp1252", "Windows-1252"), ("latin-1", "Latin-1")):
            try:
                text = data.decode(charset)
            except UnicodeDecodeError:
                continue
            readings.add(reading)
            return text
        raise AssertionError("Latin-1 decodes any byte")  # pragma: no cover

    text = _SURROGATE_RUNS.sub(read, value)
    if readings == {"UTF-8"}:
        return text, [f"{what}: raw 8-bit UTF-8 in a header"]
    return text, [f"{what}: raw 8-bit bytes in a header, read as {' and '.join(sorted(readings))}"]


def decode_words(value: str, *, what: str) -> tuple[str, list[str]]:
    """Decode RFC 2047 encoded-words in ``value`` (a header or a display name); keep the raw text if one fails."""
    text, notes = raw_header_text(value, what=what)
    if "=?" not in text:
        return _unfold(text), notes
    try:
        chunks = email.header.decode_header(text)
    except (ValueError, email.errors.HeaderParseError):
        return _unfold(text), [*notes, f"{what}: malformed encoded-word kept as written"]
    parts: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            parts.append(chunk)
            continue
        if charset is None:
            parts.append(chunk.decode("ascii", errors="surrogateescape"))
            continue
        decoded, chunk_notes = decode_bytes(chunk, charset, what=what)
        if chunk_notes and not codec_for(charset):
            # An unknown charset: show the word as it was written rather than a guess.
            notes.append(f"{what}: encoded-word in unknown charset {charset!r} kept as written")
            return _unfold(text), notes
        notes.extend(chunk_notes)
        parts.append(decoded)
    joined, more = raw_header_text("".join(parts), what=what)
    return _unfold(joined), notes + more


def _unfold(text: str) -> str:
    return re.sub(r"\r?\n[ \t]*", " ", text).strip()
