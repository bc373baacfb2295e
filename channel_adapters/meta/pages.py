"""What Messenger (a Facebook Page's DMs) and Instagram DMs share: both run on the Messenger Platform, so the
webhook ``messaging[]`` items, the Send API, the reply windows, private replies to comments, the
Conversations API that polling reads and the lookup of a reply after an unknown outcome are the same code.

``PageAdapter`` is the base of ``FacebookAdapter`` and ``InstagramAdapter``; each adds its comments (a Page's
feed or an account's media), the public reply to a comment, and the ids it answers to. This module holds the
configuration, the webhooks and files; ``page_replies`` the reply modes and sends, ``page_polling`` the polls,
``items`` the reading of Meta's payloads.

Ids (docs: the shared Meta brief): a DM is its ``mid``, in thread ``dm:{PSID or IGSID}``; a comment is
``comment:{id}``, in thread ``comment:{top-level comment id}``. The Conversations API returns the same ``mid``s
as the webhooks, so a polled message and a pushed one are one row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlsplit

import requests

from ..base import (
    AdapterError,
    Capability,
    ChannelAdapter,
    ConfigError,
    DeliveryReport,
    Envelope,
    EnvelopeKind,
    InboundAttachment,
    InvalidWebhook,
    PermanentError,
    Rejected,
    Sender,
    TransientError,
    WebhookResult,
)
from .graph import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT_SECONDS,
    Graph,
    answer_subscription,
    verify_signature,
)
from .items import (
    META_ID,
    BadItem,
    as_dict,
    as_list,
    event_id,
    event_time,
    message_id,
    meta_id,
    named_in,
    text_of,
    webhook_attachments,
)
from .page_polling import DEFAULT_POLL_MEDIA, PagePolling
from .page_replies import PageReplies

logger = logging.getLogger(__name__)

DOWNLOAD_CHUNK = 64 * 1024
#: Where Meta serves message and comment media (signed CDN URLs); the Graph host and the configured base URL's
#: host too. Nothing else is fetched: a URL in a payload is not a reason to call an arbitrary host.
MEDIA_HOST_SUFFIXES = (
    ".fbcdn.net",
    ".fbsbx.com",
    ".facebook.com",
    ".cdninstagram.com",
    ".instagram.com",
    ".whatsapp.net",
)
#: Webhook ``messaging[]`` events that carry nothing for a ticket: acknowledged with a log line.
IGNORED_MESSAGING = (
    "referral",
    "optin",
    "account_linking",
    "pass_thread_control",
    "take_thread_control",
    "request_thread_control",
    "app_roles",
    "policy-enforcement",
    "policy_enforcement",
    "messaging_feedback",
    "response_feedback",
    "game_play",
    "checkout_update",
    "payment",
)


class PageAdapter(PageReplies, PagePolling, ChannelAdapter):
    """The Messenger Platform, as a Facebook Page's Messenger and an Instagram account both use it.

    Config (both): ``page_id``, ``human_agent`` (the Page has Meta's Human Agent permission: replies up to 7 days
    after the person's last message), ``base_url``, ``timeout``, ``import_days``, ``poll_media`` (how many recent
    posts or media polling scans for comments). Secrets: ``page_access_token``, ``app_secret`` (webhook
    signatures), ``verify_token`` (the subscription handshake).
    """

    capabilities = frozenset({Capability.POLL, Capability.WEBHOOK, Capability.REPLY})
    secret_fields = ("page_access_token", "app_secret", "verify_token")
    finds_sent = True
    #: Set by subclasses.
    product = ""
    platform = ""  # the Conversations API's ``platform``
    webhook_object = ""
    #: Config keys that name this channel's account; the first is what the sender namespace is scoped by.
    id_fields: tuple[str, ...] = ("page_id",)

    # Configuration ----------------------------------------------------------

    @classmethod
    def split_config(cls, raw):
        config, secrets = super().split_config(raw)
        for field in cls.id_fields:
            value = config.get(field)
            if isinstance(value, int) and not isinstance(value, bool):
                value = config[field] = str(value)
            if not isinstance(value, str) or not META_ID.fullmatch(value):
                raise ConfigError(f"{cls.product} needs {field}: the numeric id Meta shows for it.")
        for field in cls.secret_fields:
            if not isinstance(secrets.get(field), str) or not secrets[field].strip():
                raise ConfigError(f"{cls.product} needs {field} ({SECRET_HELP[field]}).")
        base_url = config.setdefault("base_url", DEFAULT_BASE_URL)
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError("base_url must be an http(s) address, e.g. https://graph.facebook.com/v25.0.")
        config["base_url"] = base_url.rstrip("/")
        human_agent = config.setdefault("human_agent", False)
        if not isinstance(human_agent, bool):
            raise ConfigError("human_agent must be true or false.")
        timeout = config.get("timeout", DEFAULT_TIMEOUT_SECONDS)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError("timeout must be a positive number of seconds.")
        poll_media = config.get("poll_media", DEFAULT_POLL_MEDIA)
        if isinstance(poll_media, bool) or not isinstance(poll_media, int) or not 0 <= poll_media <= 100:
            raise ConfigError("poll_media must be a whole number from 0 to 100.")
        return config, secrets

    @property
    def account_id(self) -> str:
        """The id this channel's messages and comments are addressed to (the Page, or the Instagram account)."""
        return self.config[self.id_fields[0]]

    @property
    def own_ids(self) -> frozenset[str]:
        """Every id that is this channel itself: what it sends (echoes, its own comments) is never inbound."""
        return frozenset(str(self.config[field]) for field in self.id_fields if self.config.get(field))

    @property
    def namespace(self) -> str:
        return f"{self.kind}:{self.account_id}"

    @property
    def graph(self) -> Graph:
        if not hasattr(self, "_graph"):
            self._graph = Graph(
                base_url=self.config.get("base_url", DEFAULT_BASE_URL),
                token=self.secrets.get("page_access_token", ""),
                timeout=self.config.get("timeout", DEFAULT_TIMEOUT_SECONDS),
                product=self.product,
            )
        return self._graph

    @classmethod
    def describe_thread(cls, key):
        if key.startswith("dm:"):
            return f"{cls.product} DM"
        if key.startswith("comment:"):
            return "comment thread"
        return ""

    def describe_senders(self, senders):
        found = {}
        for sender in senders[:50]:
            if not META_ID.fullmatch(sender.external_id):
                continue
            try:
                profile = self.graph.get(sender.external_id, {"fields": self.profile_fields})
            except AdapterError as exc:  # best effort: a name is never worth an error
                logger.info("%s: no profile for %s: %s", self.kind, sender.external_id, exc)
                continue
            name = profile.get("name")
            username = profile.get("username")
            found[sender.external_id] = Sender(
                namespace=sender.namespace,
                external_id=sender.external_id,
                handle=f"@{username[:100]}" if isinstance(username, str) and username else sender.handle,
                display_name=name[:200] if isinstance(name, str) and name else sender.display_name,
            )
        return found

    profile_fields = "name"

    # Webhooks ---------------------------------------------------------------

    def verify_subscription(self, params):
        return answer_subscription(params, self.secrets.get("verify_token", ""))

    def handle_webhook(self, *, headers, body):
        app_secret = self.secrets.get("app_secret")
        if not app_secret:
            raise InvalidWebhook("This channel has no app_secret; webhooks are refused.", status=403)
        verify_signature(app_secret, headers, body)  # before anything in the body is read
        try:
            payload = json.loads(body.decode("utf-8", errors="replace"))
        except json.JSONDecodeError:
            raise InvalidWebhook("Malformed JSON body.") from None
        except RecursionError:
            raise InvalidWebhook("The JSON body is nested too deeply.") from None
        if not isinstance(payload, dict):
            raise InvalidWebhook("The body is not a JSON object.")
        if payload.get("object") != self.webhook_object:
            raise InvalidWebhook(
                f"A {self.product} channel takes object={self.webhook_object!r}, not {str(payload.get('object'))[:40]!r}."
            )
        entries = payload.get("entry")
        if not isinstance(entries, list):
            raise InvalidWebhook("The body has no entry list.")
        envelopes: list[Envelope] = []
        rejected: list[Rejected] = []
        for index, entry in enumerate(entries):
            self._entry(index, entry, envelopes, rejected)
        return WebhookResult(body="EVENT_RECEIVED", envelopes=envelopes, rejected=rejected)

    def _entry(self, index, entry, envelopes, rejected):
        if not isinstance(entry, Mapping):
            rejected.append(Rejected(reference=f"entry:{index}", reason="entry is not an object", raw=entry))
            return
        account = entry.get("id")
        account = str(account) if isinstance(account, int | str) and not isinstance(account, bool) else None
        if account not in self.own_ids:
            # Meta batches every Page an app serves into one request; another channel takes its own entries.
            logger.info("%s: ignoring a webhook entry for account %r", self.kind, str(account)[:60])
            return
        # "standby" holds what the person wrote while another app (the Page inbox) owns the conversation: still
        # their words, and the Conversations API lists them too.
        for field in ("messaging", "standby"):
            items = entry.get(field)
            if items is None:
                continue
            if not isinstance(items, list):
                rejected.append(Rejected(reference=f"{account}:{field}", reason=f"{field} is not a list", raw=items))
                continue
            for position, item in enumerate(items):
                self._interpret(self._messaging, item, f"{account}:{field}:{position}", envelopes, rejected)
        changes = entry.get("changes")
        if changes is not None:
            if not isinstance(changes, list):
                rejected.append(Rejected(reference=f"{account}:changes", reason="changes is not a list", raw=changes))
                return
            for position, change in enumerate(changes):
                self._interpret(
                    lambda item: self._change(item, entry), change, f"{account}:changes:{position}", envelopes, rejected
                )

    @staticmethod
    def _interpret(build, item, reference, envelopes, rejected):
        """``build(item)``'s envelopes into ``envelopes``; an item it cannot understand into ``rejected``, whole."""
        try:
            built = build(item)
        except (BadItem, LookupError, TypeError, ValueError, AttributeError) as exc:
            reason = str(exc) if isinstance(exc, BadItem) else f"uninterpretable: {exc!r}"
            rejected.append(Rejected(reference=(named_in(item) or reference)[:200], reason=reason[:500], raw=item))
            return
        envelopes.extend(built)

    def _change(self, change: Mapping, entry: Mapping) -> list[Envelope]:
        """One ``changes[]`` item (comments); subclasses interpret their fields."""
        field = change.get("field") if isinstance(change, Mapping) else None
        logger.info("%s: ignoring webhook field %r", self.kind, str(field)[:60])
        return []

    def _messaging(self, item) -> list[Envelope]:
        item = as_dict(item, "messaging item")
        sender = as_dict(item.get("sender"), "sender") if item.get("sender") is not None else None
        sender_id = meta_id(sender.get("id"), "sender.id") if sender is not None else None
        own = sender_id in self.own_ids
        if "message" in item:
            message = as_dict(item["message"], "message")
            if message.get("is_echo") or own:
                return []  # what the Page or account sent, echoed back: already stored as our reply
            return [self._message(item, message, self._person(sender_id))]
        if "message_edit" in item:
            return [] if own else [self._edit(item, self._person(sender_id))]
        if "reaction" in item:
            return [] if own else [self._reaction(item, self._person(sender_id))]
        if "delivery" in item:
            return self._delivery(item, self._person(sender_id))
        if "read" in item:
            return [self._read(item, self._person(sender_id))]
        if "postback" in item:
            return [] if own else [self._postback(item, self._person(sender_id))]
        known = next((key for key in IGNORED_MESSAGING if key in item), None)
        if known:
            logger.info("%s: ignoring a %s event", self.kind, known)
        else:
            fields = sorted(key for key in item if key not in ("sender", "recipient", "timestamp"))
            logger.warning("%s: ignoring an unknown messaging event %s", self.kind, [f[:40] for f in fields][:5])
        return []

    @staticmethod
    def _person(sender_id):
        if sender_id is None:
            raise BadItem("the event has no sender")
        return sender_id

    def _dm(self, psid: str, *, external_id, kind, sent_at, text="", **fields) -> Envelope:
        return Envelope(
            external_id=external_id,
            kind=kind,
            thread_key=f"dm:{psid}",
            sent_at=sent_at,
            text=text,
            reopens=False,  # a DM conversation is one ticket while it is open; later DMs start a new one
            **fields,
        )

    def _sender(self, psid: str, *, name: object = "", username: object = "") -> Sender:
        return Sender(
            namespace=self.namespace,
            external_id=psid,
            handle=f"@{username[:100]}" if isinstance(username, str) and username else "",
            display_name=name[:200] if isinstance(name, str) else "",
        )

    def _message(self, item, message, psid) -> Envelope:
        mid = message_id(message.get("mid"))
        sent_at = event_time(item.get("timestamp"))
        if message.get("is_deleted"):  # Instagram: the person unsent it
            return self._dm(
                psid,
                external_id=event_id(mid, "delete"),
                kind=EnvelopeKind.DELETE,
                sent_at=sent_at,
                target_id=mid,
            )
        text = text_of(message.get("text"))
        files, lines = webhook_attachments(as_list(message.get("attachments"), "attachments"))
        meta = {}
        reply_to = message.get("reply_to")
        if isinstance(reply_to, Mapping):
            if isinstance(reply_to.get("mid"), str):
                meta["reply_to_mid"] = reply_to["mid"]
            story = reply_to.get("story")
            if isinstance(story, Mapping) and isinstance(story.get("url"), str):
                lines.append(f"[reply to your story] {story['url']}")
        quick_reply = message.get("quick_reply")
        if isinstance(quick_reply, Mapping) and isinstance(quick_reply.get("payload"), str):
            meta["quick_reply"] = quick_reply["payload"][:1000]
        return self._dm(
            psid,
            external_id=mid,
            kind=EnvelopeKind.MESSAGE,
            sent_at=sent_at,
            text="\n".join(part for part in (text, *lines) if part),
            sender=self._sender(psid),
            starts_thread=True,
            meta=meta,
            attachments=files,
        )

    def _edit(self, item, psid) -> Envelope:
        edit = as_dict(item["message_edit"], "message_edit")
        mid = message_id(edit.get("mid"))
        number = edit.get("num_edit")
        if isinstance(number, bool) or not isinstance(number, int | str) or not str(number).isdigit():
            raise BadItem(f"num_edit is not a number: {str(number)[:20]!r}")
        return self._dm(
            psid,
            external_id=event_id(mid, "edit", str(int(number))),
            kind=EnvelopeKind.EDIT,
            sent_at=event_time(item.get("timestamp")),
            text=text_of(edit.get("text")),
            target_id=mid,
        )

    def _reaction(self, item, psid) -> Envelope:
        reaction = as_dict(item["reaction"], "reaction")
        mid = message_id(reaction.get("mid"))
        action = reaction.get("action")
        if action not in ("react", "unreact"):
            raise BadItem(f"reaction action is not react or unreact: {str(action)[:20]!r}")
        timestamp = item.get("timestamp")
        sent_at = event_time(timestamp)
        emoji = reaction.get("emoji") or reaction.get("reaction") or ""
        return self._dm(
            psid,
            external_id=event_id(mid, "reaction", psid, action, str(timestamp)),
            kind=EnvelopeKind.REACTION,
            sent_at=sent_at,
            target_id=mid,
            sender=self._sender(psid),
            meta={"emoji": text_of(emoji, "emoji")[:64], "removed": action == "unreact"},
        )

    def _delivery(self, item, psid) -> list[Envelope]:
        """Meta delivered our replies to the person: one report per message it names. Without ``mids`` (older
        Messenger clients), a report on everything sent up to the watermark."""
        delivery = as_dict(item["delivery"], "delivery")
        watermark = delivery.get("watermark")
        sent_at = event_time(watermark if watermark is not None else item.get("timestamp"))
        mids = [message_id(mid) for mid in as_list(delivery.get("mids"), "delivery.mids")]
        status = {"status": str(DeliveryReport.DELIVERED)}
        if not mids:
            return [
                self._dm(
                    psid,
                    external_id=event_id("delivered", psid, str(watermark)),
                    kind=EnvelopeKind.STATUS,
                    sent_at=sent_at,
                    meta={**status, "up_to": sent_at.isoformat()},
                )
            ]
        return [
            self._dm(
                psid,
                external_id=event_id(mid, "delivered"),
                kind=EnvelopeKind.STATUS,
                sent_at=sent_at,
                target_id=mid,
                meta=dict(status),
            )
            for mid in mids
        ]

    def _read(self, item, psid) -> Envelope:
        """The person read our replies: up to a watermark (Messenger), or one message (Instagram's ``read.mid``)."""
        read = as_dict(item["read"], "read")
        status = {"status": str(DeliveryReport.READ)}
        watermark = read.get("watermark")
        if watermark is None and read.get("mid") is not None:
            mid = message_id(read["mid"])
            return self._dm(
                psid,
                external_id=event_id(mid, "read"),
                kind=EnvelopeKind.STATUS,
                sent_at=event_time(item.get("timestamp")),
                target_id=mid,
                meta=status,
            )
        up_to = event_time(watermark)
        return self._dm(
            psid,
            external_id=event_id("read", psid, str(watermark)),
            kind=EnvelopeKind.STATUS,
            sent_at=up_to,
            meta={**status, "up_to": up_to.isoformat()},
        )

    def _postback(self, item, psid) -> Envelope:
        """A button the person pressed (a persistent menu, Get Started): its title is what they "said"."""
        postback = as_dict(item["postback"], "postback")
        timestamp = item.get("timestamp")
        sent_at = event_time(timestamp)
        title, payload = text_of(postback.get("title"), "title"), text_of(postback.get("payload"), "payload")
        mid = postback.get("mid")
        return self._dm(
            psid,
            external_id=message_id(mid) if mid is not None else event_id("postback", psid, str(timestamp)),
            kind=EnvelopeKind.MESSAGE,
            sent_at=sent_at,
            text=title or payload,
            sender=self._sender(psid),
            starts_thread=True,
            meta={"postback": payload[:1000]},
        )

    # Comments (shared parts) --------------------------------------------------

    def _comment(
        self,
        *,
        kind: EnvelopeKind,
        comment_id: str,
        parent_id: str | None,
        sent_at: datetime,
        author: Sender | None,
        text: str = "",
        change: str = "",
        meta: Mapping | None = None,
        attachments: tuple[InboundAttachment, ...] = (),
    ) -> Envelope:
        """A comment, or an edit or removal of one. A reply to a comment joins its parent's thread."""
        top = parent_id or comment_id
        own = f"comment:{comment_id}"
        changed = event_id(own, str(kind), *([change] if change else []))
        return Envelope(
            external_id=own if kind == EnvelopeKind.MESSAGE else changed,
            kind=kind,
            thread_key=f"comment:{top}",
            sent_at=sent_at,
            sender=author if kind == EnvelopeKind.MESSAGE else None,
            text=text,
            starts_thread=kind == EnvelopeKind.MESSAGE and top == comment_id,
            target_id="" if kind == EnvelopeKind.MESSAGE else own,
            public=True,
            reopens=True,
            meta=dict(meta or {}),
            attachments=attachments,
        )

    # Files ------------------------------------------------------------------

    def fetch_attachment(self, ref):
        parts = urlsplit(ref)
        own_host = urlsplit(self.config.get("base_url", DEFAULT_BASE_URL)).netloc
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not (
            parts.netloc == own_host or any(f".{host}".endswith(suffix) for suffix in MEDIA_HOST_SUFFIXES)
        ):
            raise PermanentError(f"Not a {self.product} media address ({host[:60] or ref[:40]}); it was not fetched.")
        response = self.graph.stream(ref)
        with response:
            try:
                yield from response.iter_content(DOWNLOAD_CHUNK)
            except requests.RequestException as exc:
                raise TransientError(f"{self.product} file download broke off: {type(exc).__name__}") from None


SECRET_HELP = {
    "page_access_token": "a Page access token with the messaging permissions",
    "app_secret": "the Meta app's secret, which signs its webhooks",
    "verify_token": "any string; Meta sends it back when the webhook URL is registered",
}
