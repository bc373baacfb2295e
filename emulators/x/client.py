"""Python client for the emulator's control API, for an emulator in this process or elsewhere."""

import base64
from collections.abc import Iterable

from ..common import ControlClient, EmulatorControlError

__all__ = ["EmulatorControlError", "XEmulatorClient"]


class XEmulatorClient(ControlClient):
    """`url` is also the app's base URL for X: it stands in for https://api.twitter.com."""

    def reset(self) -> None:
        """Back to the account alone, fresh rate-limit windows, no faults, tokens valid."""
        self._call("POST", "reset")

    def add_user(
        self, username: str | None = None, name: str | None = None, user_id: str | None = None, suspended: bool = False
    ) -> dict:
        """Create a user (id generated if absent), or update a known user_id, e.g. to suspend it."""
        payload = {"id": user_id, "username": username, "name": name, "suspended": suspended}
        return self._call("POST", "users", payload)

    def post(
        self,
        author_id: str,
        text: str,
        in_reply_to_tweet_id: str | None = None,
        quote_tweet_id: str | None = None,
        media: Iterable[dict] = (),
    ) -> dict:
        """A user posts publicly; "@<account>" in the text or replying to the account makes it a mention.

        ``media`` (up to 4): {"type": "photo", "content": bytes, "content_type"?, "alt_text"?} or
        {"type": "video"|"animated_gif", "variants": [{"content": bytes, "content_type"?, "bit_rate"?}],
        "preview"?: bytes}. The answer's "media_keys" name them in includes.media.
        """
        payload = {
            "author_id": author_id,
            "text": text,
            "in_reply_to_tweet_id": in_reply_to_tweet_id,
            "quote_tweet_id": quote_tweet_id,
            "media": [_encode_media(item) for item in media],
        }
        return self._call("POST", "posts", payload)

    def post_many(self, posts: Iterable[dict]) -> list[str]:
        """Store many {"author_id", "text", "in_reply_to_tweet_id"?, "quote_tweet_id"?} posts; returns their ids."""
        return self._call("POST", "posts/bulk", {"posts": list(posts)})["ids"]

    def delete_post(self, post_id: str) -> bool:
        return self._call("POST", "posts/delete", {"id": post_id})["deleted"]

    def withhold_post(self, post_id: str, country_codes: Iterable[str] | None = None) -> dict:
        payload = {"id": post_id, "country_codes": list(country_codes) if country_codes else None}
        return self._call("POST", "posts/withhold", payload)

    def dm_from(self, sender_id: str, text: str, media: Iterable[dict] = ()) -> dict:
        """A user sends the account a DM, with at most one ``media`` item (as for ``post``); returns
        {"dm_event_id", "dm_conversation_id", "media_keys", ...}. DM media is served to OAuth 1.0a only."""
        payload = {"sender_id": sender_id, "text": text, "media": [_encode_media(item) for item in media]}
        return self._call("POST", "dms", payload)

    def delete_media(self, media_key: str) -> bool:
        """Forget a media item: it is then missing from includes.media, and its files answer 404."""
        return self._call("POST", "media/delete", {"media_key": media_key})["deleted"]

    def account_posts(self) -> list[dict]:
        """What the account posted with POST /2/tweets and has not deleted, oldest first."""
        return self._call("GET", "account_posts")["posts"]

    def account_dms(self) -> list[dict]:
        """The DMs the account sent through the API, oldest first."""
        return self._call("GET", "account_dms")["dms"]

    def set_rate_limit(self, endpoint: str, limit: int, window_seconds: float = 900) -> dict:
        """Replace an endpoint's window ("mentions", "dm_events", "create_tweet", "dm_send", ...)."""
        return self._call(
            "POST", "rate_limits", {"endpoint": endpoint, "limit": limit, "window_seconds": window_seconds}
        )

    def fault(self, endpoint: str, status: int | None = None, count: int = 1, repeat_ids_once: bool = False) -> None:
        """Make the next `count` calls of an endpoint answer `status` (problem JSON), and/or make
        the next paginated call of "mentions" or "dm_events" repeat the previous page."""
        payload = {"endpoint": endpoint, "count": count, "repeat_ids_once": repeat_ids_once}
        if status is not None:
            payload["status"] = status
        self._call("POST", "faults", payload)

    def fault_after_write(self, endpoint: str, delay: float = 0, reset: bool = False, count: int = 1) -> None:
        """Let the next `count` calls of an endpoint ("create_tweet", "dm_send") do their work, then answer
        `delay` seconds late, or reset the connection instead of answering (`reset`)."""
        payload = {"endpoint": endpoint, "delay": delay, "reset": reset, "count": count}
        self._call("POST", "faults/after_write", payload)

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def set_tokens(self, revoked: bool = True, token: str | None = None) -> None:
        """Revoke (or restore) one token, or by default the bearer and the OAuth 1.0a access token."""
        self._call("POST", "tokens", {"revoked": revoked, "token": token})

    def billing(self) -> dict:
        """What X would bill for reads: {"returned": {kind: n}, "billed": {kind: n}} with kinds post, dm_event,
        user and media; a resource is billed once per UTC day however often it is returned."""
        return self._call("GET", "billing")

    def stats(self) -> dict:
        """{"calls": {"GET /2/users/:id/mentions": n, ...}, "rate_limits": {endpoint: {...}}}."""
        return self._call("GET", "stats")


def _encode_media(item: dict) -> dict:
    encoded = {key: value for key, value in item.items() if key not in ("content", "preview", "variants")}
    if item.get("content") is not None:
        encoded["content_base64"] = base64.b64encode(item["content"]).decode()
    if item.get("preview") is not None:
        encoded["preview_base64"] = base64.b64encode(item["preview"]).decode()
    encoded["variants"] = [
        {
            **{k: v for k, v in variant.items() if k != "content"},
            "content_base64": base64.b64encode(variant["content"]).decode(),
        }
        for variant in item.get("variants") or ()
    ]
    return encoded
