"""In-memory state of the emulated X: users, posts and DMs, and X's rules for them.

One account (the app's) whose mentions and DMs the API serves. Ids are
snowflakes, so ordering by id is ordering by time, as on real X. Every public
method takes the store lock; API and control code render from the returned
records, which are never mutated after creation except for `withheld_in`.
"""

import bisect
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .media import Media, MediaFile, MediaLibrary

TWITTER_EPOCH_MS = 1288834974657
MAX_POST_WEIGHT = 280
URL_WEIGHT = 23  # every URL counts as a t.co link
MAX_DM_CHARS = 10_000
REACHABLE_MENTIONS = 800
MAX_POST_MEDIA = 4
MAX_DM_MEDIA = 1
URL_PATTERN = re.compile(r"https?://\S+")
# An emoji with its modifiers (variation selector, keycap, skin tone, ZWJ-joined parts), or a flag: weighs 2.
EMOJI_SEQUENCE = re.compile(
    r"[\U0001F1E6-\U0001F1FF]{2}|.(?:[\uFE0E\uFE0F\u20E3\U0001F3FB-\U0001F3FF]|\u200D.)+", re.DOTALL
)
# twitter-text v3: these code point ranges weigh 1, everything else (CJK, emoji, ...) weighs 2.
LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


class XError(Exception):
    """A request X refuses: the HTTP status and its problem JSON body."""

    def __init__(self, status: int, body: dict):
        super().__init__(body.get("detail", ""))
        self.status = status
        self.body = body


def invalid_request(parameter: str, value, message: str) -> XError:
    """X's 400 for a bad parameter; tweepy shows errors[].message."""
    return XError(
        400,
        {
            "errors": [{"parameters": {parameter: [str(value)]}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        },
    )


def forbidden(detail: str) -> XError:
    return XError(403, {"title": "Forbidden", "type": "about:blank", "status": 403, "detail": detail})


def user_not_found(user_id: str, parameter: str = "id") -> dict:
    """The `errors` entry real X returns (with HTTP 200) for an unknown or suspended user."""
    return {
        "value": user_id,
        "detail": f"Could not find user with {parameter}: [{user_id}].",
        "title": "Not Found Error",
        "resource_type": "user",
        "parameter": parameter,
        "resource_id": user_id,
        "type": "https://api.twitter.com/2/problems/resource-not-found",
    }


def weighted_length(text: str) -> int:
    """Approximate twitter-text weighting: NFC, http(s) URLs 23, emoji sequences and wide characters 2.

    Bare domains ("example.com") count as text, so this errs on the lenient side.
    """
    text = unicodedata.normalize("NFC", text)
    text, urls = URL_PATTERN.subn("", text)
    rest, emoji = EMOJI_SEQUENCE.subn("", text)
    return (
        urls * URL_WEIGHT
        + emoji * 2
        + sum(1 if any(low <= ord(char) <= high for low, high in LIGHT_RANGES) else 2 for char in rest)
    )


def snowflake_time(snowflake: int) -> str:
    """created_at as X writes it: "2026-11-25T10:00:00.000Z"."""
    moment = datetime.fromtimestamp(((snowflake >> 22) + TWITTER_EPOCH_MS) / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def dm_conversation_id(user_a: str, user_b: str) -> str:
    low, high = sorted((user_a, user_b), key=int)
    return f"{low}-{high}"


class Snowflakes:
    """Strictly increasing snowflake ids: ((ms - epoch) << 22) + a counter for ids in the same ms."""

    def __init__(self):
        self._last = 0

    def next(self) -> int:
        now = (int(time.time() * 1000) - TWITTER_EPOCH_MS) << 22
        self._last = max(now, self._last + 1)
        return self._last


@dataclass(frozen=True)
class User:
    id: str
    username: str
    name: str
    suspended: bool = False

    def render(self) -> dict:
        return {"id": self.id, "name": self.name, "username": self.username}


@dataclass
class Post:
    id: int
    author_id: str
    text: str
    conversation_id: int
    in_reply_to_user_id: str | None = None
    replied_to_id: int | None = None
    quoted_id: int | None = None
    withheld_in: list[str] | None = None  # country codes, once withheld
    media_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class DmEvent:
    id: int
    sender_id: str
    recipient_id: str
    text: str
    attachments: list = field(default_factory=list)
    media_keys: tuple[str, ...] = ()

    @property
    def conversation_id(self) -> str:
        return dm_conversation_id(self.sender_id, self.recipient_id)


class Store:
    def __init__(self, account_id: str, account_username: str, account_name: str):
        if not account_id.isdigit():
            raise ValueError("account_id must be a decimal id")
        self.account = User(account_id, account_username, account_name)
        self.account_id = account_id
        self._mention_pattern = re.compile(rf"(?<![\w@])@{re.escape(account_username)}(?!\w)", re.IGNORECASE)
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._ids = Snowflakes()
            self._users: dict[str, User] = {self.account.id: self.account}
            self._posts: dict[int, Post] = {}
            self._mention_ids: list[int] = []  # ascending, live posts only
            self._api_post_ids: list[int] = []
            self._dms: list[DmEvent] = []  # ascending ids
            self._api_dm_ids: list[int] = []
            self._media = MediaLibrary()

    # Users

    def add_user(
        self, username: str | None = None, name: str | None = None, user_id: str | None = None, suspended: bool = False
    ) -> User:
        """Create a user, or update one when `user_id` is known (e.g. to suspend it)."""
        if user_id is not None and not str(user_id).isdigit():
            raise ValueError("id must be a decimal id")
        user_id = str(user_id) if user_id is not None else None
        with self._lock:
            existing = self._users.get(user_id) if user_id else None
            if existing is self.account:
                raise ValueError("the account is fixed at start-up")
            username = username or (existing.username if existing else None)
            if not username:
                raise ValueError("username is required")
            taken_by = self.user_by_username(username)
            if taken_by is not None and taken_by.id != user_id:
                raise ValueError(f"username {username} is taken by user {taken_by.id}")
            user = User(
                id=user_id or str(self._ids.next()),
                username=username,
                name=name or (existing.name if existing else username),
                suspended=suspended,
            )
            self._users[user.id] = user
            return user

    def user(self, user_id: str) -> User | None:
        with self._lock:
            return self._users.get(user_id)

    def user_by_username(self, username: str) -> User | None:
        with self._lock:
            return next((user for user in self._users.values() if user.username.lower() == username.lower()), None)

    # Posts

    def post(
        self, author_id: str, text: str, in_reply_to_tweet_id=None, quote_tweet_id=None, media: list[dict] = ()
    ) -> Post:
        """A user posts publicly, with up to 4 media items (see media.MediaLibrary.add); no X posting
        rules apply (the people are not the app)."""
        with self._lock:
            if author_id not in self._users:
                raise ValueError(f"unknown author_id {author_id}")
            if not isinstance(text, str):
                raise ValueError("text is required")
            if len(media) > MAX_POST_MEDIA:
                raise ValueError(f"a post carries at most {MAX_POST_MEDIA} media items")
            parent = self._existing_post(in_reply_to_tweet_id, "in_reply_to_tweet_id")
            quoted = self._existing_post(quote_tweet_id, "quote_tweet_id")
            keys = tuple(self._media.add(spec, self._ids.next()).key for spec in media)
            return self._store_post(author_id, text, parent, quoted, keys)

    def post_many(self, posts: list[dict]) -> list[int]:
        with self._lock:
            return [
                self.post(
                    str(item.get("author_id")),
                    item.get("text"),
                    item.get("in_reply_to_tweet_id"),
                    item.get("quote_tweet_id"),
                ).id
                for item in posts
            ]

    def account_post(self, text: str, in_reply_to_tweet_id=None, quote_tweet_id=None) -> Post:
        """POST /2/tweets by the account, under X's self-serve rules."""
        if not text:
            raise invalid_request("text", text, "text is required when no media or poll is attached")
        if weighted_length(text) > MAX_POST_WEIGHT:
            raise invalid_request(
                "text", text[:40] + "...", f"text is longer than {MAX_POST_WEIGHT} weighted characters"
            )
        with self._lock:
            parent = self._posts.get(_as_id(in_reply_to_tweet_id)) if in_reply_to_tweet_id is not None else None
            if in_reply_to_tweet_id is not None and parent is None:
                raise invalid_request(
                    "reply.in_reply_to_tweet_id",
                    in_reply_to_tweet_id,
                    "You attempted to reply to a Tweet that is deleted or not visible to you.",
                )
            if parent is not None and not self._summons_account(parent):
                raise forbidden(
                    "Reply to this post is not allowed because the author has not mentioned or engaged with you."
                )
            quoted = self._posts.get(_as_id(quote_tweet_id)) if quote_tweet_id is not None else None
            if quote_tweet_id is not None and quoted is None:
                raise invalid_request("quote_tweet_id", quote_tweet_id, "The quoted Tweet does not exist.")
            post = self._store_post(self.account.id, text, parent, quoted)
            self._api_post_ids.append(post.id)
            return post

    def delete_post(self, post_id, by_account: bool = False) -> bool:
        """Delete a post; through the API (`by_account`) only the account's own."""
        with self._lock:
            post = self._posts.get(_as_id(post_id))
            if post is None:
                return False
            if by_account and post.author_id != self.account.id:
                raise forbidden("You are not allowed to delete this Tweet.")
            del self._posts[post.id]
            index = bisect.bisect_left(self._mention_ids, post.id)
            if index < len(self._mention_ids) and self._mention_ids[index] == post.id:
                del self._mention_ids[index]
            return True

    def withhold(self, post_id, country_codes: list[str]) -> Post:
        with self._lock:
            post = self._existing_post(post_id, "id")
            post.withheld_in = list(country_codes)
            return post

    def get_post(self, post_id) -> Post | None:
        with self._lock:
            return self._posts.get(_as_id(post_id))

    def reachable_mention_ids(self) -> list[int]:
        """Ids of the last 800 posts mentioning the account, ascending (X serves no older ones)."""
        with self._lock:
            return self._mention_ids[-REACHABLE_MENTIONS:]

    def account_posts(self) -> list[Post]:
        """What the account posted through the API and has not deleted, oldest first."""
        with self._lock:
            return [self._posts[post_id] for post_id in self._api_post_ids if post_id in self._posts]

    # Direct messages

    def dm_to_account(self, sender_id: str, text: str, media: list[dict] = ()) -> DmEvent:
        """A user DMs the account, with at most one media item (served only to OAuth 1.0a-signed requests)."""
        with self._lock:
            if sender_id not in self._users or sender_id == self.account.id:
                raise ValueError(f"sender_id must be a known user other than the account, not {sender_id}")
            if len(media) > MAX_DM_MEDIA:
                raise ValueError(f"a DM carries at most {MAX_DM_MEDIA} media item")
            event_id = self._ids.next()
            keys = tuple(self._media.add(spec, self._ids.next(), dm_event_id=event_id).key for spec in media)
            event = DmEvent(event_id, sender_id, self.account.id, text, media_keys=keys)
            self._dms.append(event)
            return event

    def account_dm(
        self, text: str | None, attachments: list, participant_id: str | None = None, conversation_id: str | None = None
    ) -> DmEvent:
        """A DM the account sends, to a participant or into a one-to-one conversation id."""
        if not text and not attachments:
            raise invalid_request("text", "", "text or attachments is required")
        if text and len(text) > MAX_DM_CHARS:
            raise invalid_request("text", text[:40] + "...", f"text is longer than {MAX_DM_CHARS} characters")
        if conversation_id is not None:
            members = conversation_id.split("-")
            if len(members) != 2 or self.account.id not in members or not all(m.isdigit() for m in members):
                raise invalid_request(
                    "dm_conversation_id", conversation_id, "Only one-to-one conversations of the account are emulated."
                )
            participant_id = members[0] if members[1] == self.account.id else members[1]
        with self._lock:
            recipient = self._users.get(participant_id)
            if recipient is None or recipient.suspended or recipient is self.account:
                raise forbidden("You cannot send messages to this user.")
            event = DmEvent(self._ids.next(), self.account.id, recipient.id, text or "", list(attachments))
            self._dms.append(event)
            self._api_dm_ids.append(event.id)
            return event

    def dm_events(self) -> list[DmEvent]:
        """Every DM the account sent or received, ascending."""
        with self._lock:
            return list(self._dms)

    def account_dms(self) -> list[DmEvent]:
        with self._lock:
            sent = set(self._api_dm_ids)
            return [event for event in self._dms if event.id in sent]

    # Media

    def media(self, key: str) -> Media | None:
        with self._lock:
            return self._media.get(key)

    def media_file(self, path: str) -> MediaFile | None:
        with self._lock:
            return self._media.file(path)

    def delete_media(self, key: str) -> bool:
        with self._lock:
            return self._media.delete(key)

    # Internals (lock held)

    def _existing_post(self, post_id, parameter: str) -> Post | None:
        if post_id is None:
            return None
        post = self._posts.get(_as_id(post_id))
        if post is None:
            raise ValueError(f"unknown {parameter} {post_id}")
        return post

    def _store_post(
        self, author_id: str, text: str, parent: Post | None, quoted: Post | None, media_keys: tuple[str, ...] = ()
    ) -> Post:
        post_id = self._ids.next()
        post = Post(
            id=post_id,
            author_id=author_id,
            text=text,
            conversation_id=parent.conversation_id if parent else post_id,
            in_reply_to_user_id=parent.author_id if parent else None,
            replied_to_id=parent.id if parent else None,
            quoted_id=quoted.id if quoted else None,
            media_keys=media_keys,
        )
        self._posts[post_id] = post
        # The account's own posts are not its mentions (the app must not ingest its own replies).
        if author_id != self.account.id and (
            post.in_reply_to_user_id == self.account.id or self._mention_pattern.search(text)
        ):
            self._mention_ids.append(post_id)  # ids only grow, so the list stays sorted
        return post

    def _summons_account(self, post: Post) -> bool:
        """X's 2026 self-serve reply rule: the author @mentioned or quoted the account (or it is its own post)."""
        if post.author_id == self.account.id or self._mention_pattern.search(post.text):
            return True
        quoted = self._posts.get(post.quoted_id) if post.quoted_id else None
        return quoted is not None and quoted.author_id == self.account.id


def _as_id(value) -> int | None:
    text = str(value)
    return int(text) if text.isdigit() else None
