"""The X API v2 endpoints the helpdesk uses, shaped like the recorded real responses.

Each handler takes the path arguments, the query parameters and the raw body,
and returns (HTTP status, JSON body); refusals are raised as XError.
"""

import bisect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from .store import (
    MAX_POST_WEIGHT,
    TWITTER_EPOCH_MS,
    DmEvent,
    Post,
    Store,
    User,
    XError,
    dm_conversation_id,
    invalid_request,
    snowflake_time,
    user_not_found,
)
from .traffic import FaultPlan

# Expansions that name users, and the post/DM field that holds the user id.
POST_USER_EXPANSIONS = {"author_id": "author_id", "in_reply_to_user_id": "in_reply_to_user_id"}
DM_USER_EXPANSIONS = {"sender_id": "sender_id"}
MEDIA_EXPANSION = "attachments.media_keys"
DEFAULT_DM_EVENT_TYPES = {"MessageCreate", "ParticipantsJoin", "ParticipantsLeave"}
WITHHELD_COUNTRIES = ["DE"]


@dataclass(frozen=True)
class Route:
    verb: str
    pattern: re.Pattern
    name: str  # the template counted in stats, e.g. "GET /2/users/:id/mentions"
    endpoint: str  # the rate-limit window and fault key
    handler: Callable


class ApiV2:
    def __init__(self, store: Store, faults: FaultPlan):
        self.store = store
        self.faults = faults
        self.base_url = ""  # the emulator's URL, set once bound: where media files are served
        self.routes = [
            self._route("GET", r"/2/users/me", "GET /2/users/me", "users_me", self.users_me),
            self._route(
                "GET", r"/2/users/(\d+)/mentions", "GET /2/users/:id/mentions", "mentions", self.users_mentions
            ),
            self._route(
                "GET",
                r"/2/users/by/username/(\w+)",
                "GET /2/users/by/username/:username",
                "users",
                self.user_by_username,
            ),
            self._route("GET", r"/2/users/(\d+)", "GET /2/users/:id", "users", self.user),
            self._route("GET", r"/2/users/(\d+)/tweets", "GET /2/users/:id/tweets", "user_tweets", self.users_tweets),
            self._route("GET", r"/2/users", "GET /2/users", "users", self.users),
            self._route("GET", r"/2/tweets/(\d+)", "GET /2/tweets/:id", "tweets", self.tweet),
            self._route("POST", r"/2/tweets", "POST /2/tweets", "create_tweet", self.create_tweet),
            self._route("DELETE", r"/2/tweets/(\d+)", "DELETE /2/tweets/:id", "delete_tweet", self.delete_tweet),
            self._route("GET", r"/2/dm_events", "GET /2/dm_events", "dm_events", self.dm_events),
            self._route(
                "GET",
                r"/2/dm_conversations/with/(\d+)/dm_events",
                "GET /2/dm_conversations/with/:participant_id/dm_events",
                "dm_conversation_events",
                self.dm_events_with_participant,
            ),
            self._route(
                "GET",
                r"/2/dm_conversations/([\d-]+)/dm_events",
                "GET /2/dm_conversations/:dm_conversation_id/dm_events",
                "dm_conversation_events",
                self.dm_events_of_conversation,
            ),
            self._route(
                "POST",
                r"/2/dm_conversations/with/(\d+)/messages",
                "POST /2/dm_conversations/with/:participant_id/messages",
                "dm_send",
                self.dm_to_participant,
            ),
            self._route(
                "POST",
                r"/2/dm_conversations/([\d-]+)/messages",
                "POST /2/dm_conversations/:dm_conversation_id/messages",
                "dm_send",
                self.dm_to_conversation,
            ),
        ]

    @staticmethod
    def _route(verb, pattern, name, endpoint, handler) -> Route:
        return Route(verb, re.compile(pattern), name, endpoint, handler)

    def resolve(self, verb: str, path: str) -> tuple[Route | None, tuple]:
        path = path.rstrip("/")
        for route in self.routes:
            match = route.pattern.fullmatch(path)
            if route.verb == verb and match:
                return route, match.groups()
        return None, ()

    # Users

    def users_me(self, query: dict, body: bytes) -> tuple[int, dict]:
        return 200, {"data": self.store.account.render()}

    def user(self, user_id: str, query: dict, body: bytes) -> tuple[int, dict]:
        return 200, self._users_answer([user_id], single=True)

    def user_by_username(self, username: str, query: dict, body: bytes) -> tuple[int, dict]:
        user = self.store.user_by_username(username)
        if user is None or user.suspended:
            return 200, {"errors": [user_not_found(username, "username")]}
        return 200, {"data": user.render()}

    def users(self, query: dict, body: bytes) -> tuple[int, dict]:
        ids = _csv(query, "ids")
        if not ids or len(ids) > 100 or not all(user_id.isdigit() for user_id in ids):
            raise invalid_request("ids", query.get("ids", ""), "ids must be 1 to 100 comma-separated user ids")
        return 200, self._users_answer(ids, single=False)

    def _users_answer(self, ids: list[str], single: bool) -> dict:
        found, errors = [], []
        for user_id in ids:
            user = self.store.user(user_id)
            if user is None or user.suspended:
                errors.append(user_not_found(user_id))
            else:
                found.append(user.render())
        answer = {}
        if found:
            answer["data"] = found[0] if single else found
        if errors:
            answer["errors"] = errors
        return answer

    # Posts

    def users_mentions(self, user_id: str, query: dict, body: bytes) -> tuple[int, dict]:
        max_results = _int_param(query, "max_results", default=10, low=5, high=100)
        user = self.store.user(user_id)
        if user is None or user.suspended:
            return 200, {"errors": [user_not_found(user_id)]}
        if user_id != self.store.account.id:
            return 200, {"meta": {"result_count": 0}}  # only the account's mentions are emulated
        ids = self.store.reachable_mention_ids()
        low, high = 0, len(ids)
        since_id, until_id = _id_param(query, "since_id"), _id_param(query, "until_id")
        if since_id is not None:
            low = bisect.bisect_right(ids, since_id)
        if until_id is not None:
            high = bisect.bisect_left(ids, until_id)
        start_time, end_time = _time_param(query, "start_time"), _time_param(query, "end_time")
        if start_time is not None:
            low = max(low, bisect.bisect_left(ids, start_time))
        if end_time is not None:
            high = min(high, bisect.bisect_left(ids, end_time))
        page_ids, next_token = self._page("mentions", ids[low:high], max_results, query)
        posts = [post for post in map(self.store.get_post, page_ids) if post is not None]
        fields, expansions = _post_fields(query), set(_csv(query, "expansions"))
        answer = self._with_users(
            [render_post(post, fields) for post in posts],
            [(post, expansions & POST_USER_EXPANSIONS.keys()) for post in posts],
        )
        self._with_media(answer, posts, query)
        meta = {"result_count": len(posts)}
        if posts:
            meta.update(newest_id=str(posts[0].id), oldest_id=str(posts[-1].id))
        if next_token:
            meta["next_token"] = next_token
        answer["meta"] = meta
        return 200, answer

    def users_tweets(self, user_id: str, query: dict, body: bytes) -> tuple[int, dict]:
        """A user's own posts, newest first (only the account's API posts are emulated)."""
        max_results = _int_param(query, "max_results", default=10, low=5, high=100)
        user = self.store.user(user_id)
        if user is None or user.suspended:
            return 200, {"errors": [user_not_found(user_id)]}
        posts = self.store.account_posts() if user_id == self.store.account.id else []
        ids = [post.id for post in posts]
        low, high = 0, len(ids)
        since_id, until_id = _id_param(query, "since_id"), _id_param(query, "until_id")
        start_time, end_time = _time_param(query, "start_time"), _time_param(query, "end_time")
        if since_id is not None:
            low = bisect.bisect_right(ids, since_id)
        if start_time is not None:
            low = max(low, bisect.bisect_left(ids, start_time))
        for bound in (until_id, end_time):
            if bound is not None:
                high = min(high, bisect.bisect_left(ids, bound))
        page_ids, next_token = self._page("user_tweets", ids[low:high], max_results, query)
        page = [post for post in map(self.store.get_post, page_ids) if post is not None]
        fields = _post_fields(query)
        answer = {"data": [render_post(post, fields) for post in page]} if page else {}
        meta = {"result_count": len(page)}
        if page:
            meta.update(newest_id=str(page[0].id), oldest_id=str(page[-1].id))
        if next_token:
            meta["next_token"] = next_token
        answer["meta"] = meta
        return 200, answer

    def tweet(self, post_id: str, query: dict, body: bytes) -> tuple[int, dict]:
        post = self.store.get_post(post_id)
        if post is None:
            return 200, {
                "errors": [
                    {
                        "value": post_id,
                        "detail": f"Could not find tweet with id: [{post_id}].",
                        "title": "Not Found Error",
                        "resource_type": "tweet",
                        "parameter": "id",
                        "resource_id": post_id,
                        "type": "https://api.twitter.com/2/problems/resource-not-found",
                    }
                ]
            }
        fields, expansions = _post_fields(query), set(_csv(query, "expansions"))
        answer = self._with_users([render_post(post, fields)], [(post, expansions & POST_USER_EXPANSIONS.keys())])
        self._with_media(answer, [post], query)
        answer["data"] = answer["data"][0]
        return 200, answer

    def create_tweet(self, query: dict, body: bytes) -> tuple[int, dict]:
        payload = _json_body(body)
        text = payload.get("text")
        reply = payload.get("reply") or {}
        if not isinstance(text, str | None) or not isinstance(reply, dict):
            raise invalid_request("text", text, "text must be a string and reply an object")
        post = self.store.account_post(text or "", reply.get("in_reply_to_tweet_id"), payload.get("quote_tweet_id"))
        return 201, {"data": {"id": str(post.id), "text": post.text, "edit_history_tweet_ids": [str(post.id)]}}

    def delete_tweet(self, post_id: str, query: dict, body: bytes) -> tuple[int, dict]:
        return 200, {"data": {"deleted": self.store.delete_post(post_id, by_account=True)}}

    # Direct messages

    def dm_events(self, query: dict, body: bytes) -> tuple[int, dict]:
        return self._dm_events_page("dm_events", self.store.dm_events(), query)

    def dm_events_with_participant(self, participant_id: str, query: dict, body: bytes) -> tuple[int, dict]:
        conversation_id = dm_conversation_id(self.store.account.id, participant_id)
        return self.dm_events_of_conversation(conversation_id, query, body)

    def dm_events_of_conversation(self, conversation_id: str, query: dict, body: bytes) -> tuple[int, dict]:
        events = [event for event in self.store.dm_events() if event.conversation_id == conversation_id]
        return self._dm_events_page("dm_conversation_events", events, query)

    def _dm_events_page(self, endpoint: str, all_events: list[DmEvent], query: dict) -> tuple[int, dict]:
        max_results = _int_param(query, "max_results", default=100, low=1, high=100)
        event_types = set(_csv(query, "event_types")) or DEFAULT_DM_EVENT_TYPES
        events = {event.id: event for event in all_events} if "MessageCreate" in event_types else {}
        page_ids, next_token = self._page(endpoint, list(events), max_results, query)
        page = [events[event_id] for event_id in page_ids]
        fields, expansions = set(_csv(query, "dm_event.fields")), set(_csv(query, "expansions"))
        if MEDIA_EXPANSION in expansions:
            fields.add("attachments")
        answer = self._with_users(
            [render_dm_event(event, fields) for event in page],
            [(event, expansions & DM_USER_EXPANSIONS.keys()) for event in page],
        )
        self._with_media(answer, page, query)
        answer["meta"] = {"result_count": len(page), **({"next_token": next_token} if next_token else {})}
        return 200, answer

    def dm_to_participant(self, participant_id: str, query: dict, body: bytes) -> tuple[int, dict]:
        payload = _json_body(body)
        return self._dm_sent(self.store.account_dm(*_dm_content(payload), participant_id=participant_id))

    def dm_to_conversation(self, conversation_id: str, query: dict, body: bytes) -> tuple[int, dict]:
        payload = _json_body(body)
        return self._dm_sent(self.store.account_dm(*_dm_content(payload), conversation_id=conversation_id))

    @staticmethod
    def _dm_sent(event: DmEvent) -> tuple[int, dict]:
        return 201, {"data": {"dm_conversation_id": event.conversation_id, "dm_event_id": str(event.id)}}

    # Shared shaping

    def _page(self, endpoint: str, ids: list[int], max_results: int, query: dict) -> tuple[list[int], str | None]:
        """One page of ascending `ids`, newest first, and the token of the next (older) page.

        A token names the oldest id of the page that issued it. With the
        repeated-page fault armed, a paginated call gets the issuing page again
        (and the same token, so the client still gets through).
        """
        token = query.get("pagination_token")
        if token:
            cursor = _decode_token(token)
            if self.faults.take_repeated_page(endpoint):
                start = bisect.bisect_left(ids, cursor)
                return ids[start : start + max_results][::-1], token
            ids = ids[: bisect.bisect_left(ids, cursor)]
        page = ids[-max_results:][::-1]
        return page, (_encode_token(page[-1]) if len(ids) > max_results else None)

    def _with_media(self, answer: dict, items: list[Post | DmEvent], query: dict) -> None:
        """includes.media for ``expansions=attachments.media_keys``; a deleted item is left out, as X does."""
        if MEDIA_EXPANSION not in _csv(query, "expansions"):
            return
        fields = set(_csv(query, "media.fields"))
        keys = dict.fromkeys(key for item in items for key in item.media_keys)
        media = [m.render(fields, self.base_url) for m in map(self.store.media, keys) if m is not None]
        if media:
            answer.setdefault("includes", {})["media"] = media

    def _with_users(self, data: list[dict], expanded: list[tuple]) -> dict:
        """{"data", "includes": {"users"}, "errors"}; suspended users are left out of includes, as on X."""
        answer, users, errors, seen = {}, [], [], set()
        if data:
            answer["data"] = data
        for item, names in expanded:
            for name in sorted(names):
                user_id = getattr(item, name)
                if user_id is None or user_id in seen:
                    continue
                seen.add(user_id)
                user: User | None = self.store.user(user_id)
                if user is None or user.suspended:
                    errors.append(user_not_found(user_id, name))
                else:
                    users.append(user.render())
        if users:
            answer["includes"] = {"users": users}
        if errors:
            answer["errors"] = errors
        return answer


def render_post(post: Post, fields: set[str]) -> dict:
    data = {"id": str(post.id), "text": post.text, "edit_history_tweet_ids": [str(post.id)]}
    if post.withheld_in is not None:
        data["text"] = ""
        data["withheld"] = {"copyright": False, "country_codes": post.withheld_in}
    elif len(post.text) > MAX_POST_WEIGHT:
        data["text"] = post.text[:MAX_POST_WEIGHT]
        data["note_tweet"] = {"text": post.text}
    if "author_id" in fields:
        data["author_id"] = post.author_id
    if "conversation_id" in fields:
        data["conversation_id"] = str(post.conversation_id)
    if "created_at" in fields:
        data["created_at"] = snowflake_time(post.id)
    if "in_reply_to_user_id" in fields and post.in_reply_to_user_id:
        data["in_reply_to_user_id"] = post.in_reply_to_user_id
    if "referenced_tweets" in fields:
        references = [("replied_to", post.replied_to_id), ("quoted", post.quoted_id)]
        references = [{"type": kind, "id": str(ref_id)} for kind, ref_id in references if ref_id]
        if references:
            data["referenced_tweets"] = references
    if "attachments" in fields and post.media_keys:
        data["attachments"] = {"media_keys": list(post.media_keys)}
    return data


def _post_fields(query: dict) -> set[str]:
    """tweet.fields, plus ``attachments`` when its media are expanded (X returns the keys with them)."""
    fields = set(_csv(query, "tweet.fields"))
    if MEDIA_EXPANSION in _csv(query, "expansions"):
        fields.add("attachments")
    return fields


def render_dm_event(event: DmEvent, fields: set[str]) -> dict:
    # id, event_type and text come by default (see the recorded dm_events fixture); the rest on request.
    data = {"id": str(event.id), "event_type": "MessageCreate", "text": event.text}
    if "sender_id" in fields:
        data["sender_id"] = event.sender_id
    if "dm_conversation_id" in fields:
        data["dm_conversation_id"] = event.conversation_id
    if "created_at" in fields:
        data["created_at"] = snowflake_time(event.id)
    keys = list(event.media_keys) or [str(item.get("media_id")) for item in event.attachments]
    if "attachments" in fields and keys:
        data["attachments"] = {"media_keys": keys}
    return data


def _dm_content(payload: dict) -> tuple[str | None, list]:
    text, attachments = payload.get("text"), payload.get("attachments") or []
    if not isinstance(text, str | None) or not isinstance(attachments, list):
        raise invalid_request("text", text, "text must be a string and attachments a list")
    return text, [item for item in attachments if isinstance(item, dict)]


def _json_body(body: bytes) -> dict:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise XError(
            400,
            {
                "title": "Invalid Request",
                "type": "https://api.twitter.com/2/problems/invalid-request",
                "detail": "The request body is not a JSON object.",
            },
        )
    return payload


def _csv(query: dict, name: str) -> list[str]:
    return [item for item in query.get(name, "").split(",") if item]


def _int_param(query: dict, name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise invalid_request(name, raw, f"The `{name}` query parameter value [{raw}] is not between {low} and {high}")
    return int(raw)


def _id_param(query: dict, name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise invalid_request(name, raw, f"The `{name}` query parameter value [{raw}] is not a valid id")
    return int(raw)


def _time_param(query: dict, name: str) -> int | None:
    """start_time/end_time as the lowest snowflake of that instant (ids carry their creation time)."""
    raw = query.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise invalid_request(name, raw, f"The `{name}` query parameter value [{raw}] is not an RFC 3339 time")
    return max(int(moment.timestamp() * 1000) - TWITTER_EPOCH_MS, 0) << 22


def _encode_token(cursor: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    token = ""
    while cursor:
        cursor, digit = divmod(cursor, 36)
        token = digits[digit] + token
    return token or "0"


def _decode_token(token: str) -> int:
    try:
        return int(token, 36)
    except ValueError:
        raise invalid_request(
            "pagination_token", token, "The `pagination_token` query parameter value is invalid"
        ) from None
