"""An Instagram professional account (Instagram API with Facebook Login): DMs and the comments on its media.

DMs run on the Messenger Platform through the linked Page (``pages.PageAdapter``: Send API and Conversations
API with ``platform=instagram``). Instagram differs from Messenger in its limits (1,000 characters a DM, 2,200
a comment; images up to 8 MB, video and audio up to 25 MB, no other files), in unsending (``is_deleted``: a
deletion) and in its read reports (one message, not a watermark).

Comments arrive by the ``comments`` webhook field (an ``id``, ``text``, ``from``, ``media`` and, for a reply,
``parent_id``; the time is the entry's) and are polled from the account's recent media, where replies are
nested under their comment. Instagram comments are not edited; a deleted one is simply gone. A public reply is
``POST /{comment-id}/replies`` on the thread's first comment.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from ..base import AttachmentLimits, EnvelopeKind, PermanentError, Sent
from .items import as_dict, event_time, meta_id, text_of
from .page_polling import COMMENTS_PAGE
from .page_replies import MB
from .pages import PageAdapter

logger = logging.getLogger(__name__)

COMMENT_FIELDS = "id,text,timestamp,from{id,username},username,parent_id,replies{id,text,timestamp,from,username}"
IMAGE_MAX_BYTES = 8 * MB


class InstagramAdapter(PageAdapter):
    """Config: ``ig_user_id`` (the professional account) and ``page_id`` (its linked Page), and the rest of
    ``pages.PageAdapter``'s."""

    kind = "instagram"
    product = "Instagram"
    platform = "instagram"
    webhook_object = "instagram"
    max_reply_length = 2200
    dm_max_length = 1000
    comment_max_length = 2200
    dm_files = AttachmentLimits(
        max_files=10,
        max_bytes=25 * MB,
        by_type=(("image/", 8 * MB), ("video/", 25 * MB), ("audio/", 25 * MB)),
        other_types=False,
    )
    #: "This message is sent outside of allowed window."
    window_subcodes = frozenset({2534022})
    id_fields = ("ig_user_id", "page_id")
    media_noun = "media"
    profile_fields = "name,username"
    comment_time_field = "timestamp"
    #: Replies are nested under their comment, which may be old: every page of a media's comments is read.
    comments_newest_first = False

    def check_credentials(self):
        account = self.graph.get(self.config["ig_user_id"], {"fields": "id,username,name"})
        return {
            "ig_user_id": str(account.get("id") or self.config["ig_user_id"]),
            "username": str(account.get("username") or ""),
        }

    def _is_own(self, author) -> bool:
        username = self.state.get("username")
        return str(author.get("id")) in self.own_ids or bool(username and author.get("username") == username)

    # Comments -----------------------------------------------------------------

    def _change(self, change, entry):
        change = as_dict(change, "change")
        if change.get("field") not in ("comments", "live_comments"):
            logger.info("instagram: ignoring webhook field %r", str(change.get("field"))[:60])
            return []
        value = as_dict(change.get("value"), "value")
        comment_id = meta_id(value.get("id"), "comment id")
        author = as_dict(value.get("from"), "from")
        author_id = meta_id(author.get("id"), "from.id")
        if self._is_own(author):
            return []  # the account's own comments: our public replies
        media = value.get("media")
        media_id = meta_id(as_dict(media, "media").get("id"), "media.id") if media is not None else ""
        parent = value.get("parent_id")
        return [
            self._comment(
                kind=EnvelopeKind.MESSAGE,
                comment_id=comment_id,
                parent_id=meta_id(parent, "parent_id") if parent is not None else None,
                # The change carries no time of its own; the entry's is when Meta sent it, moments later.
                sent_at=event_time(entry.get("time")),
                author=self._sender(author_id, username=author.get("username")),
                text=text_of(value.get("text")),
                meta={"comment_id": comment_id, "media_id": media_id},
            )
        ]

    def _recent_media(self, count, broken):
        params = {"fields": "id,timestamp", "limit": min(count, 25)}
        return self._first_ids(f"{self.config['ig_user_id']}/media", params, count, broken)

    def _comment_pages(self, media_id, broken) -> Iterator[list]:
        params = {"fields": COMMENT_FIELDS, "limit": COMMENTS_PAGE}
        for page in self._listing(f"{media_id}/comments", params, broken):
            flat = []
            for comment in page:
                flat.append(comment)
                replies = comment.get("replies") if isinstance(comment, dict) else None
                items = replies.get("data") if isinstance(replies, dict) else None
                for reply in items if isinstance(items, list) else []:
                    # A reply names its parent only by where it is nested.
                    flat.append({**reply, "parent_id": comment.get("id")} if isinstance(reply, dict) else reply)
            yield flat

    def _polled_comment(self, comment, media_id):
        author = comment.get("from")
        author = as_dict(author, "from") if author is not None else {}
        if self._is_own({**author, "username": author.get("username") or comment.get("username")}):
            return []
        author_id = meta_id(author.get("id"), "from.id")
        comment_id = meta_id(comment.get("id"), "comment id")
        parent = comment.get("parent_id")
        return [
            self._comment(
                kind=EnvelopeKind.MESSAGE,
                comment_id=comment_id,
                parent_id=meta_id(parent, "parent_id") if parent is not None else None,
                sent_at=event_time(comment.get("timestamp")),
                author=self._sender(author_id, username=author.get("username") or comment.get("username")),
                text=text_of(comment.get("text")),
                meta={"comment_id": comment_id, "media_id": media_id},
            )
        ]

    # Replies --------------------------------------------------------------------

    def _public_reply(self, target, text):
        answer = self.graph.post(f"{self._thread_comment(target)}/replies", json_body={"message": text})
        return Sent(external_id=f"comment:{meta_id(answer.get('id'), 'comment id')}")

    def _find_public_reply(self, target, text, start):
        params = {"fields": "id,text,from,username,timestamp", "limit": COMMENTS_PAGE}
        return self._own_comment_reply(f"{self._thread_comment(target)}/replies", params, "text", text, start)

    def _attachment_type(self, file):
        kind = file.content_type.split("/", 1)[0]
        if kind not in ("image", "video", "audio"):
            raise PermanentError(f"Instagram DMs take images, video and audio only; {file.name} was not sent.")
        if kind == "image" and len(file.data) > IMAGE_MAX_BYTES:
            raise PermanentError(f"{file.name} is larger than Instagram's 8 MB for an image; it was not sent.")
        return super()._attachment_type(file)
