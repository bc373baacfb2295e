"""The new text of a reply: quoted history folded away by ``mail-parser-reply``, the signature apart."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailparser_reply import EmailReplyParser

#: Languages whose "On … wrote:" / "From:" headers the parser looks for (English is always included).
LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pl", "sv", "da", "cs", "ja", "ko", "zh")

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
    message = EmailReplyParser(languages=list(languages)).read(text)
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
