"""Control API under /_emulator/: JSON endpoints that tests and demos use to play
the people on X and to inspect or break the emulator. No auth. Errors are
HTTP 4xx with {"error": "..."}.
"""

import base64
import binascii
from collections.abc import Callable

from ..common import AfterWrite, ControlError, ControlRoutes, required_field
from .api_v2 import WITHHELD_COUNTRIES
from .auth import Credentials
from .billing import ReadBilling
from .store import DmEvent, Post, Store, XError, snowflake_time
from .traffic import DEFAULT_RATE_LIMITS, CallStats, FaultPlan, RateLimiter


def _text(payload: dict, media: list) -> str:
    """A post or DM needs text unless it carries media."""
    return str(payload.get("text") or "") if media else required_field(payload, "text")


def _optional_id(payload: dict, name: str) -> str | None:
    return required_field(payload, name) if payload.get(name) is not None else None


def _base64(value, name: str) -> bytes:
    if not isinstance(value, str):
        raise ControlError(f"{name} is required (base64)")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ControlError(f"{name} is not base64") from None


def _media(payload: dict) -> list[dict]:
    """The "media" of a control post or DM: [{"type", "content_base64" (a photo), "content_type"?,
    "preview_base64"?, "variants"? [{"content_base64", "content_type"?, "bit_rate"?}], "alt_text"?,
    "width"?, "height"?}] decoded for the store."""
    items = payload.get("media") or []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ControlError("media must be a list of objects")
    decoded = []
    for item in items:
        spec = {key: item[key] for key in ("type", "content_type", "alt_text", "width", "height") if key in item}
        if item.get("type", "photo") == "photo":
            spec["data"] = _base64(item.get("content_base64"), "content_base64")
        if item.get("preview_base64") is not None:
            spec["preview"] = _base64(item["preview_base64"], "preview_base64")
        spec["variants"] = [
            {**variant, "data": _base64(variant.get("content_base64"), "variants[].content_base64")}
            for variant in item.get("variants") or ()
        ]
        decoded.append(spec)
    return decoded


def post_record(post: Post) -> dict:
    return {
        "id": str(post.id),
        "author_id": post.author_id,
        "text": post.text,
        "conversation_id": str(post.conversation_id),
        "in_reply_to_tweet_id": str(post.replied_to_id) if post.replied_to_id else None,
        "in_reply_to_user_id": post.in_reply_to_user_id,
        "quote_tweet_id": str(post.quoted_id) if post.quoted_id else None,
        "media_keys": list(post.media_keys),
        "created_at": snowflake_time(post.id),
    }


def dm_record(event: DmEvent) -> dict:
    return {
        "dm_event_id": str(event.id),
        "dm_conversation_id": event.conversation_id,
        "sender_id": event.sender_id,
        "recipient_id": event.recipient_id,
        "text": event.text,
        "attachments": event.attachments,
        "media_keys": list(event.media_keys),
        "created_at": snowflake_time(event.id),
    }


class ControlApi(ControlRoutes):
    platform_errors = (XError,)

    def __init__(
        self,
        store: Store,
        credentials: Credentials,
        faults: FaultPlan,
        rate_limits: RateLimiter,
        stats: CallStats,
        reset: Callable[[], None],
        billing: ReadBilling | None = None,
    ):
        super().__init__(reset)
        self.store = store
        self.credentials = credentials
        self.faults = faults
        self.rate_limits = rate_limits
        self.stats = stats
        self.billing = billing or ReadBilling()
        self._routes = {
            ("POST", "reset"): self.reset,
            ("POST", "users"): self.add_user,
            ("POST", "posts"): self.add_post,
            ("POST", "posts/bulk"): self.add_posts,
            ("POST", "posts/delete"): self.delete_post,
            ("POST", "posts/withhold"): self.withhold_post,
            ("POST", "dms"): self.add_dm,
            ("POST", "media/delete"): self.delete_media,
            ("GET", "account_posts"): self.list_account_posts,
            ("GET", "account_dms"): self.list_account_dms,
            ("POST", "rate_limits"): self.set_rate_limit,
            ("POST", "faults"): self.arm_fault,
            ("DELETE", "faults"): self.clear_faults,
            ("POST", "faults/after_write"): self.arm_after_write,
            ("POST", "tokens"): self.set_tokens,
            ("GET", "stats"): self.read_stats,
            ("GET", "billing"): self.read_billing,
        }

    def platform_error(self, exc: XError) -> tuple[int, dict]:
        return exc.status, {"error": exc.body.get("detail", "")}

    def add_user(self, payload: dict) -> dict:
        user = self.store.add_user(
            payload.get("username"),
            payload.get("name"),
            _optional_id(payload, "id"),
            suspended=bool(payload.get("suspended", False)),
        )
        return {**user.render(), "suspended": user.suspended}

    def add_post(self, payload: dict) -> dict:
        media = _media(payload)
        post = self.store.post(
            required_field(payload, "author_id"),
            _text(payload, media),
            _optional_id(payload, "in_reply_to_tweet_id"),
            _optional_id(payload, "quote_tweet_id"),
            media,
        )
        return post_record(post)

    def add_posts(self, payload: dict) -> dict:
        posts = required_field(payload, "posts", list)
        if not all(isinstance(post, dict) for post in posts):
            raise ControlError("posts must be objects")
        return {"ids": [str(post_id) for post_id in self.store.post_many(posts)]}

    def delete_post(self, payload: dict) -> dict:
        return {"deleted": self.store.delete_post(required_field(payload, "id"))}

    def withhold_post(self, payload: dict) -> dict:
        countries = payload.get("country_codes") or WITHHELD_COUNTRIES
        return post_record(self.store.withhold(required_field(payload, "id"), countries))

    def add_dm(self, payload: dict) -> dict:
        media = _media(payload)
        return dm_record(self.store.dm_to_account(required_field(payload, "sender_id"), _text(payload, media), media))

    def delete_media(self, payload: dict) -> dict:
        return {"deleted": self.store.delete_media(required_field(payload, "media_key"))}

    def list_account_posts(self, payload: dict) -> dict:
        return {"posts": [post_record(post) for post in self.store.account_posts()]}

    def list_account_dms(self, payload: dict) -> dict:
        return {"dms": [dm_record(event) for event in self.store.account_dms()]}

    def set_rate_limit(self, payload: dict) -> dict:
        self.rate_limits.configure(
            required_field(payload, "endpoint"),
            int(required_field(payload, "limit", int)),
            float(payload.get("window_seconds", 900)),
        )
        return self.rate_limits.snapshot()

    def arm_fault(self, payload: dict) -> dict:
        endpoint = required_field(payload, "endpoint")
        if endpoint not in DEFAULT_RATE_LIMITS:
            raise ControlError(f"unknown endpoint {endpoint!r}; one of {sorted(DEFAULT_RATE_LIMITS)}")
        if payload.get("repeat_ids_once"):
            if endpoint not in ("mentions", "dm_events"):
                raise ControlError("repeat_ids_once applies to the paginated endpoints: mentions, dm_events")
            self.faults.arm_repeated_page(endpoint)
        if "status" in payload:
            self.faults.arm(endpoint, int(payload.get("count", 1)), int(payload["status"]))
        return {}

    def arm_after_write(self, payload: dict) -> dict:
        endpoint = required_field(payload, "endpoint")
        if endpoint not in DEFAULT_RATE_LIMITS:
            raise ControlError(f"unknown endpoint {endpoint!r}; one of {sorted(DEFAULT_RATE_LIMITS)}")
        self.faults.arm_after_write(endpoint, AfterWrite.build(payload))
        return {}

    def clear_faults(self, payload: dict) -> dict:
        self.faults.clear()
        return {}

    def set_tokens(self, payload: dict) -> dict:
        self.credentials.set_revoked(bool(payload.get("revoked", True)), payload.get("token"))
        return {}

    def read_billing(self, payload: dict) -> dict:
        return self.billing.snapshot()

    def read_stats(self, payload: dict) -> dict:
        return {**self.stats.snapshot(), "rate_limits": self.rate_limits.snapshot()}
