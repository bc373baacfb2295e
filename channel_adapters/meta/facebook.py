"""A Facebook Page: Messenger DMs (``pages.PageAdapter``) and the comments on the Page's posts.

Comments arrive by the Page's ``feed`` webhook field (``changes[]``: ``item=comment``, verb add, edited or
remove) and are polled from the Page's recent posts (``GET /{post-id}/comments``, newest first). Likes,
reactions and posts on the feed carry nothing for a ticket and are acknowledged with a log line; the Page's own
comments (our public replies) are skipped. A public reply is a comment under the thread's first comment
(``POST /{comment-id}/comments``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ..base import EnvelopeKind, InboundAttachment, Sent
from .items import as_dict, event_time, file_name_and_type, mapping_in, meta_id, text_of
from .page_polling import COMMENTS_PAGE
from .pages import PageAdapter

logger = logging.getLogger(__name__)

COMMENT_FIELDS = "id,message,from,created_time,parent{id},attachment"


class FacebookAdapter(PageAdapter):
    """A Facebook Page's Messenger conversations and its posts' comments (config: ``pages.PageAdapter``)."""

    kind = "facebook"
    product = "Messenger"
    platform = "messenger"
    webhook_object = "page"
    max_reply_length = 8000
    dm_max_length = 2000
    comment_max_length = 8000
    #: "This message is sent outside of allowed window."
    window_subcodes = frozenset({2018278})
    id_fields = ("page_id",)
    media_noun = "posts"

    def check_credentials(self):
        page = self.graph.get(self.config["page_id"], {"fields": "id,name"})
        return {"page_id": str(page.get("id") or self.config["page_id"]), "page_name": str(page.get("name") or "")}

    # Comments -----------------------------------------------------------------

    def _change(self, change, entry):
        change = as_dict(change, "change")
        value = as_dict(change.get("value"), "value") if change.get("field") == "feed" else None
        if value is None:
            logger.info("facebook: ignoring webhook field %r", str(change.get("field"))[:60])
            return []
        item, verb = value.get("item"), value.get("verb")
        if item != "comment":
            # Likes, reactions, posts and shares on the Page's feed: nothing an agent answers.
            logger.info("facebook: ignoring a feed %s (%s)", str(item)[:40], str(verb)[:40])
            return []
        if verb not in ("add", "edited", "remove"):
            logger.info("facebook: ignoring a comment %s", str(verb)[:40])
            return []
        comment_id = meta_id(value.get("comment_id"), "comment_id")
        post_id = meta_id(value.get("post_id"), "post_id")
        parent = value.get("parent_id")
        parent_id = meta_id(parent, "parent_id") if parent is not None else post_id
        author = as_dict(value.get("from"), "from")
        author_id = meta_id(author.get("id"), "from.id")
        if author_id in self.own_ids:
            return []  # the Page's own comments: our public replies
        created = value.get("created_time")
        sent_at = event_time(created)
        common = {
            "comment_id": comment_id,
            "parent_id": None if parent_id == post_id else parent_id,
            "sent_at": sent_at,
            "author": self._sender(author_id, name=author.get("name")),
            "meta": {"comment_id": comment_id, "post_id": post_id},
        }
        if verb == "remove":
            return [self._comment(kind=EnvelopeKind.DELETE, **common)]
        text = text_of(value.get("message"), "message")
        if verb == "edited":
            return [self._comment(kind=EnvelopeKind.EDIT, text=text, change=str(created), **common)]
        photo = value.get("photo")
        files = ()
        if isinstance(photo, str) and photo.startswith(("http://", "https://")):
            name, content_type = file_name_and_type(photo, "image", 0)
            files = (InboundAttachment(name=name, content_type=content_type, size=0, ref=photo),)
        return [self._comment(kind=EnvelopeKind.MESSAGE, text=text, attachments=files, **common)]

    def _recent_media(self, count, broken):
        params = {"fields": "id,created_time", "limit": min(count, 25)}
        return self._first_ids(f"{self.config['page_id']}/posts", params, count, broken)

    def _comment_pages(self, media_id, broken):
        params = {
            "fields": COMMENT_FIELDS,
            "filter": "stream",  # replies too, in one flat list
            "order": "reverse_chronological",
            "limit": COMMENTS_PAGE,
        }
        yield from self._listing(f"{media_id}/comments", params, broken)

    def _polled_comment(self, comment, media_id):
        author = as_dict(comment.get("from"), "from")
        author_id = meta_id(author.get("id"), "from.id")
        if author_id in self.own_ids:
            return []
        comment_id = meta_id(comment.get("id"), "comment id")
        parent = comment.get("parent")
        parent_id = meta_id(as_dict(parent, "parent").get("id"), "parent.id") if parent is not None else None
        return [
            self._comment(
                kind=EnvelopeKind.MESSAGE,
                comment_id=comment_id,
                parent_id=parent_id,
                sent_at=event_time(comment.get("created_time")),
                author=self._sender(author_id, name=author.get("name")),
                text=text_of(comment.get("message"), "message"),
                meta={"comment_id": comment_id, "post_id": media_id},
                attachments=comment_attachment(comment.get("attachment")),
            )
        ]

    # Replies --------------------------------------------------------------------

    def _public_reply(self, target, text):
        top = self._thread_comment(target)
        answer = self.graph.post(f"{top}/comments", json_body={"message": text})
        return Sent(external_id=f"comment:{meta_id(answer.get('id'), 'comment id')}")

    def _find_public_reply(self, target, text, start):
        params = {"fields": "id,message,from,created_time", "order": "reverse_chronological", "limit": COMMENTS_PAGE}
        return self._own_comment_reply(f"{self._thread_comment(target)}/comments", params, "message", text, start)


def comment_attachment(attachment) -> tuple[InboundAttachment, ...]:
    """A polled comment's photo or sticker (``attachment.media.image.src``); links and the rest are left out."""
    if not isinstance(attachment, Mapping):
        return ()
    media = mapping_in(attachment.get("media"))
    image = mapping_in(media.get("image"))
    source = image.get("src")
    if not isinstance(source, str) or not source.startswith(("http://", "https://")):
        return ()
    name, content_type = file_name_and_type(source, "image", 0)
    return (InboundAttachment(name=name, content_type=content_type, size=0, ref=source),)
