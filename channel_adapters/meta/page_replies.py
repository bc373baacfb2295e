"""Answering on a Page or an Instagram account: the reply modes and their windows (24 hours, 7 days with the
Human Agent tag, a private reply to a comment once within 7 days), the Send API, replies to comments, files, and
the lookup of a reply whose send had no answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ..base import AttachmentLimits, PermanentError, ReplyMode, ReplyTarget, Sent
from .graph import GraphError
from .items import BadItem, event_time, mapping_in, message_id, meta_id
from .page_polling import MESSAGES_PAGE

#: The customer-service window (a plain reply), and the HUMAN_AGENT tag's.
STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
#: What a comment's message keeps once its one private reply went out (``Sent.answered_meta``).
PRIVATE_REPLY_USED = {"private_reply_sent": True}
#: A private reply to a comment is possible for this long after the comment, once.
PRIVATE_REPLY_WINDOW = timedelta(days=7)
#: Meta's subcode for a second private reply to one comment.
PRIVATE_REPLY_TAKEN = 1893034
MB = 1024 * 1024
#: A lookup after an unknown outcome reads from this long before the attempt began (Meta's clock and ours).
LOOKUP_MARGIN = timedelta(seconds=30)


class PageReplies:
    """Replies for ``pages.PageAdapter``; subclasses add the public reply to a comment and its lookup."""

    dm_max_length = 2000
    comment_max_length = 8000
    dm_files = AttachmentLimits(max_files=10, max_bytes=25 * MB)
    #: Meta's error subcodes for a message outside the allowed window.
    window_subcodes: frozenset[int] = frozenset()

    def reply_modes(self, target: ReplyTarget) -> list[ReplyMode]:
        if target.thread_key.startswith("comment:"):
            return self._comment_modes(target)
        return self._dm_modes(target)

    def _dm_modes(self, target) -> list[ReplyMode]:
        now = datetime.now(UTC)
        last = target.last_inbound_at
        standard_end = last + STANDARD_WINDOW if last else None
        human_end = last + HUMAN_AGENT_WINDOW if last else None
        has_human_agent = bool(self.config.get("human_agent"))
        reply = ReplyMode(
            key="",
            label="Reply",
            max_length=self.dm_max_length,
            allowed=standard_end is None or now <= standard_end,
            attachments=self.dm_files,
            expires_at=standard_end,
        )
        if not reply.allowed:
            reply = _refused(reply, self._closed_reason(standard_end, human_end, has_human_agent, now))
        human = ReplyMode(
            key="human_agent",
            label="Human agent (7 days)",
            max_length=self.dm_max_length,
            allowed=has_human_agent and (human_end is None or now <= human_end),
            attachments=self.dm_files,
            expires_at=human_end if has_human_agent else None,
        )
        if not has_human_agent:
            human = _refused(
                human,
                f"This Page has no Human Agent permission from Meta (the channel's human_agent setting is off), "
                f"so {self.product} allows no reply more than 24 hours after the person's last message.",
            )
        elif not human.allowed:
            human = _refused(
                human,
                f"The 7-day human agent window closed at {_when(human_end)}. {self.product} allows no further "
                "message until the person writes again.",
            )
        return [reply, human]

    def _closed_reason(self, standard_end, human_end, has_human_agent, now) -> str:
        closed = f"The 24-hour reply window closed at {_when(standard_end)}."
        if has_human_agent and now <= human_end:
            return f"{closed} Use the human agent reply (allowed until {_when(human_end)})."
        if has_human_agent:
            return f"{closed} The 7-day human agent window closed too; wait for the person to write again."
        return f"{closed} {self.product} allows no message until the person writes again."

    def _comment_modes(self, target) -> list[ReplyMode]:
        now = datetime.now(UTC)
        last = target.last_inbound_at
        public = ReplyMode(key="public", label="Public reply", max_length=self.comment_max_length)
        private_end = last + PRIVATE_REPLY_WINDOW if last else None
        private = ReplyMode(
            key="private",
            label="Private reply (DM)",
            max_length=self.dm_max_length,
            allowed=private_end is None or now <= private_end,
            expires_at=private_end,
        )
        if target.reply_to_meta.get("private_reply_sent"):
            private = _refused(
                private,
                "A private reply was already sent for this comment; Meta allows one. Continue in the DM thread.",
            )
        elif not private.allowed:
            private = _refused(
                private,
                f"A private reply is possible for 7 days after the comment; that closed at {_when(private_end)}.",
            )
        return [public, private]

    def send(self, *, target, text, key):
        if target.thread_key.startswith("comment:"):
            if target.mode == "public":
                return self._public_reply(target, self._checked(text, self.comment_max_length, "A public reply"))
            if target.mode == "private":
                return self._private_reply(target, self._checked(text, self.dm_max_length, "A private reply"))
            raise PermanentError(f"A comment takes a public or a private reply, not {target.mode!r}.")
        psid = self._recipient(target)
        body = {"recipient": {"id": psid}, **self._messaging_type(target.mode), "message": {"text": text}}
        self._checked(text, self.dm_max_length, "A message")
        answer = self._send(body)
        return Sent(external_id=message_id(answer.get("message_id")))

    def _checked(self, text, limit, what) -> str:
        if len(text) > limit:
            raise PermanentError(f"{what} on {self.product} takes at most {limit} characters.")
        return text

    @staticmethod
    def _messaging_type(mode) -> dict:
        if mode == "human_agent":
            return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
        if mode:
            raise PermanentError(f"A DM takes a reply or a human agent reply, not {mode!r}.")
        return {"messaging_type": "RESPONSE"}

    @staticmethod
    def _recipient(target) -> str:
        psid = target.thread_key.removeprefix("dm:") if target.thread_key.startswith("dm:") else target.recipient
        try:
            return meta_id(psid, "recipient")
        except BadItem:
            raise PermanentError(f"No recipient for this conversation ({target.thread_key[:60]}).") from None

    def _send(self, body, **files) -> dict:
        """One Send API call; Meta's window refusals become a sentence an agent can act on."""
        try:
            if files:
                data = {key: json.dumps(value) if isinstance(value, dict) else value for key, value in body.items()}
                return self.graph.post(f"{self.config['page_id']}/messages", data=data, files=files)
            return self.graph.post(f"{self.config['page_id']}/messages", json_body=body)
        except GraphError as exc:
            if exc.subcode == PRIVATE_REPLY_TAKEN:
                raise PermanentError(f"This comment already has its private reply; continue in the DM: {exc}") from None
            if exc.code == 10 and (exc.subcode in self.window_subcodes or exc.subcode is None):
                raise PermanentError(f"Outside {self.product}'s reply window: {exc}") from None
            if exc.code == 551 or exc.subcode == 1545041:
                raise PermanentError(f"The person cannot be reached on {self.product} now: {exc}") from None
            raise

    def _private_reply(self, target, text) -> Sent:
        """The first DM to someone who commented, addressed by the comment; its answer names the person, so the
        DM's replies join this ticket under ``dm:{their id}``."""
        comment_id = self._comment_id(target)
        answer = self._send({"recipient": {"comment_id": comment_id}, "message": {"text": text}})
        recipient = answer.get("recipient_id")
        thread_key = f"dm:{meta_id(recipient, 'recipient_id')}" if recipient else ""
        return Sent(
            external_id=message_id(answer.get("message_id")),
            thread_key=thread_key,
            answered_meta=PRIVATE_REPLY_USED,
        )

    def _comment_id(self, target) -> str:
        """The comment an answer goes to: the one ``reply_to`` names, else the thread's first."""
        comment = target.reply_to.removeprefix("comment:") if target.reply_to.startswith("comment:") else ""
        comment = comment or target.thread_key.removeprefix("comment:")
        try:
            return meta_id(comment, "comment id")
        except BadItem:
            raise PermanentError(f"No comment to answer in {target.thread_key[:60]}.") from None

    @staticmethod
    def _thread_comment(target) -> str:
        """The first comment of a comment thread: public replies go under it (both platforms nest one level)."""
        try:
            return meta_id(target.thread_key.removeprefix("comment:"), "comment id")
        except BadItem:
            raise PermanentError(f"Not a comment thread: {target.thread_key[:60]}.") from None

    def _public_reply(self, target, text) -> Sent:
        raise NotImplementedError

    def send_attachment(self, *, target, file):
        if target.thread_key.startswith("comment:"):
            raise PermanentError(f"Replies to {self.product} comments carry text only; this file was not sent.")
        kind = self._attachment_type(file)
        body = {
            "recipient": {"id": self._recipient(target)},
            **self._messaging_type(target.mode),
            "message": {"attachment": {"type": kind, "payload": {"is_reusable": False}}},
        }
        answer = self._send(body, filedata=(file.name, file.data, file.content_type))
        return message_id(answer.get("message_id"))

    def _attachment_type(self, file) -> str:
        """The Send API's attachment type for a file; refuses what the platform does not take."""
        major = file.content_type.split("/", 1)[0]
        kind = major if major in ("image", "video", "audio") else "file"
        if len(file.data) > self.dm_files.max_bytes:
            raise PermanentError(f"{file.name} is larger than {self.product}'s {self.dm_files.max_bytes // MB} MB.")
        return kind

    def find_sent(self, *, target, text, key, since):
        """Our message with this text, made since the attempt began: in the person's conversation (a DM or a
        private reply), or among the comment's replies."""
        start = since - LOOKUP_MARGIN
        if target.thread_key.startswith("comment:") and target.mode == "public":
            return self._find_public_reply(target, text, start)
        if target.thread_key.startswith("comment:"):
            psid = meta_id(target.recipient, "recipient") if target.recipient else ""
            if not psid:
                return None
            found = self._find_dm(psid, text, start)
            return (
                Sent(external_id=found.external_id, thread_key=f"dm:{psid}", answered_meta=PRIVATE_REPLY_USED)
                if found
                else None
            )
        return self._find_dm(self._recipient(target), text, start)

    def _find_dm(self, psid, text, start) -> Sent | None:
        conversations = self.graph.get(
            f"{self.config['page_id']}/conversations", {"platform": self.platform, "user_id": psid, "fields": "id"}
        ).get("data")
        for conversation in conversations if isinstance(conversations, list) else []:
            if not isinstance(conversation, Mapping) or not isinstance(conversation.get("id"), str):
                continue
            params = {"fields": "id,message,from,created_time", "limit": MESSAGES_PAGE}
            for page in self.graph.pages(f"{meta_id(conversation['id'], 'conversation id')}/messages", params):
                for message in page:  # newest first
                    try:
                        created = event_time(message.get("created_time"))
                    except (BadItem, AttributeError):
                        continue
                    if created < start:
                        return None
                    author = mapping_in(message.get("from"))
                    if str(author.get("id")) in self.own_ids and message.get("message") == text:
                        return Sent(external_id=message_id(message.get("id")))
        return None

    def _find_public_reply(self, target, text, start) -> Sent | None:
        raise NotImplementedError

    def _own_comment_reply(self, path, params, text_field, text, start) -> Sent | None:
        """Our reply with this text among a comment's replies (newest first), made since ``start``."""
        for page in self.graph.pages(path, params):
            for reply in page:
                if not isinstance(reply, Mapping):
                    continue
                author = mapping_in(reply.get("from"))
                try:
                    created = event_time(reply.get(self.comment_time_field))
                except BadItem:
                    continue
                if created >= start and str(author.get("id")) in self.own_ids and reply.get(text_field) == text:
                    return Sent(external_id=f"comment:{meta_id(reply.get('id'), 'comment id')}")
        return None


def _refused(mode: ReplyMode, reason: str) -> ReplyMode:
    return replace(mode, allowed=False, reason=reason)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "an unknown time"
