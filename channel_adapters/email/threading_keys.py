"""Threading facts of a message: the ticket tag in its subject and the Message-IDs it refers to.

Never the subject alone: a tag names a ticket, and the ids are matched against messages we stored or sent.
"""

from __future__ import annotations

import re

from .parsing import ParsedEmail

#: ``[#123]``; a channel may configure another pattern with one group capturing the number.
DEFAULT_TAG_PATTERN = r"\[#(\d{1,12})\]"


def ticket_tag(subject: str, pattern: str = DEFAULT_TAG_PATTERN) -> int | None:
    """The ticket number tagged in ``subject`` (the last tag wins: a forward keeps older ones in front)."""
    found = re.findall(pattern, subject or "")
    if not found:
        return None
    last = found[-1]
    number = last if isinstance(last, str) else next((item for item in last if item), "")
    return int(number) if number.isdigit() else None


def tag_subject(subject: str, number: int, template: str = "[#{number}]") -> str:
    """``subject`` with the ticket tag, added once."""
    tag = template.format(number=number)
    return subject if tag in subject else f"{subject} {tag}".strip()


def referenced_ids(parsed: ParsedEmail) -> tuple[str, ...]:
    """The Message-IDs this message answers, nearest first: In-Reply-To, then References newest to oldest.

    Outlook often sends In-Reply-To without References; either one alone is enough.
    """
    seen: dict[str, None] = {}
    for item in (*parsed.in_reply_to, *reversed(parsed.references)):
        if item and item != parsed.message_id:
            seen.setdefault(item, None)
    return tuple(seen)
