"""X (Twitter) API v2: mentions and DMs polled with their media, replies as public posts or DMs, every call metered.

Uses the real ``tweepy.Client``. tweepy hard-codes its host, so the client's
``requests`` session rewrites it to the channel's ``base_url`` (the real API,
a proxy, or the local emulator). tweepy never sleeps on a rate limit here: a
429 becomes ``RateLimited`` with X's reset time, and the task is rescheduled.

Media come by ``expansions=attachments.media_keys``. A photo is fetched from its ``url``, a video
or GIF from its best mp4 variant (else its preview image), without credentials; DM media only
with an OAuth 1.0a signature, which X requires there.

X takes no idempotency key. When a post or DM gets no answer (``OutcomeUnknown``), ``find_sent`` reads the
account's recent posts or the conversation's DMs for one with the same text, made since the attempt began,
before the pipeline sends again (docs/delivery.md says what remains possible).
"""

from __future__ import annotations

import copy
import html
import logging
import mimetypes
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import requests
import tweepy
from twitter_text import parse_tweet

from .base import (
    DEFAULT_IMPORT_DAYS,
    Capability,
    ChannelAdapter,
    ConfigError,
    CredentialsError,
    Envelope,
    EnvelopeKind,
    InboundAttachment,
    OutcomeUnknown,
    PermanentError,
    PollPage,
    RateLimited,
    Rejected,
    ReplyMode,
    Sender,
    Sent,
    TransientError,
    plausible_time,
)
from .http import may_have_arrived
from .rate_limits import wait_seconds

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.x.com"
TWEEPY_HOSTS = ("https://api.twitter.com", "https://api.x.com")
OAUTH1_FIELDS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
PUBLIC_REPLY_LENGTH = 280
DM_LENGTH = 10_000
NAMESPACE = "x"
TWEET_FIELDS = [
    "author_id",
    "conversation_id",
    "created_at",
    "in_reply_to_user_id",
    "referenced_tweets",
    "note_tweet",
    "attachments",
]
DM_FIELDS = ["id", "event_type", "text", "sender_id", "dm_conversation_id", "created_at", "attachments"]
USER_FIELDS = ["id", "name", "username"]
MEDIA_EXPANSION = "attachments.media_keys"
MEDIA_FIELDS = ["url", "preview_image_url", "variants", "alt_text"]
#: Where X serves media: photos and video thumbnails, video files, DM media. Nothing else is fetched,
#: apart from the configured API host (a proxy or the emulator).
MEDIA_HOSTS = {"pbs.twimg.com", "video.twimg.com", "ton.twitter.com"}
DM_MEDIA_PREFIX = "dm:"
MISSING_MEDIA_PREFIX = "missing:"
DOWNLOAD_CHUNK = 64 * 1024
URL = re.compile(r"https?://\S+", re.IGNORECASE)
DEFAULT_TIMEOUT_SECONDS = 15
#: A lookup after an unknown outcome reads from this long before the attempt began (X's clock and ours).
LOOKUP_MARGIN = timedelta(seconds=5)
#: Fields a lookup needs, and its page size: a handful of our own recent posts or DMs.
LOOKUP_TWEET_FIELDS = ["conversation_id", "created_at", "referenced_tweets"]
LOOKUP_DM_FIELDS = ["id", "text", "sender_id", "dm_conversation_id", "created_at"]
LOOKUP_PAGE_SIZE = 20
#: DM pages (``/2/dm_events`` has no since_id, and X bills every event a page returns): small when idle,
#: doubled while every event on a page is new.
DM_PAGE_MIN = 5
DM_PAGE_MAX = 100
#: How many ids of each kind of resource the billing memory keeps for the day (the most recently read).
BILLED_MEMORY = 1000
#: Post, user and DM event ids are snowflakes: decimal, 64-bit.
SNOWFLAKE = re.compile(r"[0-9]{1,19}")
#: A 1:1 DM conversation is "<smaller user id>-<larger user id>", a group one a snowflake.
DM_CONVERSATION = re.compile(r"[0-9]{1,19}(-[0-9]{1,19})?")
#: Twitter's first post (2006-03-21); nothing on X is older.
X_EPOCH = datetime(2006, 3, 1, tzinfo=UTC)
NOT_SUMMONED = "X lets API replies go only to posts that @mention this account, and this one does not. Send a DM."


class HostRewritingSession(requests.Session):
    """Sends tweepy's requests to ``base_url`` instead of its hard-coded host, with a timeout (tweepy sets none)."""

    def __init__(self, base_url, timeout=DEFAULT_TIMEOUT_SECONDS):
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method, url, *args, **kwargs):
        for host in TWEEPY_HOSTS:
            if url.startswith(host):
                url = self.base_url + url[len(host) :]
                break
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def comparable_text(text: str) -> str:
    """Text as X may give it back: entities unescaped, links (X rewrites them to t.co) reduced to a mark."""
    return URL.sub("<link>", html.unescape(text)).strip()


def parse_time(value):
    """X's ``created_at`` ("2022-10-07T22:47:41.000Z"); now when X left it out. Raises ValueError for anything
    else, or for a time X could not have stamped (see ``plausible_time``)."""
    if value is None:
        return datetime.now(UTC)
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError(f"created_at is not a time: {str(value)[:40]!r}")
    return plausible_time(datetime.fromisoformat(value.replace("Z", "+00:00")), platform_epoch=X_EPOCH)


def snowflake(value) -> str:
    """An X id as X sends it (a decimal string); raises ValueError for anything else."""
    if not isinstance(value, str) or not SNOWFLAKE.fullmatch(value) or int(value) >= 2**63:
        raise ValueError(f"not an X id: {str(value)[:40]!r}")
    return value


def mentions_handle(text: str, username: str) -> bool:
    return bool(username) and re.search(rf"(?<!\w)@{re.escape(username)}(?!\w)", text, re.IGNORECASE) is not None


class XAdapter(ChannelAdapter):
    """Config: ``base_url``; ``dm_poll_interval_seconds`` (default 60: X allows 15 DM reads per 15 minutes);
    ``import_days`` (how far back the first poll imports, default 7; checked by the pipeline for every kind); ``public_ack``, read here only to offer DM first (after
    a public acknowledgement the conversation continues in DM); ``timeout`` (seconds to wait for an answer,
    default 15). Secrets: ``bearer_token`` (an OAuth 2.0 user-context token) or the four OAuth 1.0a keys."""

    kind = "x"
    capabilities = frozenset({Capability.POLL, Capability.REPLY})
    secret_fields = ("bearer_token", *OAUTH1_FIELDS)
    max_reply_length = DM_LENGTH
    finds_sent = True

    @classmethod
    def split_config(cls, raw):
        config, secrets = super().split_config(raw)
        has_oauth1 = all(secrets.get(field) for field in OAUTH1_FIELDS)
        if not secrets.get("bearer_token") and not has_oauth1:
            raise ConfigError("X needs a bearer_token (OAuth 2.0 user context) or all four OAuth 1.0a keys.")
        base_url = config.setdefault("base_url", DEFAULT_BASE_URL)
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError("base_url must be an http(s) address, e.g. https://api.x.com.")
        for key in ("dm_poll_interval_seconds",):
            if key in config and (not isinstance(config[key], int) or config[key] <= 0):
                raise ConfigError(f"{key} must be a positive integer.")
        timeout = config.get("timeout", DEFAULT_TIMEOUT_SECONDS)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError("timeout must be a positive number of seconds.")
        return config, secrets

    # Platform calls ---------------------------------------------------------

    def _client(self):
        if self.secrets.get("bearer_token"):
            client = tweepy.Client(bearer_token=self.secrets["bearer_token"], return_type=dict)
        else:
            client = tweepy.Client(**{field: self.secrets[field] for field in OAUTH1_FIELDS}, return_type=dict)
        client.session = HostRewritingSession(
            self.config.get("base_url", DEFAULT_BASE_URL), self.config.get("timeout", DEFAULT_TIMEOUT_SECONDS)
        )
        return client

    def _call(self, method, *, write=False, **params):
        """One API call; a ``write`` whose request may have reached X without an answer is ``OutcomeUnknown``."""
        user_auth = not self.secrets.get("bearer_token")
        try:
            return getattr(self._client(), method)(user_auth=user_auth, **params)
        except tweepy.TooManyRequests as exc:
            retry_after = wait_seconds(exc.response.headers)
            raise RateLimited(
                f"X rate limit on {method} (resets in {retry_after:.0f}s)", retry_after=retry_after
            ) from None
        except tweepy.Unauthorized as exc:
            raise CredentialsError(f"X refused the credentials: {self._detail(exc)}") from None
        except tweepy.TwitterServerError as exc:
            raise TransientError(f"X server error: {self._detail(exc)}") from None
        except tweepy.HTTPException as exc:
            raise PermanentError(f"X error: {self._detail(exc)}") from None
        except requests.RequestException as exc:
            if write and may_have_arrived(exc):
                raise OutcomeUnknown(f"X did not answer {method} ({type(exc).__name__})") from None
            raise TransientError(f"X unreachable: {type(exc).__name__}") from None
        except RecursionError:  # not one item of the page can be read, so none can be kept as failed
            raise TransientError(f"X answered {method} with JSON nested too deeply to read") from None

    @staticmethod
    def _detail(exc):
        messages = exc.api_messages or [exc.response.reason]
        return f"HTTP {exc.response.status_code} {'; '.join(str(m) for m in messages)}"

    def check_credentials(self):
        user = self._call("get_me", user_fields=USER_FIELDS)["data"]
        return {"account_id": user["id"], "username": user["username"]}

    # Polling ----------------------------------------------------------------

    def poll(self, cursor):
        """DMs first (their 15-per-15-minutes limit is handled inside and never stops mentions), then mentions."""
        cursor = copy.deepcopy(dict(cursor))
        billed = BilledToday(cursor)
        yield from self._poll_dms(cursor, billed)
        yield from self._poll_mentions(cursor, billed)

    def _backfill_start(self):
        return datetime.now(UTC) - timedelta(days=self.config.get("import_days", DEFAULT_IMPORT_DAYS))

    def _poll_mentions(self, cursor, billed):
        """Newest first, page by page: every mention up to ``since_id`` is stored.

        A pass that stops part way (a 429, an outage) leaves a ``gap`` in the cursor: it stored everything from
        ``top`` down to ``until_id``. The next poll reads below ``until_id`` first and only then what is new, so
        each poll gets further down a backlog instead of re-reading its newest pages, before X's window of the
        800 newest mentions moves past the oldest ones.
        """
        state = cursor.setdefault("mentions", {})
        if gap := state.get("gap"):
            yield from self._read_mentions(cursor, billed, top=gap["top"], until_id=gap["until_id"])
        yield from self._read_mentions(cursor, billed, top=state.get("since_id"), until_id=None)

    def _read_mentions(self, cursor, billed, *, top, until_id):
        """One pass from ``until_id`` (or the newest) down to ``since_id``; ``since_id`` becomes the newest id
        read (or ``top``) only once the pass is complete, and each page's cursor records how far down it got."""
        state = cursor["mentions"]
        params = {
            "max_results": 100,
            "expansions": ["author_id", MEDIA_EXPANSION],
            "tweet_fields": TWEET_FIELDS,
            "user_fields": USER_FIELDS,
            "media_fields": MEDIA_FIELDS,
        }
        if since_id := state.get("since_id"):
            params["since_id"] = since_id
        else:
            params["start_time"] = self._backfill_start().strftime("%Y-%m-%dT%H:%M:%SZ")
        newest, reached, seen, token = top, until_id, set(), None
        while True:
            data = self._call(
                "get_users_mentions",
                id=self.state["account_id"],
                pagination_token=token,
                until_id=until_id,
                **params,
            )
            envelopes, rejected = [], []
            posts = self._items(data, rejected)
            includes = self._includes(data, billed)
            self.usage["post_read_owned"] += billed.first_reads("post", [post.get("id") for post in posts]) + len(
                rejected
            )
            for post in posts:
                if post.get("id") in seen:
                    continue  # X sometimes repeats ids across pages
                seen.add(post.get("id"))
                self._interpret(self._mention, post, includes, envelopes, rejected)
            ids = [post["id"] for post in posts if post.get("id")]
            if ids:
                newest = max([newest, *ids], key=lambda i: int(i or 0))
                reached = min([*ids] if reached is None else [reached, *ids], key=int)
                state["gap"] = {"top": newest, "until_id": reached}
            yield PollPage(envelopes=envelopes, cursor=copy.deepcopy(cursor), rejected=rejected)
            token = next_token(data)
            if not token or not (posts or rejected):
                break
        state.pop("gap", None)
        if newest:
            state["since_id"] = newest
        yield PollPage(envelopes=[], cursor=copy.deepcopy(cursor))

    def _poll_dms(self, cursor, billed):
        """``/2/dm_events`` has no since_id: page newest first until the first event already seen.

        The first poll backfills with full pages. Later polls start with the page size kept in the cursor
        (small when idle) and double it for each further page, as long as every event on a page is new.
        """
        state = cursor.setdefault("dms", {})
        now = time.time()
        if now < state.get("next_at", 0):
            return
        newest_seen = state.get("newest_id")
        oldest_wanted = self._backfill_start()
        newest, token, new_events = newest_seen, None, 0
        size = dm_page_size(state.get("page_size")) if newest_seen else DM_PAGE_MAX
        while True:
            try:
                data = self._call(
                    "get_direct_message_events",
                    event_types="MessageCreate",
                    dm_event_fields=DM_FIELDS,
                    expansions=["sender_id", MEDIA_EXPANSION],
                    user_fields=USER_FIELDS,
                    media_fields=MEDIA_FIELDS,
                    max_results=size,
                    pagination_token=token,
                )
            except RateLimited as exc:
                logger.warning("x: DM polling rate limited for %.0fs; mentions continue", exc.retry_after)
                state["next_at"] = now + exc.retry_after
                yield PollPage(envelopes=[], cursor=copy.deepcopy(cursor))
                return
            envelopes, rejected, reached_known = [], [], False
            events = self._items(data, rejected)
            includes = self._includes(data, billed)
            self.usage["dm_event_read"] += billed.first_reads("dm_event", [event.get("id") for event in events]) + len(
                rejected
            )
            for event in events:
                known = newest_seen and int(event.get("id", 0)) <= int(newest_seen)
                if known or parse_time(event.get("created_at")) < oldest_wanted:
                    reached_known = True
                    break
                new_events += 1
                self._interpret(self._dm, event, includes, envelopes, rejected)
            newest = max([newest, *(e["id"] for e in events if e.get("id"))], key=lambda i: int(i or 0))
            yield PollPage(envelopes=envelopes, cursor=copy.deepcopy(cursor), rejected=rejected)
            token = next_token(data)
            if reached_known or not token or not (events or rejected):
                break
            size = min(size * 2, DM_PAGE_MAX)
        state.update(
            newest_id=newest,
            next_at=now + self.config.get("dm_poll_interval_seconds", 60),
            # A backfill says nothing about how fast DMs come; a burst does.
            page_size=dm_page_for(new_events) if newest_seen else DM_PAGE_MIN,
        )
        yield PollPage(envelopes=[], cursor=copy.deepcopy(cursor))

    @staticmethod
    def _items(data, rejected) -> list[Mapping]:
        """The posts or DM events of a page whose id and time a poll can compare; the others are rejected
        with their raw data, so one odd item never stops a poll."""
        items = data.get("data") or []
        if not isinstance(items, list):
            rejected.append(Rejected(reference="page", reason="data is not a list", raw=items))
            return []
        well_formed = []
        for item in items:
            try:
                if not isinstance(item, Mapping):
                    raise ValueError("not an object")
                snowflake(item.get("id"))
                parse_time(item.get("created_at"))
            except ValueError as exc:
                reference = item.get("id") if isinstance(item, Mapping) else None
                rejected.append(Rejected(reference=str(reference)[:40], reason=f"uninterpretable: {exc}", raw=item))
            else:
                well_formed.append(item)
        return well_formed

    def _includes(self, data, billed):
        """The users and media an answer expanded, by id and media key; each is metered on its first read today.
        Odd entries are left out (a post whose author is missing from includes still arrives, under the author's id)."""
        includes = data.get("includes")
        includes = includes if isinstance(includes, Mapping) else {}
        users = {user["id"]: user for user in as_list(includes.get("users")) if isinstance(user.get("id"), str)}
        media = {
            item["media_key"]: item for item in as_list(includes.get("media")) if isinstance(item.get("media_key"), str)
        }
        self.usage["expanded_user_read"] += billed.first_reads("user", users)
        self.usage["expanded_media_read"] += billed.first_reads("media", media)
        return Includes(users=users, media=media)

    @staticmethod
    def _interpret(build, item, includes, envelopes, rejected):
        try:
            envelope = build(item, includes)
        except (LookupError, TypeError, ValueError, AttributeError) as exc:
            rejected.append(Rejected(reference=str(item.get("id", "?")), reason=f"uninterpretable: {exc!r}", raw=item))
            return
        if envelope is not None:
            envelopes.append(envelope)

    def _sender(self, user_id, users):
        user = users.get(snowflake(user_id))
        if user is None:  # suspended or deleted authors are missing from includes
            return Sender(namespace=NAMESPACE, external_id=user_id)
        username, name = user.get("username"), user.get("name", "")
        if not isinstance(username, str) or not isinstance(name, str):
            return Sender(namespace=NAMESPACE, external_id=user_id)
        return Sender(namespace=NAMESPACE, external_id=user_id, handle=f"@{username[:100]}", display_name=name[:200])

    def _mention(self, post, includes):
        author_id = snowflake(post["author_id"])
        retweet = any(ref.get("type") == "retweeted" for ref in as_list(post.get("referenced_tweets")))
        if author_id == self.state.get("account_id") or retweet:
            return None
        text = (post.get("note_tweet") or {}).get("text") or post["text"]
        if post.get("withheld"):
            text = text or "(This post is withheld in some countries; X did not return its text.)"
        if not isinstance(text, str):
            raise TypeError("text is not a string")
        direct = mentions_handle(text, self.state.get("username", ""))
        conversation = snowflake(post.get("conversation_id") or post["id"])
        return Envelope(
            external_id=f"tweet:{post['id']}",
            kind=EnvelopeKind.MESSAGE,
            thread_key=f"conv:{conversation}",
            sent_at=parse_time(post.get("created_at")),
            sender=self._sender(author_id, includes.users),
            text=text,
            starts_thread=conversation == post["id"],
            public=True,
            meta={"direct_mention": direct, "summoned": direct},
            attachments=media_attachments(post, includes.media, dm=False),
        )

    def _dm(self, event, includes):
        if event.get("event_type", "MessageCreate") != "MessageCreate" or event["sender_id"] == self.state.get(
            "account_id"
        ):
            return None
        if not isinstance(event.get("text", ""), str):
            raise TypeError("text is not a string")
        if not isinstance(event["dm_conversation_id"], str) or not DM_CONVERSATION.fullmatch(
            event["dm_conversation_id"]
        ):
            raise ValueError("dm_conversation_id is not an X conversation id")
        return Envelope(
            external_id=f"dm:{event['id']}",
            kind=EnvelopeKind.MESSAGE,
            thread_key=f"dm:{event['dm_conversation_id']}",
            sent_at=parse_time(event.get("created_at")),
            sender=self._sender(event["sender_id"], includes.users),
            text=event.get("text", ""),
            starts_thread=True,
            reopens=False,  # a DM conversation is one ticket while it is open; later DMs start a new one
            attachments=media_attachments(event, includes.media, dm=True),
        )

    # Replies ----------------------------------------------------------------

    @classmethod
    def describe_thread(cls, key):
        return "DM" if key.startswith("dm:") else "public conversation"

    def reply_modes(self, target):
        dm = ReplyMode(
            key="dm",
            label="Direct message",
            max_length=DM_LENGTH,
            allowed=bool(target.recipient) or target.thread_key.startswith("dm:"),
            reason="" if target.recipient else "No recipient known for a DM.",
        )
        if target.thread_key.startswith("dm:"):
            return [dm]
        summoned = bool(target.reply_to_meta.get("summoned"))
        public = ReplyMode(
            key="public",
            label="Public reply",
            max_length=PUBLIC_REPLY_LENGTH,
            allowed=summoned,
            reason="" if summoned else NOT_SUMMONED,
        )
        # After a public acknowledgement the conversation continues in DM.
        return [dm, public] if self.config.get("public_ack") else [public, dm]

    def reply_length(self, text, mode):
        return parse_tweet(text).weightedLength if mode == "public" else len(text)

    def send(self, *, target, text, key):
        # X takes no idempotency key: find_sent recognises a reply by where it went and its text.
        if target.mode == "public":
            if self.reply_length(text, "public") > PUBLIC_REPLY_LENGTH:
                raise PermanentError(f"A public reply on X takes at most {PUBLIC_REPLY_LENGTH} weighted characters.")
            tweet_id = target.reply_to.removeprefix("tweet:")
            data = self._call("create_tweet", write=True, text=text, in_reply_to_tweet_id=tweet_id)["data"]
            self._meter_created(target, text)
            return Sent(external_id=f"tweet:{data['id']}")
        if target.thread_key.startswith("dm:"):
            conversation = target.thread_key.removeprefix("dm:")
            data = self._call("create_direct_message", write=True, dm_conversation_id=conversation, text=text)["data"]
        else:
            data = self._call("create_direct_message", write=True, participant_id=target.recipient, text=text)["data"]
        self._meter_created(target, text)
        return Sent(external_id=f"dm:{data['dm_event_id']}", thread_key=f"dm:{data['dm_conversation_id']}")

    def _meter_created(self, target, text):
        if target.mode == "public":
            self.usage["post_create_with_url" if URL.search(text) else "post_create"] += 1
        else:
            self.usage["dm_create"] += 1

    def find_sent(self, *, target, text, key, since):
        """Our post in the conversation, or our DM to the person, with this text, made since the attempt began.
        Found, it is metered as created: the attempt that made it never reported it."""
        start = since - LOOKUP_MARGIN
        if target.mode == "public":
            sent = self._find_post(target.thread_key.removeprefix("conv:"), comparable_text(text), start)
        else:
            sent = self._find_dm(target, comparable_text(text), start)
        if sent is not None:
            self._meter_created(target, text)
        return sent

    def _find_post(self, conversation, text, start):
        token = None
        while True:
            data = self._call(
                "get_users_tweets",
                id=self.state["account_id"],
                start_time=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                max_results=LOOKUP_PAGE_SIZE,
                tweet_fields=LOOKUP_TWEET_FIELDS,
                pagination_token=token,
            )
            posts = data.get("data") or []
            self.usage["post_read_owned"] += len(posts)
            for post in posts:
                if post.get("conversation_id") == conversation and comparable_text(post.get("text", "")) == text:
                    return Sent(external_id=f"tweet:{post['id']}")
            token = (data.get("meta") or {}).get("next_token")
            if not token or not posts:
                return None

    def _find_dm(self, target, text, start):
        if target.thread_key.startswith("dm:"):
            where = {"dm_conversation_id": target.thread_key.removeprefix("dm:")}
        else:
            where = {"participant_id": target.recipient}
        token = None
        while True:
            data = self._call(
                "get_direct_message_events",
                **where,
                event_types="MessageCreate",
                dm_event_fields=LOOKUP_DM_FIELDS,
                max_results=LOOKUP_PAGE_SIZE,
                pagination_token=token,
            )
            events = data.get("data") or []
            self.usage["dm_event_read"] += len(events)
            for event in events:  # newest first
                if parse_time(event.get("created_at")) < start:
                    return None
                if event.get("sender_id") == self.state.get("account_id") and (
                    comparable_text(event.get("text", "")) == text
                ):
                    return Sent(external_id=f"dm:{event['id']}", thread_key=f"dm:{event['dm_conversation_id']}")
            token = (data.get("meta") or {}).get("next_token")
            if not token or not events:
                return None

    # Media ------------------------------------------------------------------

    def fetch_attachment(self, ref):
        if ref.startswith(MISSING_MEDIA_PREFIX):
            raise PermanentError("X did not return this media item (it may have been deleted); see the post on X.")
        dm = ref.startswith(DM_MEDIA_PREFIX)
        url = ref.removeprefix(DM_MEDIA_PREFIX)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.hostname not in MEDIA_HOSTS | {self._api_host()}:
            raise PermanentError(f"Not an X media address ({parts.hostname or url[:40]}); it was not fetched.")
        auth = None
        if dm:
            if not all(self.secrets.get(field) for field in OAUTH1_FIELDS):
                raise PermanentError(DM_MEDIA_NEEDS_OAUTH1)
            auth = tweepy.OAuth1UserHandler(*(self.secrets[field] for field in OAUTH1_FIELDS)).apply_auth()
        try:
            response = requests.get(url, auth=auth, stream=True, timeout=(10, 60))
        except requests.RequestException as exc:
            raise TransientError(f"X media download failed: {type(exc).__name__}") from None
        with response:
            check_media_download(response, dm)
            try:
                yield from response.iter_content(DOWNLOAD_CHUNK)
            except requests.RequestException as exc:
                raise TransientError(f"X media download broke off: {type(exc).__name__}") from None

    def _api_host(self):
        return urlsplit(self.config.get("base_url", DEFAULT_BASE_URL)).hostname


DM_MEDIA_NEEDS_OAUTH1 = (
    "X DM media cannot be downloaded with this credential: X serves it only to OAuth 1.0a-signed requests. "
    "Give the channel the four OAuth 1.0a keys to keep DM media."
)


def dm_page_size(value) -> int:
    """The first page size kept in the cursor, or the smallest when the cursor has none that X accepts."""
    return value if isinstance(value, int) and DM_PAGE_MIN <= value <= DM_PAGE_MAX else DM_PAGE_MIN


def dm_page_for(new_events: int) -> int:
    """The smallest page on the doubling ladder that holds this many new events and one already seen, so that
    the next poll reads a burst like the last one in one call; the smallest page when idle."""
    size = DM_PAGE_MIN
    while size <= new_events and size < DM_PAGE_MAX:
        size *= 2
    return min(size, DM_PAGE_MAX)


class BilledToday:
    """What X has already billed this UTC day, to meter only what X bills.

    X bills a read per resource returned, but a resource read again in the same UTC day is not billed again
    (docs/x-billing.md). This memory rides in the cursor, which the pipeline stores with every page: it is
    emptied when the UTC day changes, and keeps the ``BILLED_MEMORY`` most recent ids of each kind, so it
    stays small. An id it has forgotten is metered again, so forgetting can only make the meter say more than
    X bills.
    """

    def __init__(self, cursor):
        today = datetime.now(UTC).date().isoformat()
        memory = cursor.get("billed")
        if not isinstance(memory, dict) or memory.get("day") != today:
            memory = cursor["billed"] = {"day": today}
        self._memory = memory
        self._known = {}

    def first_reads(self, kind, ids) -> int:
        """How many of ``ids`` X bills now: each one not read yet today, once; a resource without an id always."""
        remembered = self._memory.get(kind)
        if not isinstance(remembered, list):
            remembered = self._memory[kind] = []
        known = self._known.setdefault(kind, set(map(str, remembered)))
        ids = [str(i) if i is not None else None for i in ids]
        first = [i for i in dict.fromkeys(i for i in ids if i is not None) if i not in known]
        known.update(first)
        remembered.extend(first)
        if len(remembered) > BILLED_MEMORY:
            del remembered[:-BILLED_MEMORY]
            self._known[kind] = set(remembered)
        return len(first) + ids.count(None)


@dataclass(frozen=True)
class Includes:
    users: dict
    media: dict


def as_list(value) -> list[Mapping]:
    """The objects of a list from a payload; nothing when it is not a list."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def next_token(data) -> str | None:
    """The token of a page's next page, if X gave one."""
    meta = data.get("meta")
    token = meta.get("next_token") if isinstance(meta, Mapping) else None
    return token if isinstance(token, str) and token else None


def media_attachments(item, media, *, dm) -> tuple[InboundAttachment, ...]:
    """A post's or DM's media as attachments, in the order X lists them. A key that X left out of
    includes (it does, now and then) is kept as an attachment that fails visibly, never dropped."""
    keys = (item.get("attachments") or {}).get("media_keys") or []
    return tuple(media_attachment(key[:100], media.get(key), dm=dm) for key in keys if isinstance(key, str))


def media_attachment(key, item, *, dm) -> InboundAttachment:
    missing = InboundAttachment(
        name=f"media-{key}", content_type="application/octet-stream", size=0, ref=MISSING_MEDIA_PREFIX + key
    )
    if item is None:
        return missing
    kind = item.get("type")
    if kind == "photo":
        url, name = item.get("url"), f"photo-{key}"
    else:
        mp4s = [v for v in as_list(item.get("variants")) if v.get("content_type") == "video/mp4" and v.get("url")]
        best = max(mp4s, key=lambda variant: bit_rate(variant.get("bit_rate")), default=None)
        label = "gif" if kind == "animated_gif" else "video"
        if best is not None:
            url, name = best["url"], f"{label}-{key}"
        else:  # no playable file offered: keep the still X shows before playing it
            url, name = item.get("preview_image_url"), f"{label}-{key}-preview"
    if not isinstance(url, str) or not url:
        return missing
    extension = PurePosixPath(urlsplit(url).path).suffix.lower() or ".jpg"
    return InboundAttachment(
        name=name + extension,
        content_type=mimetypes.guess_type("f" + extension)[0] or "application/octet-stream",
        size=0,  # X does not say
        ref=(DM_MEDIA_PREFIX if dm else "") + url,
        alt_text=str(item.get("alt_text") or ""),
    )


def bit_rate(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def check_media_download(response, dm):
    status = response.status_code
    if status == 429:
        retry_after = wait_seconds(response.headers)
        raise RateLimited(f"X rate limit on a media download (resets in {retry_after:.0f}s)", retry_after=retry_after)
    if status == 401 and dm:
        raise CredentialsError("X refused the OAuth 1.0a keys for a DM media download (HTTP 401).")
    if status in (401, 403, 404, 410):
        raise PermanentError(f"X refused the media download: HTTP {status} (deleted, or not visible to this account).")
    if status != 200:
        raise TransientError(f"X media download failed: HTTP {status}.")
