"""What Messenger (a Facebook Page's DMs) and Instagram DMs share: both run on the Messenger Platform, so the
webhook ``messaging[]`` items, the Send API, the reply windows, private replies to comments, the
Conversations API that polling reads and the lookup of a reply after an unknown outcome are the same code.

``PageAdapter`` is the base of ``FacebookAdapter`` and ``InstagramAdapter``; each adds its comments (a Page's
feed or an account's media), the public reply to a comment, and the ids it answers to.

Ids (docs: the shared Meta brief): a DM is its ``mid``, in thread ``dm:{PSID or IGSID}``; a comment is
``comment:{id}``, in thread ``comment:{top-level comment id}``. The Conversations API returns the same ``mid``s
as the webhooks, so a polled message and a pushed one are one row.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import mimetypes
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import requests

from ..base import (
    DEFAULT_IMPORT_DAYS,
    AdapterError,
    AttachmentLimits,
    Capability,
    ChannelAdapter,
    ConfigError,
    DeliveryReport,
    Envelope,
    EnvelopeKind,
    InboundAttachment,
    InvalidWebhook,
    PermanentError,
    PollPage,
    RateLimited,
    Rejected,
    ReplyMode,
    ReplyTarget,
    Sender,
    Sent,
    TransientError,
    WebhookResult,
    plausible_time,
)
from .graph import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT_SECONDS,
    GRAPH_EPOCH,
    USAGE_BACKOFF_PERCENT,
    Graph,
    GraphError,
    answer_subscription,
    parse_iso_time,
    verify_signature,
)

logger = logging.getLogger(__name__)

#: The customer-service window (a plain reply), and the HUMAN_AGENT tag's.
STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
#: A private reply to a comment is possible for this long after the comment, once.
PRIVATE_REPLY_WINDOW = timedelta(days=7)
#: Meta's subcode for a second private reply to one comment.
PRIVATE_REPLY_TAKEN = 1893034
MB = 1024 * 1024
#: Ids Meta gives people, Pages, accounts, posts and comments ("1423587017700273", "137542570280222_139560936744456").
#: They end up in URL paths and stored keys, so nothing else is taken.
META_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")
#: Message ids ("mid.$cAAE1UUyiiwthh0NPrVbVf4HFNDGl", "m_ToF35NI1...", Instagram's long base64 ones).
MID = re.compile(r"[\x21-\x7e]{1,300}")
#: Stored event ids are at most this long (``InboundMessage.external_id``); longer ones keep a digest of the tail.
MAX_EVENT_ID = 255
#: A lookup after an unknown outcome reads from this long before the attempt began (Meta's clock and ours).
LOOKUP_MARGIN = timedelta(seconds=30)
#: How many of a poll's conversations, messages and comments one page of the API holds.
CONVERSATIONS_PAGE = 25
MESSAGES_PAGE = 50
COMMENTS_PAGE = 50
DEFAULT_POLL_MEDIA = 10
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
    "message_reactions",
)
#: Attachment types whose ``payload.url`` is the file itself.
MEDIA_TYPES = {"image", "video", "audio", "file", "story_mention", "ig_reel", "reel", "share"}
DEFAULT_CONTENT_TYPES = {"image": "image/jpeg", "video": "video/mp4", "audio": "audio/mpeg", "ig_reel": "video/mp4"}


class BadItem(ValueError):
    """A webhook or polled item that cannot be understood; kept as a failed row with what Meta sent."""


def meta_id(value: object, what: str) -> str:
    """An id as Meta sends it (a string; some payloads carry numbers); raises BadItem for anything else."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not META_ID.fullmatch(value):
        raise BadItem(f"{what} is not a Meta id: {str(value)[:60]!r}")
    return value


def message_id(value: object) -> str:
    if not isinstance(value, str) or not MID.fullmatch(value):
        raise BadItem(f"not a message id: {str(value)[:60]!r}")
    return value


def event_id(*parts: str) -> str:
    """Parts joined with ":" into a stored event id; one too long keeps its first part and a digest of the rest."""
    joined = ":".join(parts)
    if len(joined) <= MAX_EVENT_ID:
        return joined
    digest = hashlib.sha256(joined.encode()).hexdigest()[:32]
    return f"{parts[0][: MAX_EVENT_ID - 34]}:{digest}"


def event_time(value: object) -> datetime:
    """A webhook or Graph time: epoch milliseconds (Messenger events), epoch seconds (feed changes, entry times),
    as a number or digit string, or an ISO time (the Graph API; some Instagram payloads). Raises BadItem for
    anything else, or for a time Meta could not have stamped (``plausible_time``)."""
    try:
        whole = isinstance(value, int) and not isinstance(value, bool)
        if whole or (isinstance(value, str) and value.isascii() and value.isdigit()):
            number = int(value)
            # 10^11 seconds is the year 5138; 10^11 milliseconds is 1973. Meta sends both kinds.
            moment = datetime.fromtimestamp(number / 1000 if number >= 10**11 else number, UTC)
        elif isinstance(value, str) and len(value) <= 40:
            try:
                moment = parse_iso_time(value)
            except ValueError:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            raise ValueError(f"not a time: {str(value)[:40]!r}")
        return plausible_time(moment, platform_epoch=GRAPH_EPOCH)
    except (ValueError, OverflowError, OSError) as exc:
        raise BadItem(str(exc)) from None


def named_in(item: object) -> str:
    """The message or comment id an item names, if any, for the failed row that keeps it."""
    if not isinstance(item, Mapping):
        return ""
    for holder in (item, item.get("message"), item.get("value"), item.get("message_edit"), item.get("reaction")):
        if isinstance(holder, Mapping):
            for key in ("mid", "comment_id", "id"):
                if isinstance(holder.get(key), str) and holder[key]:
                    return holder[key]
    return ""


def text_of(value: object, what: str = "text") -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadItem(f"{what} is not a string")
    return value


def as_dict(value: object, what: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise BadItem(f"{what} is not an object")
    return value


def as_list(value: object, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadItem(f"{what} is not a list")
    return value


def file_name_and_type(url: str, kind: str, index: int) -> tuple[str, str]:
    """A name and content type for a file Meta gives only as a URL: from the URL's path, else from its kind."""
    path = PurePosixPath(urlsplit(url).path)
    guessed = mimetypes.guess_type(path.name)[0] if path.suffix else None
    content_type = guessed or DEFAULT_CONTENT_TYPES.get(kind, "application/octet-stream")
    if kind == "audio" and content_type.startswith("video/"):
        content_type = "audio/" + content_type.split("/", 1)[1]  # Messenger's voice clips are .mp4 files of audio
    name = path.name if path.suffix else f"{kind}-{index + 1}{mimetypes.guess_extension(content_type) or ''}"
    return name[:200], content_type


def webhook_attachments(attachments: list) -> tuple[tuple[InboundAttachment, ...], list[str]]:
    """A webhook message's ``attachments[]``: files, and lines of text for what is not a file (a location, a shared
    link, a template, a type Meta added since). Nothing is dropped without a word to the agent."""
    files, lines = [], []
    for index, attachment in enumerate(attachments):
        attachment = as_dict(attachment, "attachment")
        kind = text_of(attachment.get("type"), "attachment type") or "unknown"
        payload = attachment.get("payload") if isinstance(attachment.get("payload"), Mapping) else {}
        url = payload.get("url")
        if kind in MEDIA_TYPES and isinstance(url, str) and url.startswith(("http://", "https://")):
            name, content_type = file_name_and_type(url, "image" if kind in ("story_mention", "share") else kind, index)
            if payload.get("sticker_id") is not None:
                name = f"sticker-{str(payload['sticker_id'])[:40]}{PurePosixPath(name).suffix or '.png'}"
            files.append(InboundAttachment(name=name, content_type=content_type, size=0, ref=url))
        elif kind == "location":
            coordinates = payload.get("coordinates") if isinstance(payload.get("coordinates"), Mapping) else {}
            lat, long = coordinates.get("lat"), coordinates.get("long")
            lines.append(f"[location: {lat}, {long}]" if lat is not None and long is not None else "[location]")
        elif kind in ("fallback", "template", "share"):
            title = attachment.get("title") or payload.get("title") or ""
            link = attachment.get("url") or attachment.get("URL") or url or ""
            lines.append(" ".join(str(part) for part in (f"[{kind}]", title, link) if part))
        else:
            lines.append(f"[{kind[:40]} attachment]")
    return tuple(files), lines


def graph_attachments(message: Mapping) -> tuple[InboundAttachment, ...]:
    """A polled message's ``attachments.data[]`` (which, unlike a webhook's, name the file and its size) and its
    sticker."""
    found = []
    container = message.get("attachments")
    items = container.get("data") if isinstance(container, Mapping) else None
    for index, attachment in enumerate(items if isinstance(items, list) else []):
        if not isinstance(attachment, Mapping):
            continue
        url = None
        for key in ("image_data", "video_data", "audio_data"):
            data = attachment.get(key)
            if isinstance(data, Mapping) and isinstance(data.get("url"), str):
                url = data["url"]
        url = url or attachment.get("file_url") or attachment.get("url")
        if not isinstance(url, str) or not url:
            continue
        guessed_name, guessed_type = file_name_and_type(url, "file", index)
        size = attachment.get("size")
        found.append(
            InboundAttachment(
                name=str(attachment.get("name") or guessed_name)[:200],
                content_type=str(attachment.get("mime_type") or guessed_type),
                size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else 0,
                ref=url,
            )
        )
    sticker = message.get("sticker")
    if isinstance(sticker, str) and sticker.startswith(("http://", "https://")):
        name, content_type = file_name_and_type(sticker, "image", len(found))
        found.append(InboundAttachment(name=f"sticker-{name}", content_type=content_type, size=0, ref=sticker))
    return tuple(found)


class PageAdapter(ChannelAdapter):
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
    dm_max_length = 2000
    comment_max_length = 8000
    dm_files = AttachmentLimits(max_files=10, max_bytes=25 * MB)
    #: Meta's error subcodes for a message outside the allowed window.
    window_subcodes: frozenset[int] = frozenset()
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

    # Replies ----------------------------------------------------------------

    def reply_modes(self, target: ReplyTarget) -> list[ReplyMode]:
        if target.thread_key.startswith("comment:"):
            return self._comment_modes(target)
        return self._dm_modes(target)

    def _dm_modes(self, target) -> list[ReplyMode]:
        now = datetime.now(UTC)
        last = target.last_inbound_at
        standard_end = last + STANDARD_WINDOW if last else None
        human_end = last + HUMAN_AGENT_WINDOW if last else None
        has_human_agent = bool(self.config.get("human_agent"))
        reply = ReplyMode(
            key="",
            label="Reply",
            max_length=self.dm_max_length,
            allowed=standard_end is None or now <= standard_end,
            attachments=self.dm_files,
            expires_at=standard_end,
        )
        if not reply.allowed:
            reply = _refused(reply, self._closed_reason(standard_end, human_end, has_human_agent, now))
        human = ReplyMode(
            key="human_agent",
            label="Human agent (7 days)",
            max_length=self.dm_max_length,
            allowed=has_human_agent and (human_end is None or now <= human_end),
            attachments=self.dm_files,
            expires_at=human_end if has_human_agent else None,
        )
        if not has_human_agent:
            human = _refused(
                human,
                f"This Page has no Human Agent permission from Meta (the channel's human_agent setting is off), "
                f"so {self.product} allows no reply more than 24 hours after the person's last message.",
            )
        elif not human.allowed:
            human = _refused(
                human,
                f"The 7-day human agent window closed at {_when(human_end)}. {self.product} allows no further "
                "message until the person writes again.",
            )
        return [reply, human]

    def _closed_reason(self, standard_end, human_end, has_human_agent, now) -> str:
        closed = f"The 24-hour reply window closed at {_when(standard_end)}."
        if has_human_agent and now <= human_end:
            return f"{closed} Use the human agent reply (allowed until {_when(human_end)})."
        if has_human_agent:
            return f"{closed} The 7-day human agent window closed too; wait for the person to write again."
        return f"{closed} {self.product} allows no message until the person writes again."

    def _comment_modes(self, target) -> list[ReplyMode]:
        now = datetime.now(UTC)
        last = target.last_inbound_at
        public = ReplyMode(key="public", label="Public reply", max_length=self.comment_max_length)
        private_end = last + PRIVATE_REPLY_WINDOW if last else None
        private = ReplyMode(
            key="private",
            label="Private reply (DM)",
            max_length=self.dm_max_length,
            allowed=private_end is None or now <= private_end,
            expires_at=private_end,
        )
        if target.reply_to_meta.get("private_reply_sent"):
            private = _refused(
                private,
                "A private reply was already sent for this comment; Meta allows one. Continue in the DM thread.",
            )
        elif not private.allowed:
            private = _refused(
                private,
                f"A private reply is possible for 7 days after the comment; that closed at {_when(private_end)}.",
            )
        return [public, private]

    def send(self, *, target, text, key):
        if target.thread_key.startswith("comment:"):
            if target.mode == "public":
                return self._public_reply(target, self._checked(text, self.comment_max_length, "A public reply"))
            if target.mode == "private":
                return self._private_reply(target, self._checked(text, self.dm_max_length, "A private reply"))
            raise PermanentError(f"A comment takes a public or a private reply, not {target.mode!r}.")
        psid = self._recipient(target)
        body = {"recipient": {"id": psid}, **self._messaging_type(target.mode), "message": {"text": text}}
        self._checked(text, self.dm_max_length, "A message")
        answer = self._send(body)
        return Sent(external_id=message_id(answer.get("message_id")))

    def _checked(self, text, limit, what) -> str:
        if len(text) > limit:
            raise PermanentError(f"{what} on {self.product} takes at most {limit} characters.")
        return text

    @staticmethod
    def _messaging_type(mode) -> dict:
        if mode == "human_agent":
            return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
        if mode:
            raise PermanentError(f"A DM takes a reply or a human agent reply, not {mode!r}.")
        return {"messaging_type": "RESPONSE"}

    @staticmethod
    def _recipient(target) -> str:
        psid = target.thread_key.removeprefix("dm:") if target.thread_key.startswith("dm:") else target.recipient
        try:
            return meta_id(psid, "recipient")
        except BadItem:
            raise PermanentError(f"No recipient for this conversation ({target.thread_key[:60]}).") from None

    def _send(self, body, **files) -> dict:
        """One Send API call; Meta's window refusals become a sentence an agent can act on."""
        try:
            if files:
                data = {key: json.dumps(value) if isinstance(value, dict) else value for key, value in body.items()}
                return self.graph.post(f"{self.config['page_id']}/messages", data=data, files=files)
            return self.graph.post(f"{self.config['page_id']}/messages", json_body=body)
        except GraphError as exc:
            if exc.subcode == PRIVATE_REPLY_TAKEN:
                raise PermanentError(f"This comment already has its private reply; continue in the DM: {exc}") from None
            if exc.code == 10 and (exc.subcode in self.window_subcodes or exc.subcode is None):
                raise PermanentError(f"Outside {self.product}'s reply window: {exc}") from None
            if exc.code == 551 or exc.subcode == 1545041:
                raise PermanentError(f"The person cannot be reached on {self.product} now: {exc}") from None
            raise

    def _private_reply(self, target, text) -> Sent:
        """The first DM to someone who commented, addressed by the comment; its answer names the person, so the
        DM's replies join this ticket under ``dm:{their id}``."""
        comment_id = self._comment_id(target)
        answer = self._send({"recipient": {"comment_id": comment_id}, "message": {"text": text}})
        recipient = answer.get("recipient_id")
        thread_key = f"dm:{meta_id(recipient, 'recipient_id')}" if recipient else ""
        return Sent(external_id=message_id(answer.get("message_id")), thread_key=thread_key)

    def _comment_id(self, target) -> str:
        """The comment an answer goes to: the one ``reply_to`` names, else the thread's first."""
        comment = target.reply_to.removeprefix("comment:") if target.reply_to.startswith("comment:") else ""
        comment = comment or target.thread_key.removeprefix("comment:")
        try:
            return meta_id(comment, "comment id")
        except BadItem:
            raise PermanentError(f"No comment to answer in {target.thread_key[:60]}.") from None

    @staticmethod
    def _thread_comment(target) -> str:
        """The first comment of a comment thread: public replies go under it (both platforms nest one level)."""
        try:
            return meta_id(target.thread_key.removeprefix("comment:"), "comment id")
        except BadItem:
            raise PermanentError(f"Not a comment thread: {target.thread_key[:60]}.") from None

    def _public_reply(self, target, text) -> Sent:
        raise NotImplementedError

    def send_attachment(self, *, target, file):
        if target.thread_key.startswith("comment:"):
            raise PermanentError(f"Replies to {self.product} comments carry text only; this file was not sent.")
        kind = self._attachment_type(file)
        body = {
            "recipient": {"id": self._recipient(target)},
            **self._messaging_type(target.mode),
            "message": {"attachment": {"type": kind, "payload": {"is_reusable": False}}},
        }
        answer = self._send(body, filedata=(file.name, file.data, file.content_type))
        return message_id(answer.get("message_id"))

    def _attachment_type(self, file) -> str:
        """The Send API's attachment type for a file; refuses what the platform does not take."""
        major = file.content_type.split("/", 1)[0]
        kind = major if major in ("image", "video", "audio") else "file"
        if len(file.data) > self.dm_files.max_bytes:
            raise PermanentError(f"{file.name} is larger than {self.product}'s {self.dm_files.max_bytes // MB} MB.")
        return kind

    def find_sent(self, *, target, text, key, since):
        """Our message with this text, made since the attempt began: in the person's conversation (a DM or a
        private reply), or among the comment's replies."""
        start = since - LOOKUP_MARGIN
        if target.thread_key.startswith("comment:") and target.mode == "public":
            return self._find_public_reply(target, text, start)
        if target.thread_key.startswith("comment:"):
            psid = meta_id(target.recipient, "recipient") if target.recipient else ""
            if not psid:
                return None
            found = self._find_dm(psid, text, start)
            return Sent(external_id=found.external_id, thread_key=f"dm:{psid}") if found else None
        return self._find_dm(self._recipient(target), text, start)

    def _find_dm(self, psid, text, start) -> Sent | None:
        conversations = self.graph.get(
            f"{self.config['page_id']}/conversations", {"platform": self.platform, "user_id": psid, "fields": "id"}
        ).get("data")
        for conversation in conversations if isinstance(conversations, list) else []:
            if not isinstance(conversation, Mapping) or not isinstance(conversation.get("id"), str):
                continue
            params = {"fields": "id,message,from,created_time", "limit": MESSAGES_PAGE}
            for page in self.graph.pages(f"{meta_id(conversation['id'], 'conversation id')}/messages", params):
                for message in page:  # newest first
                    try:
                        created = event_time(message.get("created_time"))
                    except (BadItem, AttributeError):
                        continue
                    if created < start:
                        return None
                    author = message.get("from") if isinstance(message.get("from"), Mapping) else {}
                    if str(author.get("id")) in self.own_ids and message.get("message") == text:
                        return Sent(external_id=message_id(message.get("id")))
        return None

    def _find_public_reply(self, target, text, start) -> Sent | None:
        raise NotImplementedError

    # Polling ----------------------------------------------------------------

    @classmethod
    def polling_limits(cls, config):
        media = config.get("poll_media", DEFAULT_POLL_MEDIA)
        return (
            f"Polling reads the DMs of conversations updated since the last poll, and the comments on the {media} "
            f"most recent {cls.media_noun}. Edits, unsent messages, reactions and delivery and read reports arrive "
            "only by webhook."
        )

    media_noun = "posts"

    def poll(self, cursor):
        cursor = copy.deepcopy(dict(cursor))
        start = datetime.now(UTC) - timedelta(days=self.config.get("import_days", DEFAULT_IMPORT_DAYS))
        yield from self._poll_dms(cursor, start)
        yield from self._poll_comments(cursor, start)

    def _page(self, envelopes, cursor, rejected) -> PollPage:
        return PollPage(envelopes=envelopes, cursor=copy.deepcopy(cursor), rejected=rejected)

    def _backoff(self):
        """After a page is yielded: stop the poll while Meta says the app is near its limits."""
        if self.graph.usage >= USAGE_BACKOFF_PERCENT:
            retry_after = self.graph.regain_seconds or 300.0
            raise RateLimited(
                f"{self.product}: the app has used {self.graph.usage:.0f}% of a rate limit; polling waits "
                f"{retry_after:.0f}s",
                retry_after=retry_after,
            )

    def _poll_dms(self, cursor, start) -> Iterator[PollPage]:
        """Conversations newest first down to the mark, and each one's messages newest first down to the mark.
        The mark moves (to the newest message read) only after every page it covers was yielded; messages at
        exactly the mark are remembered by id, so a re-poll neither skips nor repeats them."""
        mark = Mark(cursor, "dm", start)
        params = {"platform": self.platform, "fields": "id,updated_time,participants", "limit": CONVERSATIONS_PAGE}
        for conversations in self.graph.pages(f"{self.config['page_id']}/conversations", params):
            rejected: list[Rejected] = []
            reached_mark = False
            wanted = []
            for conversation in conversations:
                try:
                    conversation_id = meta_id(as_dict(conversation, "conversation").get("id"), "conversation id")
                    updated = event_time(conversation.get("updated_time"))
                except BadItem as exc:
                    rejected.append(Rejected(reference="conversation", reason=str(exc), raw=conversation))
                    continue
                if updated < mark.since:
                    reached_mark = True
                    break
                wanted.append(conversation_id)
            if rejected:
                yield self._page([], cursor, rejected)
            for conversation_id in wanted:
                yield from self._poll_conversation(conversation_id, mark, cursor)
            if reached_mark:
                break
        mark.advance()
        yield self._page([], cursor, [])

    def _poll_conversation(self, conversation_id, mark, cursor) -> Iterator[PollPage]:
        params = {"fields": "id,message,from,to,created_time,attachments,sticker", "limit": MESSAGES_PAGE}
        for messages in self.graph.pages(f"{conversation_id}/messages", params):
            envelopes, rejected, reached_mark = [], [], False
            for message in messages:
                try:
                    message = as_dict(message, "message")
                    mid = message_id(message.get("id"))
                    created = event_time(message.get("created_time"))
                except BadItem as exc:
                    rejected.append(Rejected(reference=f"{conversation_id}:message", reason=str(exc), raw=message))
                    continue
                if created < mark.since:
                    reached_mark = True
                    break
                mark.saw(mid, created)
                if mark.seen_before(mid, created):
                    continue
                self._interpret(self._polled_dm, message, mid, envelopes, rejected)
            yield self._page(chronological(envelopes), cursor, rejected)
            self._backoff()
            if reached_mark:
                return

    def _polled_dm(self, message) -> list[Envelope]:
        author = as_dict(message.get("from"), "from")
        psid = meta_id(author.get("id"), "from.id")
        if psid in self.own_ids:
            return []  # our own replies, as the conversation lists them
        return [
            self._dm(
                psid,
                external_id=message_id(message.get("id")),
                kind=EnvelopeKind.MESSAGE,
                sent_at=event_time(message.get("created_time")),
                text=text_of(message.get("message"), "message"),
                sender=self._sender(psid, name=author.get("name"), username=author.get("username")),
                starts_thread=True,
                attachments=graph_attachments(message),
            )
        ]

    def _poll_comments(self, cursor, start) -> Iterator[PollPage]:
        """The comments on the ``poll_media`` most recent posts or media, newer than the mark (the same scheme as
        DMs). Comments come newest first on Facebook, so reading a post stops at the mark; Instagram nests replies
        under their comment, so every page of a media's comments is read."""
        mark = Mark(cursor, "comments", start)
        count = self.config.get("poll_media", DEFAULT_POLL_MEDIA)
        for media_id in self._recent_media(count) if count else []:
            for comments in self._comment_pages(media_id):
                envelopes, rejected, reached_mark = [], [], False
                for comment in comments:
                    try:
                        comment = as_dict(comment, "comment")
                        comment_id = meta_id(comment.get("id"), "comment id")
                        created = event_time(comment.get(self.comment_time_field))
                    except BadItem as exc:
                        rejected.append(Rejected(reference=f"{media_id}:comment", reason=str(exc), raw=comment))
                        continue
                    if created < mark.since:
                        reached_mark = self.comments_newest_first
                        if reached_mark:
                            break
                        continue
                    mark.saw(comment_id, created)
                    if mark.seen_before(comment_id, created):
                        continue
                    self._interpret(
                        lambda item, media_id=media_id: self._polled_comment(item, media_id),
                        comment,
                        comment_id,
                        envelopes,
                        rejected,
                    )
                yield self._page(chronological(envelopes), cursor, rejected)
                self._backoff()
                if reached_mark:
                    break
        mark.advance()
        yield self._page([], cursor, [])

    comment_time_field = "created_time"
    comments_newest_first = True

    def _recent_media(self, count) -> list[str]:
        """The ids of the ``count`` most recent posts or media."""
        raise NotImplementedError

    def _comment_pages(self, media_id) -> Iterator[list]:
        """Pages of a post's or media's comments, replies included (flat, each naming its parent)."""
        raise NotImplementedError

    def _polled_comment(self, comment, media_id) -> list[Envelope]:
        raise NotImplementedError

    def _first_ids(self, path, params, count) -> list[str]:
        """The first ``count`` well-formed ids of a paged edge (a Page's posts, an account's media)."""
        found: list[str] = []
        for page in self.graph.pages(path, params):
            for item in page:
                try:
                    found.append(meta_id(as_dict(item, "item").get("id"), "id"))
                except BadItem as exc:
                    logger.warning("%s: skipping an item of %s: %s", self.kind, path, exc)
                if len(found) >= count:
                    return found
        return found

    def _own_comment_reply(self, path, params, text_field, text, start) -> Sent | None:
        """Our reply with this text among a comment's replies (newest first), made since ``start``."""
        for page in self.graph.pages(path, params):
            for reply in page:
                if not isinstance(reply, Mapping):
                    continue
                author = reply.get("from") if isinstance(reply.get("from"), Mapping) else {}
                try:
                    created = event_time(reply.get(self.comment_time_field))
                except BadItem:
                    continue
                if created >= start and str(author.get("id")) in self.own_ids and reply.get(text_field) == text:
                    return Sent(external_id=f"comment:{meta_id(reply.get('id'), 'comment id')}")
        return None

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


class Mark:
    """A poll's high-water mark in the cursor: ``{prefix}_since`` (ISO time) and ``{prefix}_at_mark`` (the ids read
    at exactly that time). ``advance`` moves it to the newest item read; until then the cursor keeps the old one."""

    def __init__(self, cursor: dict, prefix: str, start: datetime):
        self.cursor, self.prefix = cursor, prefix
        try:
            self.since = datetime.fromisoformat(cursor[f"{prefix}_since"])
            if self.since.tzinfo is None:
                raise ValueError("no timezone")
        except (KeyError, TypeError, ValueError):
            self.since = start
        at_mark = cursor.get(f"{prefix}_at_mark")
        self.at_mark = set(at_mark) if isinstance(at_mark, list) else set()
        self.newest, self.newest_ids = self.since, set(self.at_mark)

    def seen_before(self, item_id: str, moment: datetime) -> bool:
        """Whether a previous poll already read this item (it sits exactly at the mark it left)."""
        return moment == self.since and item_id in self.at_mark

    def saw(self, item_id: str, moment: datetime) -> None:
        if moment > self.newest:
            self.newest, self.newest_ids = moment, {item_id}
        elif moment == self.newest:
            self.newest_ids.add(item_id)

    def advance(self) -> None:
        self.cursor[f"{self.prefix}_since"] = self.newest.isoformat()
        self.cursor[f"{self.prefix}_at_mark"] = sorted(self.newest_ids)


SECRET_HELP = {
    "page_access_token": "a Page access token with the messaging permissions",
    "app_secret": "the Meta app's secret, which signs its webhooks",
    "verify_token": "any string; Meta sends it back when the webhook URL is registered",
}


def chronological(envelopes: list[Envelope]) -> list[Envelope]:
    """A page's envelopes oldest first. Meta lists newest first and its times have whole seconds, so messages
    sent within one second keep the order the person sent them in."""
    return sorted(reversed(envelopes), key=lambda envelope: envelope.sent_at)


def _refused(mode: ReplyMode, reason: str) -> ReplyMode:
    return replace(mode, allowed=False, reason=reason)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "an unknown time"
