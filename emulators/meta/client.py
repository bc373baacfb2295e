"""Python client for the emulator's control API, for an emulator in this process or elsewhere.

The method signatures are the stable API the helpdesk's tests use; see the package docstring.
"""

import base64
from collections.abc import Iterable

from ..common import ControlClient, EmulatorControlError

__all__ = ["GRAPH_VERSION", "EmulatorControlError", "MetaEmulatorClient"]

GRAPH_VERSION = "v25.0"


def _clean(payload: dict) -> dict:
    return {key: value for key, value in payload.items() if value is not None}


class MetaEmulatorClient(ControlClient):
    """``url`` stands in for https://graph.facebook.com; ``base_url`` is the versioned Graph base."""

    @property
    def base_url(self) -> str:
        """What a channel's ``base_url`` config takes: ``http://127.0.0.1:PORT/v25.0``."""
        return f"{self.url}/{GRAPH_VERSION}"

    def reset(self) -> None:
        """No accounts, people, messages or templates; webhook, receipt, usage and fault settings as started."""
        self._call("POST", "reset")

    # -- accounts -----------------------------------------------------------------------------

    def add_page(
        self,
        page_id: str | None = None,
        name: str = "IT Help",
        token: str | None = None,
        app_secret: str | None = None,
        verify_token: str | None = None,
        webhook_url: str | None = None,
        human_agent: bool = True,
        handshake: bool = True,
    ) -> dict:
        """A Facebook Page (Messenger + Page comments). Returns the account with its token, secrets and, with a
        ``webhook_url``, ``handshake`` = {"passed", "status", "body", ...}: the URL is registered only if the GET
        hub.challenge handshake passed (or ``handshake=False``)."""
        payload = {
            "id": page_id,
            "name": name,
            "token": token,
            "app_secret": app_secret,
            "verify_token": verify_token,
            "webhook_url": webhook_url,
            "human_agent": human_agent,
            "handshake": handshake,
        }
        return self._call("POST", "accounts/page", _clean(payload))

    def add_instagram(
        self,
        page_id: str,
        ig_user_id: str | None = None,
        username: str = "ithelp",
        name: str = "IT Help",
        verify_token: str | None = None,
        webhook_url: str | None = None,
        human_agent: bool = True,
        handshake: bool = True,
    ) -> dict:
        """An Instagram professional account linked to ``page_id``; it shares the Page's token and app secret."""
        payload = {
            "id": ig_user_id,
            "page_id": page_id,
            "username": username,
            "name": name,
            "verify_token": verify_token,
            "webhook_url": webhook_url,
            "human_agent": human_agent,
            "handshake": handshake,
        }
        return self._call("POST", "accounts/instagram", _clean(payload))

    def add_whatsapp(
        self,
        phone_number_id: str | None = None,
        waba_id: str | None = None,
        display_phone_number: str = "15550001234",
        verified_name: str = "IT Help",
        token: str | None = None,
        app_secret: str | None = None,
        verify_token: str | None = None,
        webhook_url: str | None = None,
        handshake: bool = True,
    ) -> dict:
        """A WhatsApp Cloud API number in a WhatsApp Business Account (``waba_id``)."""
        payload = {
            "id": phone_number_id,
            "waba_id": waba_id,
            "display_phone_number": display_phone_number,
            "name": verified_name,
            "token": token,
            "app_secret": app_secret,
            "verify_token": verify_token,
            "webhook_url": webhook_url,
            "handshake": handshake,
        }
        return self._call("POST", "accounts/whatsapp", _clean(payload))

    def accounts(self) -> list[dict]:
        return self._call("GET", "accounts")["accounts"]

    def set_webhook(self, account_id: str, url: str | None, handshake: bool = True) -> dict:
        """(Re)register an account's callback URL after the GET handshake (``url=None`` unregisters);
        returns {"url" (what is registered now), "handshake": {"passed", "status", "body", "challenge"}}."""
        return self._call("POST", "webhook", {"account_id": account_id, "url": url, "handshake": handshake})

    # -- people: Messenger and Instagram ------------------------------------------------------

    def dm(
        self,
        account_id: str,
        text: str = "",
        sender_id: str | None = None,
        name: str | None = None,
        username: str | None = None,
        attachments: Iterable[dict] = (),
        at: float | None = None,
    ) -> dict:
        """A person DMs a Page or an Instagram account. Without ``sender_id`` the person is found by ``name`` or
        created. ``attachments``: [{"content": bytes, "mime_type"?, "filename"?, "type"? (image, video, audio,
        file)}]. ``at``: Unix time it was sent (to age the window). Returns {"mid", "sender_id",
        "conversation_id", "timestamp", "attachment_urls", "push_id"}."""
        payload = {
            "account_id": account_id,
            "text": text,
            "sender_id": sender_id,
            "name": name,
            "username": username,
            "attachments": [_encode(item) for item in attachments],
            "at": at,
        }
        return self._call("POST", "dms", _clean(payload))

    def edit_dm(self, account_id: str, mid: str, text: str) -> dict:
        """The person edits their message: a ``message_edit`` event with ``num_edit``."""
        return self._call("POST", "dms/edit", {"account_id": account_id, "mid": mid, "text": text})

    def unsend_dm(self, account_id: str, mid: str) -> dict:
        """The person unsends their Instagram message: ``message.is_deleted``."""
        return self._call("POST", "dms/unsend", {"account_id": account_id, "mid": mid})

    def react(self, account_id: str, mid: str, sender_id: str, emoji: str = "❤️", remove: bool = False) -> dict:
        """The person reacts to a message of their conversation (``remove``: unreact)."""
        payload = {"account_id": account_id, "mid": mid, "sender_id": sender_id, "emoji": emoji, "remove": remove}
        return self._call("POST", "dms/react", payload)

    # -- people: comments ---------------------------------------------------------------------

    def add_post(self, account_id: str, text: str = "", at: float | None = None) -> dict:
        """The business publishes a Page post or an Instagram media item; returns {"id", ...}."""
        return self._call("POST", "posts", _clean({"account_id": account_id, "text": text, "at": at}))

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
        """A person comments on a post/media item (or replies to comment ``parent_id``); returns {"comment_id",
        "post_id", "parent_id" (the top-level comment), "sender_id", "timestamp", "push_id"}."""
        payload = {
            "account_id": account_id,
            "post_id": post_id,
            "text": text,
            "sender_id": sender_id,
            "name": name,
            "username": username,
            "parent_id": parent_id,
            "at": at,
        }
        return self._call("POST", "comments", _clean(payload))

    def edit_comment(self, account_id: str, comment_id: str, text: str) -> dict:
        """A Page comment edited by its author (feed ``verb: edited``)."""
        return self._call("POST", "comments/edit", {"account_id": account_id, "comment_id": comment_id, "text": text})

    def remove_comment(self, account_id: str, comment_id: str) -> dict:
        """A Page comment deleted by its author (feed ``verb: remove``)."""
        return self._call("POST", "comments/remove", {"account_id": account_id, "comment_id": comment_id})

    # -- people: WhatsApp ---------------------------------------------------------------------

    def whatsapp(
        self,
        account_id: str,
        text: str = "",
        wa_id: str | None = None,
        name: str | None = None,
        type: str = "text",
        content: bytes | None = None,
        mime_type: str | None = None,
        filename: str | None = None,
        caption: str | None = None,
        voice: bool = False,
        reply_to: str | None = None,
        at: float | None = None,
    ) -> dict:
        """A person writes to a WhatsApp number: ``text``, or ``type`` image/audio/video/document/sticker with
        ``content`` bytes (``voice=True``: an audio voice note). Returns {"wamid", "wa_id", "media_id",
        "timestamp", "push_id"}; the media is served at ``GET /{media_id}`` and its download URL."""
        payload = {
            "account_id": account_id,
            "text": text,
            "wa_id": wa_id,
            "name": name,
            "type": type,
            "content_base64": base64.b64encode(content).decode() if content is not None else None,
            "mime_type": mime_type,
            "filename": filename,
            "caption": caption,
            "voice": voice,
            "reply_to": reply_to,
            "at": at,
        }
        return self._call("POST", "whatsapp", _clean(payload))

    def whatsapp_react(self, account_id: str, wa_id: str, wamid: str, emoji: str = "👍") -> dict:
        """A reaction to a message (``emoji=""`` removes it)."""
        payload = {"account_id": account_id, "wa_id": wa_id, "wamid": wamid, "emoji": emoji}
        return self._call("POST", "whatsapp/react", payload)

    def whatsapp_edit(self, account_id: str, wa_id: str, wamid: str, text: str) -> dict:
        payload = {"account_id": account_id, "wa_id": wa_id, "wamid": wamid, "text": text}
        return self._call("POST", "whatsapp/edit", payload)

    def whatsapp_revoke(self, account_id: str, wa_id: str, wamid: str) -> dict:
        return self._call("POST", "whatsapp/revoke", {"account_id": account_id, "wa_id": wa_id, "wamid": wamid})

    def fail_next_whatsapp(self, account_id: str, code: int = 131026, count: int = 1) -> None:
        """The next ``count`` sends of the number are accepted, then reported ``failed`` with error ``code``
        (131026 undeliverable, 131047, 131049, 131050, 130472)."""
        self._call("POST", "whatsapp/fail", {"account_id": account_id, "code": code, "count": count})

    def add_template(
        self,
        waba_id: str,
        name: str,
        body: str,
        language: str = "en_US",
        category: str = "UTILITY",
        status: str = "APPROVED",
    ) -> dict:
        """A message template (its BODY ``body`` with ``{{1}}``...) of a WhatsApp Business Account."""
        payload = {
            "waba_id": waba_id,
            "name": name,
            "body": body,
            "language": language,
            "category": category,
            "status": status,
        }
        return self._call("POST", "templates", payload)

    # -- what the business did ----------------------------------------------------------------

    def sent(self, account_id: str | None = None) -> list[dict]:
        """What the business sent, oldest first: {"account_id", "product", "kind" (dm, private_reply,
        comment_reply, whatsapp), "id", "text", ...}."""
        return self._call("GET", "sent", query=_clean({"account_id": account_id}))["sent"]

    # -- webhooks -----------------------------------------------------------------------------

    def webhooks(self, account_id: str | None = None) -> dict:
        """{"pushes": [{"id", "account_id", "body", "attempts", "outcome"}], "attempts": [...], "pending",
        "drop_next"}; outcome is pending, delivered, failed (retries exhausted), dropped or no_url."""
        return self._call("GET", "webhooks", query=_clean({"account_id": account_id}))

    def pushed(self, account_id: str | None = None) -> list[dict]:
        """The bodies of the pushes delivered, oldest first."""
        return [p["body"] for p in self.webhooks(account_id)["pushes"] if p["outcome"] == "delivered"]

    def push_raw(self, account_id: str, body: dict) -> str:
        """Push ``body`` as it is (e.g. a recorded fixture: a WhatsApp ``system`` or ``unsupported`` message) to
        the account's URL, signed with its app secret and retried like any push; returns the push id."""
        return self._call("POST", "webhooks/push", {"account_id": account_id, "body": body})["push_id"]

    def drop_webhooks(self, count: int = 1) -> int:
        """Lose the next ``count`` pushes (never sent, never retried), so that a poll has to find them."""
        return self._call("POST", "webhooks/drop", {"count": count})["drop_next"]

    def wait_for_webhooks(self, timeout: float = 10.0) -> bool:
        """Block until every queued push (retries and delayed receipts included) is delivered or given up."""
        return self._call("POST", "webhooks/wait", {"timeout": timeout}, timeout=timeout + self.timeout)["idle"]

    def configure_webhooks(self, retry_delays: Iterable[float] | None = None, timeout: float | None = None) -> dict:
        """Retry delays (one retry per delay) and the time the helpdesk has to answer a push."""
        payload = {"retry_delays": list(retry_delays) if retry_delays is not None else None, "timeout": timeout}
        return self._call("POST", "webhooks/config", payload)

    def set_receipts(
        self,
        enabled: bool | None = None,
        sent_delay: float | None = None,
        delivered_delay: float | None = None,
        read_delay: float | None = None,
    ) -> dict:
        """The pushes after a business send: Messenger delivery + read, Instagram read, WhatsApp statuses
        sent/delivered/read, each ``*_delay`` seconds after the send (``enabled=False``: none)."""
        payload = {
            "enabled": enabled,
            "sent_delay": sent_delay,
            "delivered_delay": delivered_delay,
            "read_delay": read_delay,
        }
        return self._call("POST", "receipts", _clean(payload))

    # -- tokens, usage, faults ----------------------------------------------------------------

    def revoke_token(self, token: str, expired: bool = False) -> None:
        """Calls with the token answer 190 (subcode 460 revoked, or 463 expired)."""
        self._call("POST", "tokens", {"token": token, "revoked": True, "expired": expired})

    def restore_token(self, token: str) -> None:
        self._call("POST", "tokens", {"token": token, "revoked": False})

    def set_budget(self, scope: str, calls: int, window_seconds: float = 3600) -> dict:
        """Allow ``calls`` per sliding ``window_seconds`` in ``scope``: "app" (code 4), an account id (Page
        80001, Instagram 80002, WhatsApp business account id 80007) or an endpoint name (613)."""
        payload = {"scope": scope, "calls": calls, "window_seconds": window_seconds}
        return self._call("POST", "usage/budget", payload)

    def set_usage(self, scope: str, percent: int | None, regain_minutes: int = 0) -> dict:
        """Report at least ``percent`` for ``scope`` in the usage headers (>= 100 throttles); None clears."""
        payload = {"scope": scope, "percent": percent, "regain_minutes": regain_minutes}
        return self._call("POST", "usage", payload)

    def usage(self) -> dict:
        return self._call("GET", "usage")

    def fault(
        self, endpoint: str, status: int = 500, code: int | None = None, message: str | None = None, count: int = 1
    ) -> None:
        """The next ``count`` calls of an endpoint (see ``emulators.meta.graph.ENDPOINTS``) answer a Graph error."""
        payload = {"endpoint": endpoint, "status": status, "code": code, "message": message, "count": count}
        self._call("POST", "faults", _clean(payload))

    def fault_after_write(self, endpoint: str, delay: float = 0, reset: bool = False, count: int = 1) -> None:
        """The next ``count`` POSTs of an endpoint do their work, then answer ``delay`` seconds late or reset."""
        payload = {"endpoint": endpoint, "delay": delay, "reset": reset, "count": count}
        self._call("POST", "faults/after_write", payload)

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def stats(self) -> dict:
        """{"calls": {"GET conversations": n, ...}, "usage": {...}}."""
        return self._call("GET", "stats")


def _encode(item: dict) -> dict:
    encoded = {key: value for key, value in item.items() if key != "content"}
    encoded["content_base64"] = base64.b64encode(item["content"]).decode()
    return encoded
