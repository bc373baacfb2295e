"""The new text of a reply: quoted history folded away by ``mail-parser-reply``, the signature apart."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from re import Pattern

from mailparser_reply.constants import MAIL_LANGUAGES
from mailparser_reply.parser import EmailMessage

#: Every language whose "On … wrote:" / "From:" headers the parser knows.
ALL_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pl", "sv", "da", "cs", "ja", "ko", "zh")
#: Those it looks for unless a channel says otherwise (``reply_languages``); English is always included. Each
#: language adds alternatives to one regular expression tried at every character of every mail: 4 languages
#: cost 0.23 ms a mail, all 13 cost 0.63 ms (docs/benchmarks.md).
LANGUAGES = ("en", "de", "fr", "es")

_QUOTED = re.compile(r"^[ \t]*>")


@dataclass(frozen=True)
class ReplyText:
    #: What the person wrote this time: no quoted history, no signature.
    new_text: str
    #: The signature (and "Sent from my …" lines) folded away from ``new_text``; "" when none was found.
    signature: str
    #: The whole text body, as the agent sees it one click away.
    full_text: str

    @property
    def with_signature(self) -> str:
        """The new text with its signature: what talon's corpus calls the reply text."""
        return self.new_text + ("\n\n" + self.signature if self.signature else "") if self.new_text else self.signature


def split_reply(text: str, *, languages: tuple[str, ...] = LANGUAGES) -> ReplyText:
    """Split a plain-text body into the new text and what to fold away.

    The library cuts at the first quote header it recognises. Lines still starting with ``>`` in what it
    returns (a bottom-posted reply, or a header in a language it does not know) are quoted history too.
    """
    if not text.strip():
        return ReplyText(new_text="", signature="", full_text=text)
    header, disclaimers, signature_pattern = _patterns(tuple(languages))
    message = EmailMessage(
        text=text,
        languages=list(languages),
        _header_regex=header,
        _disclaimers_regex=disclaimers,
        _signature_regex=signature_pattern,
    ).read()
    # The first reply with content is the newest (a bottom-posted one starts with an empty, header-only reply).
    reply = next((item for item in message.replies if _unquoted(item.full_body)), None)
    if reply is None:
        return ReplyText(new_text="", signature="", full_text=text)
    body = _unquoted(reply.body)
    full_body = _unquoted(reply.full_body)
    signature = full_body[len(body) :].strip() if body and full_body.startswith(body) else ""
    return ReplyText(new_text=body, signature=signature, full_text=text)


def _unquoted(text: str) -> str:
    lines = [line for line in (text or "").split("\n") if not _QUOTED.match(line)]
    return "\n".join(lines).strip()


def unknown_languages(languages) -> list[str]:
    """Which of ``languages`` the reply parser has no quote headers for."""
    return [language for language in languages if language not in MAIL_LANGUAGES]


@functools.lru_cache(maxsize=16)
def _patterns(languages: tuple[str, ...]) -> tuple[Pattern, Pattern, Pattern]:
    """The parser's three expressions for ``languages``, compiled once. The library builds them per message, and
    compiling them again costs as much as using them once the regex cache is churned by MIME boundaries (each
    multipart message compiles one of its own)."""
    probe = EmailMessage(text="", languages=list(languages))
    return probe.HEADER_REGEX, probe.DISCLAIMERS_REGEX, probe.SIGNATURE_REGEX
