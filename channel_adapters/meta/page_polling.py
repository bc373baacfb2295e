"""Polling a Page or an Instagram account, the backstop for lost webhooks: the Conversations API (conversations
newest first, then each one's messages) and the comments on recent posts or media, each read down to a
high-water mark (``Mark``) that moves only after every page it covers was yielded. A poll stops, after the page
in hand, while Meta's usage headers say the app is near a limit.

A page without its ``data`` list ends that listing, not the poll: Meta's answer becomes a failed row, the rest
is read, and the mark stays, so what the page hid is read by a later poll.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from ..base import DEFAULT_IMPORT_DAYS, Envelope, EnvelopeKind, PollPage, RateLimited, Rejected
from .graph import USAGE_BACKOFF_PERCENT, MalformedPage
from .items import BadItem, as_dict, chronological, event_time, graph_attachments, message_id, meta_id, text_of

logger = logging.getLogger(__name__)

#: How many of a poll's conversations, messages and comments one page of the API holds.
CONVERSATIONS_PAGE = 25
MESSAGES_PAGE = 50
COMMENTS_PAGE = 50
DEFAULT_POLL_MEDIA = 10


class PagePolling:
    """``poll`` for ``pages.PageAdapter``; subclasses say how their posts or media and comments are listed."""

    @classmethod
    def polling_limits(cls, config):
        media = config.get("poll_media", DEFAULT_POLL_MEDIA)
        return (
            f"Polling reads the DMs of conversations updated since the last poll, and the comments on the {media} "
            f"most recent {cls.media_noun}. Edits, unsent messages, reactions and delivery and read reports arrive "
            "only by webhook."
        )

    media_noun = "posts"

    def poll(self, cursor):
        cursor = copy.deepcopy(dict(cursor))
        start = datetime.now(UTC) - timedelta(days=self.config.get("import_days", DEFAULT_IMPORT_DAYS))
        yield from self._poll_dms(cursor, start)
        yield from self._poll_comments(cursor, start)

    def _page(self, envelopes, cursor, rejected) -> PollPage:
        return PollPage(envelopes=envelopes, cursor=copy.deepcopy(cursor), rejected=rejected)

    def _listing(self, path, params, broken: list[Rejected]) -> Iterator[list]:
        """``graph.pages``; a page without its data list ends the listing and is added to ``broken``."""
        try:
            yield from self.graph.pages(path, params)
        except MalformedPage as exc:
            broken.append(Rejected(reference=path[:200], reason=str(exc), raw=exc.body))

    def _backoff(self):
        """After a page is yielded: stop the poll while Meta says the app is near its limits."""
        if self.graph.usage >= USAGE_BACKOFF_PERCENT:
            retry_after = self.graph.regain_seconds or 300.0
            raise RateLimited(
                f"{self.product}: the app has used {self.graph.usage:.0f}% of a rate limit; polling waits "
                f"{retry_after:.0f}s",
                retry_after=retry_after,
            )

    def _poll_dms(self, cursor, start) -> Iterator[PollPage]:
        """Conversations newest first down to the mark, and each one's messages newest first down to the mark.
        The mark moves (to the newest message read) only after every page it covers was yielded; messages at
        exactly the mark are remembered by id, so a re-poll neither skips nor repeats them."""
        mark = Mark(cursor, "dm", start)
        broken: list[Rejected] = []
        params = {"platform": self.platform, "fields": "id,updated_time,participants", "limit": CONVERSATIONS_PAGE}
        for conversations in self._listing(f"{self.config['page_id']}/conversations", params, broken):
            rejected: list[Rejected] = []
            reached_mark = False
            wanted = []
            for conversation in conversations:
                try:
                    conversation_id = meta_id(as_dict(conversation, "conversation").get("id"), "conversation id")
                    updated = event_time(conversation.get("updated_time"))
                except BadItem as exc:
                    rejected.append(Rejected(reference="conversation", reason=str(exc), raw=conversation))
                    continue
                if updated < mark.since:
                    reached_mark = True
                    break
                wanted.append(conversation_id)
            if rejected:
                yield self._page([], cursor, rejected)
            for conversation_id in wanted:
                yield from self._poll_conversation(conversation_id, mark, cursor, broken)
            if reached_mark:
                break
        yield from self._finish(mark, cursor, broken)

    def _finish(self, mark, cursor, broken) -> Iterator[PollPage]:
        """The last page of a listing: the mark moves unless a broken page may have hidden something."""
        if not broken:
            mark.advance()
        yield self._page([], cursor, broken)

    def _poll_conversation(self, conversation_id, mark, cursor, broken) -> Iterator[PollPage]:
        params = {"fields": "id,message,from,to,created_time,attachments,sticker", "limit": MESSAGES_PAGE}
        for messages in self._listing(f"{conversation_id}/messages", params, broken):
            envelopes, rejected, reached_mark = [], [], False
            for message in messages:
                try:
                    message = as_dict(message, "message")
                    mid = message_id(message.get("id"))
                    created = event_time(message.get("created_time"))
                except BadItem as exc:
                    rejected.append(Rejected(reference=f"{conversation_id}:message", reason=str(exc), raw=message))
                    continue
                if created < mark.since:
                    reached_mark = True
                    break
                mark.saw(mid, created)
                if mark.seen_before(mid, created):
                    continue
                self._interpret(self._polled_dm, message, mid, envelopes, rejected)
            yield self._page(chronological(envelopes), cursor, rejected)
            self._backoff()
            if reached_mark:
                return

    def _polled_dm(self, message) -> list[Envelope]:
        author = as_dict(message.get("from"), "from")
        psid = meta_id(author.get("id"), "from.id")
        if psid in self.own_ids:
            return []  # our own replies, as the conversation lists them
        return [
            self._dm(
                psid,
                external_id=message_id(message.get("id")),
                kind=EnvelopeKind.MESSAGE,
                sent_at=event_time(message.get("created_time")),
                text=text_of(message.get("message"), "message"),
                sender=self._sender(psid, name=author.get("name"), username=author.get("username")),
                starts_thread=True,
                attachments=graph_attachments(message),
            )
        ]

    def _poll_comments(self, cursor, start) -> Iterator[PollPage]:
        """The comments on the ``poll_media`` most recent posts or media, newer than the mark (the same scheme as
        DMs). Comments come newest first on Facebook, so reading a post stops at the mark; Instagram nests replies
        under their comment, so every page of a media's comments is read."""
        mark = Mark(cursor, "comments", start)
        broken: list[Rejected] = []
        count = self.config.get("poll_media", DEFAULT_POLL_MEDIA)
        for media_id in self._recent_media(count, broken) if count else []:
            for comments in self._comment_pages(media_id, broken):
                envelopes, rejected, reached_mark = [], [], False
                for comment in comments:
                    try:
                        comment = as_dict(comment, "comment")
                        comment_id = meta_id(comment.get("id"), "comment id")
                        created = event_time(comment.get(self.comment_time_field))
                    except BadItem as exc:
                        rejected.append(Rejected(reference=f"{media_id}:comment", reason=str(exc), raw=comment))
                        continue
                    if created < mark.since:
                        reached_mark = self.comments_newest_first
                        if reached_mark:
                            break
                        continue
                    mark.saw(comment_id, created)
                    if mark.seen_before(comment_id, created):
                        continue
                    self._interpret(
                        lambda item, media_id=media_id: self._polled_comment(item, media_id),
                        comment,
                        comment_id,
                        envelopes,
                        rejected,
                    )
                yield self._page(chronological(envelopes), cursor, rejected)
                self._backoff()
                if reached_mark:
                    break
        yield from self._finish(mark, cursor, broken)

    comment_time_field = "created_time"
    comments_newest_first = True

    def _recent_media(self, count, broken: list[Rejected]) -> list[str]:
        """The ids of the ``count`` most recent posts or media."""
        raise NotImplementedError

    def _comment_pages(self, media_id, broken: list[Rejected]) -> Iterator[list]:
        """Pages of a post's or media's comments, replies included (flat, each naming its parent); a broken page
        ends them (``_listing``)."""
        raise NotImplementedError

    def _polled_comment(self, comment, media_id) -> list[Envelope]:
        raise NotImplementedError

    def _first_ids(self, path, params, count, broken: list[Rejected]) -> list[str]:
        """The first ``count`` well-formed ids of a paged edge (a Page's posts, an account's media)."""
        found: list[str] = []
        for page in self._listing(path, params, broken):
            for item in page:
                try:
                    found.append(meta_id(as_dict(item, "item").get("id"), "id"))
                except BadItem as exc:
                    logger.warning("%s: skipping an item of %s: %s", self.kind, path, exc)
                if len(found) >= count:
                    return found
        return found


class Mark:
    """A poll's high-water mark in the cursor: ``{prefix}_since`` (ISO time) and ``{prefix}_at_mark`` (the ids read
    at exactly that time). ``advance`` moves it to the newest item read; until then the cursor keeps the old one."""

    def __init__(self, cursor: dict, prefix: str, start: datetime):
        self.cursor, self.prefix = cursor, prefix
        try:
            self.since = datetime.fromisoformat(cursor[f"{prefix}_since"])
            if self.since.tzinfo is None:
                raise ValueError("no timezone")
        except (KeyError, TypeError, ValueError):
            self.since = start
        at_mark = cursor.get(f"{prefix}_at_mark")
        self.at_mark = set(at_mark) if isinstance(at_mark, list) else set()
        self.newest, self.newest_ids = self.since, set(self.at_mark)

    def seen_before(self, item_id: str, moment: datetime) -> bool:
        """Whether a previous poll already read this item (it sits exactly at the mark it left)."""
        return moment == self.since and item_id in self.at_mark

    def saw(self, item_id: str, moment: datetime) -> None:
        if moment > self.newest:
            self.newest, self.newest_ids = moment, {item_id}
        elif moment == self.newest:
            self.newest_ids.add(item_id)

    def advance(self) -> None:
        self.cursor[f"{self.prefix}_since"] = self.newest.isoformat()
        self.cursor[f"{self.prefix}_at_mark"] = sorted(self.newest_ids)
