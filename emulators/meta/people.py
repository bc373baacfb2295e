"""What simulated people do: write DMs, comment, send WhatsApp messages, react, edit, unsend.

Each action changes the store and pushes the webhook Meta would send to the account's URL.
``at`` (Unix seconds) backdates an action, so a test can put a message outside a reply window.
"""

import mimetypes
import urllib.parse

from . import payloads
from .store import Account, Attachment, Comment, Message, Person, Post, Store, WhatsAppMessage, now
from .webhooks import WebhookPusher

CDN_PREFIX = "/cdn/"
WHATSAPP_MEDIA_PREFIX = "/whatsapp_business/attachments/"
DM_ATTACHMENT_TYPES = ("image", "video", "audio", "file")
WHATSAPP_MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")


class PersonError(ValueError):
    """A control request that makes no sense (unknown account, post or message): answered 400/404."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class People:
    def __init__(self, store: Store, pusher: WebhookPusher):
        self.store = store
        self.pusher = pusher
        self.base_url = ""  # the emulator's URL, for the attachment URLs it serves

    # -- helpers ------------------------------------------------------------------------------

    def _account(self, account_id: str, *kinds: str) -> Account:
        account = self.store.accounts.get(str(account_id))
        if account is None or account.kind not in kinds:
            raise PersonError(f"no {' or '.join(kinds)} account {account_id}", 404)
        return account

    def _push(self, account: Account, body: dict) -> str:
        return self.pusher.publish(account.id, body)

    def file_url(self, file_id: str, filename: str) -> str:
        return f"{self.base_url}{CDN_PREFIX}{file_id}/{urllib.parse.quote(filename or 'file')}"

    def whatsapp_media_url(self, file_id: str) -> str:
        return f"{self.base_url}{WHATSAPP_MEDIA_PREFIX}?mid={file_id}&source=getMedia"

    # -- Messenger and Instagram DMs ----------------------------------------------------------

    def dm(
        self,
        account_id: str,
        text: str = "",
        sender_id: str | None = None,
        name: str | None = None,
        username: str | None = None,
        attachments: list[dict] = (),
        at: float | None = None,
    ) -> dict:
        """A person writes to a Page (Messenger) or an Instagram account; ``attachments``: [{"type"?,
        "content": bytes, "mime_type"?, "filename"?}] served at a public CDN-like URL."""
        if not text and not attachments:
            raise PersonError("a DM needs text or attachments")
        with self.store.lock:
            account = self._account(account_id, "page", "instagram")
            person = self.store.person(account, sender_id, name, username)
            conversation = self.store.conversation(account, person)
            created = now() if at is None else float(at)
            files = []
            for item in attachments:
                mime = item.get("mime_type") or mimetypes.guess_type(item.get("filename") or "")[0]
                mime = mime or "application/octet-stream"
                file = self.store.add_file(account.id, item["content"], mime, item.get("filename") or "")
                kind = item.get("type") or _dm_type(mime)
                if kind not in DM_ATTACHMENT_TYPES:
                    raise PersonError(f"attachment type must be one of {DM_ATTACHMENT_TYPES}")
                files.append(Attachment(kind, self.file_url(file.id, file.filename), file))
            message = Message(
                self.store.new_mid(account.kind),
                conversation.id,
                person.id,
                account.id,
                text,
                created,
                from_business=False,
                attachments=files,
            )
            self.store.add_message(conversation, message)
            conversation.last_inbound = max(conversation.last_inbound or 0.0, created)
            push_id = self._push(account, payloads.dm_message(account, message))
            return {
                "mid": message.id,
                "sender_id": person.id,
                "conversation_id": conversation.id,
                "timestamp": created,
                "attachment_urls": [a.url for a in files],
                "push_id": push_id,
            }

    def _person_message(self, account_id: str, mid: str) -> tuple[Account, Message]:
        account = self._account(account_id, "page", "instagram")
        kind, message = self.store.objects.get(mid, (None, None))
        if kind != "message" or message.to_id != account.id or message.from_business:
            raise PersonError(f"no message {mid} from a person to {account_id}", 404)
        return account, message

    def edit_dm(self, account_id: str, mid: str, text: str) -> dict:
        """The person edits their message (Messenger ``message_edits``; Instagram sends the same event)."""
        with self.store.lock:
            account, message = self._person_message(account_id, mid)
            message.text = text
            message.num_edit += 1
            push_id = self._push(account, payloads.dm_edit(account, message, now()))
            return {"mid": mid, "num_edit": message.num_edit, "push_id": push_id}

    def unsend_dm(self, account_id: str, mid: str) -> dict:
        """The person unsends their message (Instagram ``message.is_deleted``; Messenger has no such event)."""
        with self.store.lock:
            account, message = self._person_message(account_id, mid)
            if account.kind != "instagram":
                raise PersonError("only Instagram tells a business about unsent messages")
            message.deleted = True
            return {"mid": mid, "push_id": self._push(account, payloads.dm_unsend(account, message, now()))}

    def react(self, account_id: str, mid: str, sender_id: str, emoji: str = "❤️", remove: bool = False) -> dict:
        """The person reacts to a message of the conversation (usually the business's) or removes the reaction."""
        with self.store.lock:
            account = self._account(account_id, "page", "instagram")
            kind, message = self.store.objects.get(mid, (None, None))
            person = self.store.known_person(account.id, sender_id)
            if (
                kind != "message"
                or person is None
                or message.conversation_id != self.store.conversation(account, person).id
            ):
                raise PersonError(f"no message {mid} in {sender_id}'s conversation with {account_id}", 404)
            action = "unreact" if remove else "react"
            body = payloads.dm_reaction(account, person.id, mid, emoji, action, now())
            return {"mid": mid, "push_id": self._push(account, body)}

    # -- posts and comments -------------------------------------------------------------------

    def add_post(self, account_id: str, text: str = "", at: float | None = None) -> dict:
        """The business publishes a Page post or an Instagram media item (people comment on it)."""
        with self.store.lock:
            account = self._account(account_id, "page", "instagram")
            number = self.store.new_number()
            post_id = f"{account.id}_{number}" if account.kind == "page" else number
            post = Post(post_id, account.id, text, now() if at is None else float(at))
            self.store.posts[post.id] = post
            self.store.register(post.id, "post" if account.kind == "page" else "ig_media", post)
            return {"id": post.id, "account_id": account.id, "created": post.created}

    def comment(
        self,
        account_id: str,
        post_id: str,
        text: str,
        sender_id: str | None = None,
        name: str | None = None,
        username: str | None = None,
        parent_id: str | None = None,
        at: float | None = None,
    ) -> dict:
        """A person comments on a post/media item, or replies to a comment (``parent_id``)."""
        with self.store.lock:
            account = self._account(account_id, "page", "instagram")
            post = self.store.posts.get(str(post_id))
            if post is None or post.account_id != account.id:
                raise PersonError(f"no post or media {post_id} of {account_id}", 404)
            parent = self._top_level(parent_id, post) if parent_id else None
            person = self.store.person(account, sender_id, name, username)
            created = now() if at is None else float(at)
            comment = self._new_comment(account, post, person.id, text, created, parent)
            if account.kind == "page":
                body = payloads.feed_comment(account, comment, person, "add", created)
            else:
                body = payloads.instagram_comment(account, comment, person)
            push_id = self._push(account, body)
            return {
                "comment_id": comment.id,
                "post_id": post.id,
                "parent_id": comment.parent_id,
                "sender_id": person.id,
                "timestamp": created,
                "push_id": push_id,
            }

    def _top_level(self, comment_id: str, post: Post) -> Comment:
        """The thread a reply joins: Facebook and Instagram keep comments two levels deep."""
        parent = self.store.comments.get(str(comment_id))
        if parent is None or parent.post_id != post.id:
            raise PersonError(f"no comment {comment_id} on {post.id}", 404)
        return self.store.comments[parent.parent_id] if parent.parent_id else parent

    def _new_comment(
        self,
        account: Account,
        post: Post,
        author_id: str,
        text: str,
        created: float,
        parent: Comment | None,
        from_business: bool = False,
    ) -> Comment:
        number = self.store.new_number()
        comment_id = f"{post.id.rsplit('_', 1)[-1]}_{number}" if account.kind == "page" else number
        comment = Comment(
            comment_id,
            account.id,
            post.id,
            author_id,
            text,
            created,
            parent_id=parent.id if parent else None,
            from_business=from_business,
        )
        self.store.comments[comment.id] = comment
        self.store.register(comment.id, "comment", comment)
        return comment

    def edit_comment(self, account_id: str, comment_id: str, text: str) -> dict:
        """The person edits their Page comment (feed ``verb: edited``)."""
        with self.store.lock:
            account, comment, person = self._person_comment(account_id, comment_id)
            comment.text = text
            body = payloads.feed_comment(account, comment, person, "edited", now())
            return {"comment_id": comment.id, "push_id": self._push(account, body)}

    def remove_comment(self, account_id: str, comment_id: str) -> dict:
        """The person deletes their Page comment (feed ``verb: remove``)."""
        with self.store.lock:
            account, comment, person = self._person_comment(account_id, comment_id)
            comment.removed = True
            body = payloads.feed_comment(account, comment, person, "remove", now())
            return {"comment_id": comment.id, "push_id": self._push(account, body)}

    def _person_comment(self, account_id: str, comment_id: str) -> tuple[Account, Comment, Person]:
        account = self._account(account_id, "page")  # Instagram sends no webhook for edits or deletions
        comment = self.store.comments.get(str(comment_id))
        if comment is None or comment.account_id != account.id or comment.from_business or comment.removed:
            raise PersonError(f"no comment {comment_id} by a person on {account_id}", 404)
        return account, comment, self.store.known_person(account.id, comment.author_id)

    # -- WhatsApp -----------------------------------------------------------------------------

    def whatsapp(
        self,
        account_id: str,
        wa_id: str | None = None,
        name: str | None = None,
        type: str = "text",
        text: str = "",
        content: bytes | None = None,
        mime_type: str | None = None,
        filename: str | None = None,
        caption: str | None = None,
        voice: bool = False,
        reply_to: str | None = None,
        at: float | None = None,
    ) -> dict:
        """A person sends the number a message: ``text``, or media (``image``, ``audio`` (``voice`` for a voice
        note), ``video``, ``document``, ``sticker``) whose ``content`` the business downloads by media id."""
        with self.store.lock:
            account = self._account(account_id, "whatsapp")
            person = self.store.person(account, wa_id, name, None)
            created = now() if at is None else float(at)
            message: dict = {}
            if reply_to:
                message["context"] = {"from": account.display_phone_number, "id": reply_to}
            message.update({"from": person.id, "id": self.store.new_wamid(), "timestamp": str(int(created))})
            if type == "text":
                if not text:
                    raise PersonError("a text message needs text")
                content_key = {"body": text}
            elif type in WHATSAPP_MEDIA_TYPES:
                if content is None:
                    raise PersonError(f"a {type} message needs content")
                mime = mime_type or _whatsapp_mime(type, voice, filename)
                file = self.store.add_file(account.id, content, mime, filename or "")
                content_key = {"mime_type": mime, "sha256": file.sha256, "id": file.id}
                if type == "document":
                    content_key = {"filename": filename or "document", **content_key}
                if caption and type in ("image", "video", "document"):
                    content_key = {"caption": caption, **content_key}
                if type == "audio" and voice:
                    content_key["voice"] = True
            else:
                raise PersonError(f"type must be text or one of {WHATSAPP_MEDIA_TYPES}")
            if type == "text":
                message["text"] = content_key
                message["type"] = "text"
            else:
                message["type"] = type
                message[type] = content_key
            return self._whatsapp_push(account, person, message, created)

    def _whatsapp_push(
        self, account: Account, person: Person, message: dict, created: float, opens_window=True
    ) -> dict:
        stored = WhatsAppMessage(
            message["id"], account.id, person.id, True, message["type"], message.get(message["type"], {}), created
        )
        self.store.whatsapp_messages[stored.id] = stored
        if opens_window:
            key = (account.id, person.id)
            self.store.whatsapp_inbound[key] = max(self.store.whatsapp_inbound.get(key, 0.0), created)
        push_id = self._push(account, payloads.whatsapp_message(account, person, message))
        media = message.get(message["type"], {})
        return {
            "wamid": stored.id,
            "wa_id": person.id,
            "media_id": media.get("id"),
            "timestamp": created,
            "push_id": push_id,
        }

    def _whatsapp_target(self, account: Account, wa_id: str, wamid: str) -> Person:
        person = self.store.known_person(account.id, wa_id)
        message = self.store.whatsapp_messages.get(wamid)
        if person is None or message is None or message.wa_id != person.id or message.account_id != account.id:
            raise PersonError(f"no message {wamid} between {wa_id} and {account.id}", 404)
        return person

    def whatsapp_react(self, account_id: str, wa_id: str, wamid: str, emoji: str = "👍") -> dict:
        """A reaction to a message (``emoji=""`` removes it), as webhook__reaction*.json."""
        with self.store.lock:
            account = self._account(account_id, "whatsapp")
            person = self._whatsapp_target(account, wa_id, wamid)
            created = now()
            message = {
                "from": person.id,
                "id": self.store.new_wamid(),
                "timestamp": str(int(created)),
                "type": "reaction",
                "reaction": {"message_id": wamid, "emoji": emoji},
            }
            return self._whatsapp_push(account, person, message, created, opens_window=bool(emoji))

    def whatsapp_edit(self, account_id: str, wa_id: str, wamid: str, text: str) -> dict:
        """The person edits their text message (``type: edit``)."""
        with self.store.lock:
            account = self._account(account_id, "whatsapp")
            person = self._whatsapp_target(account, wa_id, wamid)
            original = self.store.whatsapp_messages[wamid]
            if not original.inbound:
                raise PersonError("people edit only their own messages")
            original.content = {"body": text}
            created = now()
            edit = {"original_message_id": wamid, "message": {"type": "text", "text": {"body": text}}}
            message = {
                "from": person.id,
                "id": self.store.new_wamid(),
                "timestamp": str(int(created)),
                "type": "edit",
                "edit": edit,
            }
            return self._whatsapp_push(account, person, message, created, opens_window=False)

    def whatsapp_revoke(self, account_id: str, wa_id: str, wamid: str) -> dict:
        """The person deletes their message for everyone (``type: revoke``)."""
        with self.store.lock:
            account = self._account(account_id, "whatsapp")
            person = self._whatsapp_target(account, wa_id, wamid)
            if not self.store.whatsapp_messages[wamid].inbound:
                raise PersonError("people revoke only their own messages")
            created = now()
            message = {
                "from": person.id,
                "id": self.store.new_wamid(),
                "timestamp": str(int(created)),
                "type": "revoke",
                "revoke": {"original_message_id": wamid},
            }
            return self._whatsapp_push(account, person, message, created, opens_window=False)


def _dm_type(mime: str) -> str:
    family = mime.split("/", 1)[0]
    return family if family in ("image", "video", "audio") else "file"


def _whatsapp_mime(type_: str, voice: bool, filename: str | None) -> str:
    if type_ == "audio":
        return "audio/ogg; codecs=opus" if voice else "audio/mpeg"
    guessed = mimetypes.guess_type(filename or "")[0]
    defaults = {"image": "image/jpeg", "video": "video/mp4", "document": "application/pdf", "sticker": "image/webp"}
    return guessed or defaults[type_]
