"""Graph reads: objects as Graph renders them, ``fields`` selection, cursor paging, and the read edges.

``fields`` is honoured at every level (``from{id,username}``, ``replies{id,text}``); ``.limit()`` and other
modifiers are ignored. Without ``fields`` an object shows Graph's default fields. Lists page with opaque
cursors (``paging.cursors.before/after``) and an absolute ``paging.next`` URL while more remain.
"""

import base64
import re
import urllib.parse
from dataclasses import dataclass

from .errors import GraphError, invalid_parameter
from .store import Account, Comment, Conversation, Message, Person, Post, Store, StoredFile, Template, iso

DEFAULT_LIMIT = 25
MAX_LIMIT = 100


@dataclass
class Request:
    """One Graph call as the handlers see it."""

    verb: str
    path: str  # /v25.0/...
    params: dict
    files: dict  # multipart uploads: name -> (filename, content type, bytes)
    base_url: str  # the emulator's URL
    token: str
    kind: str = ""  # the kind of the object the path names


# -- fields ------------------------------------------------------------------------------------------


def parse_fields(spec: str) -> dict[str, str | None]:
    """``"id,from{id,name},attachments.limit(5){url}"`` -> {"id": None, "from": "id,name", "attachments": "url"}."""
    fields: dict[str, str | None] = {}
    depth, current = 0, ""
    for char in spec + ",":
        if char == "," and depth == 0:
            item = current.strip()
            current = ""
            match = re.match(r"\w+", item)
            if match:
                sub = item[item.index("{") + 1 : item.rindex("}")] if "{" in item and "}" in item else None
                fields[match.group()] = sub
            continue
        depth += char in "{("
        depth -= char in "})"
        current += char
    return fields


def select(full: dict, spec: str | None, default: tuple[str, ...] = ()) -> dict:
    wanted = parse_fields(spec) if spec else dict.fromkeys(default)
    if "id" in full:
        wanted.setdefault("id", None)
    selected = {}
    for name, sub in wanted.items():
        if name in full:
            selected[name] = _narrow(full[name], sub) if sub else full[name]
    return selected


def _narrow(value, spec: str):
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        return {**value, "data": [select(item, spec) if isinstance(item, dict) else item for item in value["data"]]}
    return select(value, spec) if isinstance(value, dict) else value


# -- paging --------------------------------------------------------------------------------------------


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, number = text.partition(":")
        if kind != "offset" or not number.isdigit():
            raise ValueError(text)
        return int(number)
    except ValueError:
        raise invalid_parameter("The cursor is not valid") from None


def paged(request: Request, items: list[dict]) -> dict:
    """One page of ``items`` (already rendered and ordered) with Graph's cursor paging."""
    try:
        limit = min(max(int(request.params.get("limit", DEFAULT_LIMIT)), 1), MAX_LIMIT)
    except ValueError:
        raise invalid_parameter("Param limit must be an integer") from None
    offset = 0
    if request.params.get("after"):
        offset = _offset(request.params["after"])
    elif request.params.get("before"):
        offset = max(_offset(request.params["before"]) - limit, 0)
    chunk = items[offset : offset + limit]
    body: dict = {"data": chunk}
    if not chunk:
        return body
    paging: dict = {"cursors": {"before": _cursor(offset), "after": _cursor(offset + len(chunk))}}
    kept = {k: v for k, v in request.params.items() if k not in ("after", "before", "access_token")}
    if offset + len(chunk) < len(items):
        query = urllib.parse.urlencode({**kept, "limit": limit, "after": _cursor(offset + len(chunk))})
        paging["next"] = f"{request.base_url}{request.path}?{query}"
    if offset > 0:
        query = urllib.parse.urlencode({**kept, "limit": limit, "before": _cursor(offset)})
        paging["previous"] = f"{request.base_url}{request.path}?{query}"
    body["paging"] = paging
    return body


# -- renderers -----------------------------------------------------------------------------------------


class Renderer:
    """Full Graph representations; ``select`` then keeps the requested fields."""

    def __init__(self, store: Store):
        self.store = store

    def actor(self, account: Account, actor_id: str) -> dict:
        """``from``/participant: Messenger shows name and a proxy email, Instagram the username."""
        if actor_id == account.id:
            name, username = account.name, account.username
        else:
            person = self.store.known_person(account.id, actor_id)
            name, username = (person.name, person.username) if person else ("", "")
        if account.kind == "instagram":
            return {"username": username, "id": actor_id}
        return {"name": name, "email": f"{actor_id}@facebook.com", "id": actor_id}

    def person(self, person: Person) -> dict:
        """A person's profile as the account sees it (Messenger's first and last name, Instagram's username)."""
        first, _, last = person.name.partition(" ")
        profile = {"id": person.id, "name": person.name, "first_name": first, "last_name": last}
        if self.store.accounts[person.account_id].kind == "instagram":
            profile["username"] = person.username
        return profile

    def account(self, account: Account) -> dict:
        if account.kind == "page":
            data = {"id": account.id, "name": account.name, "category": "Software"}
            linked = self.store.instagram_of(account.id)
            if linked is not None:
                data["instagram_business_account"] = {"id": linked.id}
            return data
        if account.kind == "instagram":
            return {
                "id": account.id,
                "username": account.username,
                "name": account.name,
                "media_count": len([p for p in self.store.posts.values() if p.account_id == account.id]),
            }
        return {
            "verified_name": account.name,
            "code_verification_status": "VERIFIED",
            "display_phone_number": account.display_phone_number,
            "quality_rating": "GREEN",
            "platform_type": "CLOUD_API",
            "throughput": {"level": "STANDARD"},
            "id": account.id,
        }

    def waba(self, waba_id: str) -> dict:
        numbers = self.store.waba_numbers(waba_id)
        name = numbers[0].name if numbers else ""
        return {"id": waba_id, "name": name, "timezone_id": "1", "message_template_namespace": f"ns_{waba_id}"}

    def conversation(self, conversation: Conversation) -> dict:
        account = self.store.accounts[conversation.account_id]
        visible = [m for m in conversation.messages if not m.deleted]
        people = [self.actor(account, conversation.person_id), self.actor(account, account.id)]
        return {
            "id": conversation.id,
            "updated_time": iso(conversation.updated),
            "link": f"/{account.id}/inbox/{conversation.id}/",
            "message_count": len(visible),
            "unread_count": 0,
            "snippet": visible[-1].text[:100] if visible else "",
            "participants": {"data": people},
            "senders": {"data": people},
            "can_reply": True,
        }

    def message(self, message: Message) -> dict:
        _, conversation = self.store.objects[message.conversation_id]
        account = self.store.accounts[conversation.account_id]
        data = {
            "id": message.id,
            "created_time": iso(message.created),
            "from": self.actor(account, message.from_id),
            "to": {"data": [self.actor(account, message.to_id)]},
            "message": message.text,
        }
        if message.attachments:
            data["attachments"] = {"data": [self._attachment(message, n, a) for n, a in enumerate(message.attachments)]}
        return data

    @staticmethod
    def _attachment(message: Message, number: int, attachment) -> dict:
        file: StoredFile | None = attachment.file
        data = {
            "id": file.id if file else f"{message.id[-12:]}{number}",
            "mime_type": file.mime_type if file else "",
            "name": (file.filename if file else "") or f"{attachment.type}-{number}",
            "size": len(file.data) if file else 0,
        }
        if attachment.type == "image":
            data["image_data"] = {
                "width": 1,
                "height": 1,
                "max_width": 1,
                "max_height": 1,
                "url": attachment.url,
                "preview_url": attachment.url,
                "image_type": 1,
                "render_as_sticker": False,
            }
        elif attachment.type == "video":
            data["video_data"] = {
                "width": 1,
                "height": 1,
                "length": 1,
                "url": attachment.url,
                "preview_url": attachment.url,
            }
        else:
            data["file_url"] = attachment.url
        return data

    def post(self, post: Post) -> dict:
        account = self.store.accounts[post.account_id]
        if account.kind == "instagram":
            return {
                "id": post.id,
                "timestamp": iso(post.created),
                "caption": post.text,
                "media_type": "IMAGE",
                "media_product_type": "FEED",
                "permalink": f"https://www.instagram.com/p/{post.id}/",
                "username": account.username,
                "comments_count": len(self._comments(post.id, top_level=False)),
            }
        number = post.id.rsplit("_", 1)[-1]
        return {
            "id": post.id,
            "created_time": iso(post.created),
            "message": post.text,
            "from": {"name": account.name, "id": account.id},
            "permalink_url": f"https://www.facebook.com/{account.id}/posts/{number}/",
        }

    def _comments(self, post_id: str, top_level: bool) -> list[Comment]:
        return [
            c
            for c in self.store.comments.values()
            if c.post_id == post_id and not c.removed and (not top_level or c.parent_id is None)
        ]

    def replies(self, comment: Comment) -> list[Comment]:
        replies = [c for c in self.store.comments.values() if c.parent_id == comment.id and not c.removed]
        return sorted(replies, key=lambda c: c.created)

    def comment(self, comment: Comment) -> dict:
        account = self.store.accounts[comment.account_id]
        if account.kind == "instagram":
            author = self.actor(account, comment.author_id)
            data = {
                "id": comment.id,
                "text": comment.text,
                "timestamp": iso(comment.created),
                "from": {"id": comment.author_id, "username": author["username"]},
                "username": author["username"],
                "media": {"id": comment.post_id},
                "like_count": 0,
                "hidden": False,
            }
            if comment.parent_id:
                data["parent_id"] = comment.parent_id
            else:
                data["replies"] = {"data": [self._reply_summary(reply) for reply in self.replies(comment)]}
            return data
        author = self.actor(account, comment.author_id)
        number = comment.post_id.rsplit("_", 1)[-1]
        data = {
            "id": comment.id,
            "created_time": iso(comment.created),
            "from": {"name": author["name"], "id": comment.author_id},
            "message": comment.text,
            "can_reply_privately": not comment.from_business and comment.private_reply_id is None,
            "comment_count": len(self.replies(comment)),
            "like_count": 0,
            "is_hidden": False,
            "permalink_url": f"https://www.facebook.com/{account.id}/posts/{number}/?comment_id={comment.id.rsplit('_', 1)[-1]}",
        }
        if comment.parent_id:
            data["parent"] = {"id": comment.parent_id, "message": self.store.comments[comment.parent_id].text}
        if comment.attachment_url:
            data["attachment"] = {
                "type": "photo",
                "url": comment.attachment_url,
                "media": {"image": {"src": comment.attachment_url, "height": 1, "width": 1}},
            }
        return data

    def _reply_summary(self, reply: Comment) -> dict:
        full = self.comment(reply)
        return {key: full[key] for key in ("timestamp", "text", "id", "from", "username", "parent_id")}

    def media_file(self, file: StoredFile, url: str) -> dict:
        return {
            "messaging_product": "whatsapp",
            "url": url,
            "mime_type": file.mime_type,
            "sha256": file.sha256,
            "file_size": len(file.data),
            "id": file.id,
        }


# -- read edges ----------------------------------------------------------------------------------------

CONVERSATION_DEFAULT = ("id", "updated_time")
MESSAGE_DEFAULT = ("id", "created_time")
POST_DEFAULT = ("created_time", "message", "id")
MEDIA_DEFAULT = ("id",)
FB_COMMENT_DEFAULT = ("created_time", "from", "message", "id")
IG_COMMENT_DEFAULT = ("timestamp", "text", "id")
PERSON_DEFAULT = ("first_name", "last_name", "id")


class GraphReads:
    def __init__(self, store: Store, renderer: Renderer):
        self.store = store
        self.render = renderer

    def conversations(self, request: Request, account: Account) -> dict:
        """``/{page-id}/conversations?platform=messenger|instagram&user_id=`` (or ``/{ig-user-id}/conversations``)."""
        platform = request.params.get("platform", "messenger" if account.kind == "page" else "instagram")
        if platform not in ("messenger", "instagram"):
            raise invalid_parameter("platform must be one of {messenger, instagram}")
        target = account
        if account.kind == "page" and platform == "instagram":
            target = self.store.instagram_of(account.id)
            if target is None:
                raise invalid_parameter("This Page has no connected Instagram account", subcode=2534001)
        elif account.kind == "instagram" and platform != "instagram":
            raise invalid_parameter("An Instagram account has Instagram conversations only")
        found = [c for c in self.store.conversations.values() if c.account_id == target.id]
        if request.params.get("user_id"):
            found = [c for c in found if c.person_id == request.params["user_id"]]
        found.sort(key=lambda c: c.updated, reverse=True)
        spec = request.params.get("fields")
        return paged(request, [select(self.render.conversation(c), spec, CONVERSATION_DEFAULT) for c in found])

    def conversation_messages(self, request: Request, conversation: Conversation) -> dict:
        messages = sorted((m for m in conversation.messages if not m.deleted), key=lambda m: m.created, reverse=True)
        spec = request.params.get("fields")
        return paged(request, [select(self.render.message(m), spec, MESSAGE_DEFAULT) for m in messages])

    def posts(self, request: Request, account: Account) -> dict:
        """``/{page-id}/posts`` (also ``feed``, ``published_posts``) and ``/{ig-user-id}/media``: newest first."""
        posts = sorted(
            (p for p in self.store.posts.values() if p.account_id == account.id), key=lambda p: p.created, reverse=True
        )
        default = POST_DEFAULT if account.kind == "page" else MEDIA_DEFAULT
        spec = request.params.get("fields")
        return paged(request, [select(self.render.post(p), spec, default) for p in posts])

    def comments(self, request: Request, parent) -> dict:
        """Comments of a post or media item, or replies to a comment.

        Facebook ``/{post}/comments``: ``filter=toplevel`` (default) or ``stream`` (replies too, flat),
        ``order=chronological`` (default) or ``reverse_chronological``; ``/{comment}/comments``: its replies.
        Instagram ``/{media}/comments``: top-level comments, newest first; ``/{comment}/replies``: oldest first.
        """
        account = self.store.accounts[parent.account_id]
        if isinstance(parent, Comment):
            found = self.render.replies(parent)
        elif account.kind == "instagram":
            found = sorted(self.render._comments(parent.id, top_level=True), key=lambda c: c.created, reverse=True)
        else:
            stream = request.params.get("filter") == "stream"
            found = sorted(self.render._comments(parent.id, top_level=not stream), key=lambda c: c.created)
            if request.params.get("order") == "reverse_chronological":
                found.reverse()
        default = FB_COMMENT_DEFAULT if account.kind == "page" else IG_COMMENT_DEFAULT
        spec = request.params.get("fields")
        return paged(request, [select(self.render.comment(c), spec, default) for c in found])

    def templates(self, request: Request, waba_id: str) -> dict:
        found: list[Template] = [t for t in self.store.templates if t.waba_id == waba_id]
        for name in ("status", "name", "language", "category"):
            if request.params.get(name):
                found = [t for t in found if getattr(t, name).lower() == request.params[name].lower()]
        spec = request.params.get("fields")
        return paged(
            request, [select(t.render(), spec, ("name", "components", "language", "status", "category")) for t in found]
        )

    def phone_numbers(self, request: Request, waba_id: str) -> dict:
        numbers = [self.render.account(a) for a in self.store.waba_numbers(waba_id)]
        return paged(request, [select(n, request.params.get("fields"), tuple(n)) for n in numbers])

    def object(self, request: Request, kind: str, obj) -> dict:
        """``GET /{id}`` for any object."""
        spec = request.params.get("fields")
        if kind in ("page", "instagram", "whatsapp"):
            full = self.render.account(obj)
            default = {"page": ("name", "id"), "instagram": ("id",), "whatsapp": tuple(full)}[kind]
            return select(full, spec, default)
        if kind == "waba":
            return select(self.render.waba(obj), spec, ("id", "name"))
        if kind == "conversation":
            return select(self.render.conversation(obj), spec, CONVERSATION_DEFAULT)
        if kind == "message":
            return select(self.render.message(obj), spec, MESSAGE_DEFAULT)
        if kind in ("post", "ig_media"):
            return select(self.render.post(obj), spec, POST_DEFAULT if kind == "post" else MEDIA_DEFAULT)
        if kind == "comment":
            page = self.store.accounts[obj.account_id].kind == "page"
            return select(self.render.comment(obj), spec, FB_COMMENT_DEFAULT if page else IG_COMMENT_DEFAULT)
        if kind == "person":
            return select(self.render.person(obj), spec, PERSON_DEFAULT)
        raise GraphError(400, 100, "(#100) Unsupported object")
