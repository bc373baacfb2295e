"""Routing rules' regular expressions (``tickets.routing``): compiled with the ``regex`` module, whose searches
take a time limit, and checked when a rule is saved. Knows no model, so ``tickets.models`` may validate with it."""

from functools import lru_cache

import regex

#: How long one rule's expression may search one message (seconds).
PATTERN_TIMEOUT = 0.05
#: How much of a message an expression searches (characters): the start of a message says what it is about.
PATTERN_TEXT_LIMIT = 5_000
PATTERN_MAX_LENGTH = 200
#: Texts a pattern is tried on when saved: one that backtracks on them is refused.
PATTERN_PROBES = ("a" * 3_000 + "!", "ab" * 1_500 + "!", " " * 3_000 + "!", "0" * 3_000 + "x")


class RoutingError(ValueError):
    """A rule that cannot work (an expression that does not compile, or is too slow)."""


def check_pattern(pattern: str) -> None:
    """Refuse an expression that does not compile, is too long, or backtracks catastrophically."""
    if not pattern:
        return
    if len(pattern) > PATTERN_MAX_LENGTH:
        raise RoutingError(f"An expression may have at most {PATTERN_MAX_LENGTH} characters.")
    try:
        compiled = compile_pattern(pattern)
    except regex.error as exc:
        raise RoutingError(f"This is not a valid regular expression: {exc}.") from None
    for probe in PATTERN_PROBES:
        try:
            compiled.search(probe, timeout=PATTERN_TIMEOUT)
        except TimeoutError:
            raise RoutingError(
                "This expression takes too long on some texts (nested repetition such as (a+)+); simplify it."
            ) from None


@lru_cache(maxsize=256)
def compile_pattern(pattern: str):
    return regex.compile(pattern, regex.IGNORECASE | regex.V0)
