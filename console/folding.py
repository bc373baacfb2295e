"""Folding long messages: the timeline shows the start of a long message and a "Show all" that opens the rest,
so a 40,000-character message does not push the reply box a dozen screens down.

The text is cut before it is escaped (the caller escapes the preview), so no cut falls inside an HTML entity;
and never inside a character as people see it: a cut backs up to a space near the limit, else over accents,
joiners, variation selectors, skin tones and the second half of a flag.
"""

import unicodedata

#: Messages longer than this (characters) or with more lines than ``FOLD_LINES`` are folded.
FOLD_CHARS = 1500
FOLD_LINES = 30
#: A cut looks this far back from the limit for a space, so the preview ends on a whole word.
WORD_SLACK = 200

_ZWJ = "\u200d"
_REGIONAL_INDICATORS = range(0x1F1E6, 0x1F200)


def _attaches_to_previous(char: str) -> bool:
    """True for a character drawn as part of the one before it (an accent, a joiner, a variation selector,
    a skin tone, an emoji tag)."""
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Mc", "Me")
        or char == _ZWJ
        or 0xFE00 <= code <= 0xFE0F
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    )


def _safe_cut(text: str, limit: int) -> int:
    """A position at or before ``limit`` that splits no character as people see it."""
    space = max(text.rfind(" ", limit - WORD_SLACK, limit + 1), text.rfind("\n", limit - WORD_SLACK, limit + 1))
    if space > 0:
        return space
    cut = limit
    while cut > 0 and (_attaches_to_previous(text[cut]) or text[cut - 1] == _ZWJ):
        cut -= 1
    # A flag is two regional indicators: count the run before the cut, and keep pairs together.
    run = 0
    while cut - run > 0 and ord(text[cut - run - 1]) in _REGIONAL_INDICATORS:
        run += 1
    if run % 2 and ord(text[cut]) in _REGIONAL_INDICATORS:
        cut -= 1
    return cut


def preview(text: str) -> str | None:
    """The start of ``text`` to show folded (raw, to be escaped by the caller), or None when it is short enough
    to show whole."""
    if len(text) <= FOLD_CHARS and text.count("\n") < FOLD_LINES:
        return None
    limit = min(FOLD_CHARS, len(text) - 1)
    line_end = -1
    for _ in range(FOLD_LINES):
        line_end = text.find("\n", line_end + 1)
        if line_end < 0:
            break
    if 0 <= line_end < limit:
        return text[:line_end]
    return text[: _safe_cut(text, limit)].rstrip()
