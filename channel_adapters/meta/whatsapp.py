"""WhatsApp Cloud API: one business phone number. Messages arrive only by webhook; replies go out as text inside
WhatsApp's 24-hour customer service window, or as an approved template at any time.

WhatsApp has no API to read messages back, so this channel cannot poll, and cannot tell after an unanswered send
whether the reply arrived (``finds_sent`` is false). What it learns afterwards comes by webhook: ``statuses[]``
report each reply delivered, read or failed (``STATUS`` envelopes).

Inbound files (images, videos, audio and voice notes, documents, stickers) carry a media id, not the bytes:
``fetch_attachment`` asks ``GET /{media-id}`` for a short-lived URL and streams it with the access token.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

import requests

from ..base import (
    AttachmentLimits,
    Capability,
    ChannelAdapter,
    ConfigError,
    CredentialsError,
    DeliveryReport,
    Envelope,
    EnvelopeKind,
    InboundAttachment,
    InvalidWebhook,
    OutboundFile,
    OutcomeUnknown,
    PermanentError,
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
    Graph,
    GraphError,
    answer_subscription,
    parse_unix_time,
    verify_signature,
)

logger = logging.getLogger(__name__)

WEBHOOK_OBJECT = "whatsapp_business_account"
THREAD_PREFIX = "wa:"
MEDIA_PREFIX = "media:"
#: A text message's body (and a caption) takes at most this many characters.
TEXT_LENGTH = 4096
#: A template's body, once its parameters are filled in.
TEMPLATE_LENGTH = 1024
#: The customer service window: free-form messages only this long after the person last wrote.
WINDOW = timedelta(hours=24)
#: What WhatsApp takes per media type (developers.facebook.com/docs/whatsapp/cloud-api/reference/media).
IMAGE_TYPES = {"image/jpeg", "image/png"}
VIDEO_TYPES = {"video/mp4", "video/3gpp"}
AUDIO_TYPES = {"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}
IMAGE_BYTES = 5 * 1024 * 1024
VIDEO_BYTES = AUDIO_BYTES = 16 * 1024 * 1024
DOCUMENT_BYTES = 100 * 1024 * 1024
#: One file per media message; a reply's files go out one message each.
REPLY_FILES = AttachmentLimits(max_files=10, max_bytes=DOCUMENT_BYTES)
#: Message types whose content is a media object with an ``id`` (voice notes come as ``audio`` with
#: ``voice: true``; newer payloads may name them ``voice``).
MEDIA_TYPES = ("image", "video", "audio", "voice", "document", "sticker")
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}
DOWNLOAD_CHUNK = 64 * 1024
#: Ids end up in stored keys and URL paths: printable, no spaces or slashes, bounded.
ID = re.compile(r"[^\s/?#]{1,256}")
GRAPH_ID = re.compile(r"[0-9]{1,32}")
MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: ``{{1}}`` or, for templates with named parameters, ``{{first_name}}``.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
#: Meta refuses a template parameter with a tab or more than four spaces in a row (error 132018).
PARAMETER_WHITESPACE = re.compile(r"\t| {5,}")
SECRET_FIELDS = ("access_token", "app_secret", "verify_token")
#: Send errors worth explaining to an agent in plain words; Meta's own words follow.
SEND_HINTS = {
    131047: "More than 24 hours have passed since the person last wrote: WhatsApp takes only an approved template now.",
    131026: (
        "WhatsApp could not deliver to this number (it may not be on WhatsApp, run an old version of the app, "
        "or not have accepted WhatsApp's current terms)."
    ),
    131053: "WhatsApp could not process the file (an unsupported type, or too large).",
    131030: "This is a test number and the person is not on its list of allowed recipients (Meta's app dashboard).",
    131042: "WhatsApp refused the message because of a payment problem on the business account.",
    132000: "The template's parameters do not match what it expects.",
    132001: "The template does not exist in this language (Check credentials to refresh the list).",
    132015: "The template is paused because of low quality.",
    132016: "The template is disabled.",
}
#: Errors that make the whole channel unusable until an admin acts.
ACCOUNT_CODES = {131031}


class BadItem(ValueError):
    """A webhook item that cannot be interpreted; it becomes a ``Rejected`` with the raw item."""


def text_id(value, what="id") -> str:
    if not isinstance(value, str) or not ID.fullmatch(value):
        raise BadItem(f"{what} is not an id: {str(value)[:60]!r}")
    return value


def event_time(value) -> datetime:
    try:
        return plausible_time(parse_unix_time(value), platform_epoch=GRAPH_EPOCH)
    except (ValueError, OverflowError, OSError) as exc:
        raise BadItem(f"bad timestamp: {exc}") from None


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value) -> list:
    return value if isinstance(value, list) else []


def words(value) -> str:
    """A string from a payload field; "" for anything else."""
    return value.strip() if isinstance(value, str) else ""


def base_type(mime_type: str) -> str:
    """``audio/ogg; codecs=opus`` → ``audio/ogg``."""
    return mime_type.split(";")[0].strip().lower()


def error_words(error: Mapping) -> dict:
    """The parts of a WhatsApp error object (statuses[].errors[], messages[].errors[]) worth keeping."""
    details = as_dict(error.get("error_data")).get("details") or error.get("details")
    return {
        "code": error.get("code") if isinstance(error.get("code"), int) else None,
        "title": words(error.get("title")),
        "message": words(error.get("message")),
        "details": words(details),
    }


def describe_error_words(error: Mapping) -> str:
    """ "Title: message: details (code n)", each part once (WhatsApp often repeats the title as the message)."""
    parts: list[str] = []
    for part in (error["title"], error["message"], error["details"]):
        if part and part not in parts:
            parts.append(part)
    text = ": ".join(parts)
    return f"{text} (code {error['code']})" if error["code"] else text


class WhatsAppAdapter(ChannelAdapter):
    """Config: ``phone_number_id`` (the business number's id, not the number), ``waba_id`` (its WhatsApp
    Business Account), ``base_url`` (default Meta's Graph API), ``timeout`` (seconds, default 15). Secrets:
    ``access_token`` (a system user token with whatsapp_business_messaging and whatsapp_business_management),
    ``app_secret`` (signs the webhooks), ``verify_token`` (the subscription handshake).

    State (``check_credentials``): ``phone_number``, ``verified_name`` and ``templates``, the approved templates
    that can be sent (name, language, category, body), each offered as a reply mode."""

    kind = "whatsapp"
    capabilities = frozenset({Capability.WEBHOOK, Capability.REPLY})
    secret_fields = SECRET_FIELDS
    max_reply_length = TEXT_LENGTH
    finds_sent = False

    @classmethod
    def split_config(cls, raw):
        config, secrets = super().split_config(raw)
        for key in ("phone_number_id", "waba_id"):
            value = config.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                value = config[key] = str(value)
            if not isinstance(value, str) or not GRAPH_ID.fullmatch(value):
                raise ConfigError(
                    f"WhatsApp needs {key}: the numeric id Meta shows in WhatsApp Manager "
                    "(API Setup), not the phone number itself."
                )
        for key in SECRET_FIELDS:
            if not isinstance(secrets.get(key), str) or not secrets[key]:
                raise ConfigError(f"WhatsApp needs {key}.")
        base_url = config.setdefault("base_url", DEFAULT_BASE_URL)
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError("base_url must be an http(s) address, e.g. https://graph.facebook.com/v25.0.")
        timeout = config.get("timeout", DEFAULT_TIMEOUT_SECONDS)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError("timeout must be a positive number of seconds.")
        return config, secrets

    @classmethod
    def polling_limits(cls, config):
        return (
            "WhatsApp has no API to read messages: this channel receives them only through its webhook, and "
            "cannot poll. Messages that arrive while the webhook fails are retried by Meta for up to 7 days, "
            "then lost; keep the webhook URL reachable and subscribed to the messages field."
        )

    # Platform calls ---------------------------------------------------------

    def _graph(self) -> Graph:
        if getattr(self, "_graph_client", None) is None:
            self._graph_client = Graph(
                base_url=self.config.get("base_url", DEFAULT_BASE_URL),
                token=self.secrets.get("access_token", ""),
                timeout=self.config.get("timeout", DEFAULT_TIMEOUT_SECONDS),
                product="WhatsApp",
            )
        return self._graph_client

    def check_credentials(self):
        graph = self._graph()
        number = graph.get(self.config["phone_number_id"], {"fields": "display_phone_number,verified_name"})
        templates, unusable = [], []
        params = {"status": "APPROVED", "fields": "name,language,category,status,components", "limit": 100}
        for page in graph.pages(f"{self.config['waba_id']}/message_templates", params):
            for item in page:
                template, reason = usable_template(item)
                if template:
                    templates.append(template)
                elif reason:
                    unusable.append({"name": str(item.get("name"))[:200], "reason": reason})
        for item in unusable:
            logger.info("whatsapp: template %s is not offered to agents: %s", item["name"], item["reason"])
        return {
            "phone_number": str(number.get("display_phone_number") or ""),
            "verified_name": str(number.get("verified_name") or ""),
            "templates": templates,
            "unusable_templates": unusable,
        }

    # Webhooks ---------------------------------------------------------------

    def verify_subscription(self, params):
        return answer_subscription(params, self.secrets.get("verify_token", ""))

    def handle_webhook(self, *, headers, body):
        secret = self.secrets.get("app_secret")
        if not secret:
            raise InvalidWebhook("This channel has no app_secret; webhooks are refused.", status=403)
        verify_signature(secret, headers, body)
        try:
            payload = json.loads(body.decode("utf-8", errors="replace"))
        except json.JSONDecodeError:
            raise InvalidWebhook("Malformed JSON body.") from None
        except RecursionError:
            raise InvalidWebhook("The JSON body is nested too deeply.") from None
        if not isinstance(payload, dict):
            raise InvalidWebhook("The body is not a JSON object.")
        if payload.get("object") != WEBHOOK_OBJECT:
            raise InvalidWebhook(f"Not a WhatsApp webhook (object {str(payload.get('object'))[:60]!r}).")
        entries = payload.get("entry")
        if not isinstance(entries, list):
            raise InvalidWebhook("The webhook has no entry list.")
        result = WebhookResult(body={"ok": True})
        for entry in entries:
            self._entry(entry, result)
        return result

    def _entry(self, entry, result):
        if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
            result.rejected.append(Rejected(reference="entry", reason="entry without a changes list", raw=entry))
            return
        if str(entry.get("id")) != self.config.get("waba_id"):
            logger.warning(
                "whatsapp: ignoring an entry for account %s (this channel is account %s)",
                str(entry.get("id"))[:60],
                self.config.get("waba_id"),
            )
            return
        for change in entry["changes"]:
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                result.rejected.append(Rejected(reference="change", reason="change without a value", raw=change))
                continue
            field, value = change.get("field"), change["value"]
            if field == "messages":
                self._messages_change(value, result)
            elif field == "smb_message_echoes":
                # Messages the business sent from the WhatsApp Business app: not the person writing.
                logger.info("whatsapp: skipping %d message echoes", len(as_list(value.get("message_echoes"))))
            elif field == "message_template_status_update":
                logger.info(
                    "whatsapp: template %s (%s) is now %s%s; Check credentials to refresh the templates offered",
                    words(value.get("message_template_name"))[:200],
                    words(value.get("message_template_language"))[:20],
                    words(value.get("event"))[:40],
                    f" ({words(value.get('reason'))[:200]})" if words(value.get("reason")) not in ("", "NONE") else "",
                )
            else:
                logger.info("whatsapp: ignoring webhook field %r", str(field)[:100])

    def _messages_change(self, value, result):
        metadata = as_dict(value.get("metadata"))
        number_id = metadata.get("phone_number_id")
        if str(number_id) != self.config.get("phone_number_id"):
            logger.warning(
                "whatsapp: ignoring a change for phone number %s (this channel is %s)",
                str(number_id)[:60],
                self.config.get("phone_number_id"),
            )
            return
        for error in as_list(value.get("errors")):
            if isinstance(error, dict):
                logger.warning("whatsapp: webhook error: %s", describe_error_words(error_words(error)))
        names = {
            contact["wa_id"]: words(as_dict(contact.get("profile")).get("name"))
            for contact in as_list(value.get("contacts"))
            if isinstance(contact, dict) and isinstance(contact.get("wa_id"), str)
        }
        own_number = re.sub(r"\D", "", str(metadata.get("display_phone_number") or ""))
        for message in as_list(value.get("messages")):
            self._interpret(lambda m: self._message(m, names, own_number, value), message, result)
        for status in as_list(value.get("statuses")):
            self._interpret(self._status, status, result)

    @staticmethod
    def _interpret(build, item, result):
        try:
            envelope = build(item)
        except (BadItem, LookupError, TypeError, AttributeError) as exc:
            reference = item.get("id") if isinstance(item, dict) else None
            result.rejected.append(
                Rejected(reference=str(reference or "?")[:100], reason=f"uninterpretable: {exc}", raw=item)
            )
            return
        if envelope is not None:
            result.envelopes.append(envelope)

    # Inbound messages -------------------------------------------------------

    def _sender(self, wa_id, names) -> Sender:
        return Sender(
            namespace=f"whatsapp:{self.config['phone_number_id']}",
            external_id=wa_id,
            handle=f"+{wa_id}" if wa_id.isdigit() else wa_id,
            display_name=names.get(wa_id, "")[:200],
        )

    def _message(self, message, names, own_number, value) -> Envelope | None:
        if not isinstance(message, dict):
            raise BadItem("message is not an object")
        wamid = text_id(message.get("id"), "message id")
        wa_id = text_id(message.get("from"), "from")
        sent_at = event_time(message.get("timestamp"))
        kind = message.get("type")
        if not isinstance(kind, str) or not kind:
            raise BadItem("message without a type")
        if own_number and wa_id == own_number:
            return None  # our own number (a message sent from the business app shows up like this)
        common = {"thread_key": THREAD_PREFIX + wa_id, "sent_at": sent_at, "sender": self._sender(wa_id, names)}
        if kind == "reaction":
            return reaction(message, wa_id, common)
        if kind == "edit":
            return edit(message, wamid, common)
        if kind == "revoke":
            original = text_id(as_dict(message.get("revoke")).get("original_message_id"), "original_message_id")
            return Envelope(
                external_id=f"{original}:delete", kind=EnvelopeKind.DELETE, target_id=original, reopens=False, **common
            )
        text, attachments = content(message, kind, value)
        return Envelope(
            external_id=wamid,
            kind=EnvelopeKind.MESSAGE,
            text=text,
            starts_thread=True,
            reopens=False,  # a chat is one ticket while it is open; a later message starts a new one
            meta=message_meta(message),
            attachments=attachments,
            **common,
        )

    def _status(self, status) -> Envelope | None:
        if not isinstance(status, dict):
            raise BadItem("status is not an object")
        wamid = text_id(status.get("id"), "status id")
        recipient = text_id(status.get("recipient_id"), "recipient_id")
        sent_at = event_time(status.get("timestamp"))
        state = status.get("status")
        if state == "sent":
            return None  # send() already knew
        if status.get("recipient_type") == "group":
            logger.info("whatsapp: ignoring a %s status for a group message", str(state)[:20])
            return None
        meta: dict = {}
        if state == "delivered":
            meta["status"] = DeliveryReport.DELIVERED.value
        elif state in ("read", "played"):  # played: a voice message was listened to, which reads it
            meta["status"] = DeliveryReport.READ.value
        elif state == "failed":
            # The agent sees meta["error"] as it is: WhatsApp's title, message and details, and its code.
            errors = [error_words(e) for e in as_list(status.get("errors")) if isinstance(e, dict)]
            meta["status"] = DeliveryReport.FAILED.value
            meta["error"] = "; ".join(describe_error_words(e) for e in errors) or "WhatsApp gave no reason."
            if errors and errors[0]["code"]:
                meta["error_code"] = errors[0]["code"]
        else:
            logger.info("whatsapp: ignoring status %r", str(state)[:40])
            return None
        if isinstance(status.get("biz_opaque_callback_data"), str):
            meta["key"] = status["biz_opaque_callback_data"][:512]
        return Envelope(
            external_id=f"{wamid}:{state}",
            kind=EnvelopeKind.STATUS,
            thread_key=THREAD_PREFIX + recipient,
            sent_at=sent_at,
            target_id=wamid,
            reopens=False,
            meta=meta,
        )

    # Replies ----------------------------------------------------------------

    def reply_modes(self, target):
        return [self._free_form_mode(target), *self._template_modes()]

    def _free_form_mode(self, target: ReplyTarget) -> ReplyMode:
        mode = ReplyMode(key="", label="Reply", max_length=TEXT_LENGTH, attachments=REPLY_FILES)
        if target.last_inbound_at is None:
            # Nothing to count the window from: let WhatsApp decide (a refusal comes back as a clear error).
            return mode
        closes = target.last_inbound_at + WINDOW
        if datetime.now(UTC) < closes:
            return ReplyMode(**{**vars(mode), "expires_at": closes})
        then = "an approved template"
        if not self._templates():
            then += ", and this number has none (approve one in WhatsApp Manager, then Check credentials)"
        return ReplyMode(
            **{
                **vars(mode),
                "allowed": False,
                "reason": (
                    f"WhatsApp's 24-hour window closed at {closes.astimezone(UTC):%Y-%m-%d %H:%M} UTC, 24 hours "
                    f"after the person last wrote; only {then} can be sent until they write again."
                ),
            }
        )

    def _template_modes(self) -> list[ReplyMode]:
        modes = []
        for template in self._templates():
            modes.append(
                ReplyMode(
                    key=template_key(template),
                    label=f'Template "{template["name"]}" ({template["language"]})',
                    max_length=TEMPLATE_LENGTH,
                    template_body=template["body"],
                )
            )
        return modes

    def _templates(self) -> list[dict]:
        return [
            t
            for t in as_list(self.state.get("templates"))
            if isinstance(t, dict) and all(isinstance(t.get(k), str) for k in ("name", "language", "body"))
        ]

    def _template(self, mode: str) -> dict:
        for template in self._templates():
            if template_key(template) == mode:
                return template
        raise PermanentError(
            f"This number has no approved template {mode.removeprefix('template:')!r} any more "
            "(Check credentials to refresh the list)."
        )

    def reply_length(self, text, mode):
        if mode.startswith("template:"):
            template = next((t for t in self._templates() if template_key(t) == mode), None)
            if template is not None:
                return len(fill_template(template["body"], text, strict=False)[0])
        return len(text)

    def send(self, *, target, text, key):
        recipient = recipient_of(target)
        if target.mode.startswith("template:"):
            template = self._template(target.mode)
            _, parameters = fill_template(template["body"], text, strict=True, name=template["name"])
            body = template_message(template, parameters)
            self.usage[f"template_{str(template.get('category') or 'unknown').lower()}"] += 1
        elif target.mode:
            raise PermanentError(f"WhatsApp has no reply mode {target.mode!r}.")
        else:
            if len(text) > TEXT_LENGTH:
                raise PermanentError(f"A WhatsApp message takes at most {TEXT_LENGTH} characters.")
            body = {"type": "text", "text": {"body": text, "preview_url": False}}
            self.usage["service_message"] += 1
        # The text quotes the message it answers (an edit's or reaction's id is no message to quote).
        quoting = target.reply_to if not target.mode and ":" not in target.reply_to else ""
        return Sent(external_id=self._post_message(recipient, body, key=key, quoting=quoting))

    def send_attachment(self, *, target, file: OutboundFile):
        if target.mode:
            raise PermanentError("A WhatsApp template carries no files; send them as a reply inside the window.")
        recipient = recipient_of(target)
        kind = media_kind(file)
        try:
            uploaded = self._graph().post(
                f"{self.config['phone_number_id']}/media",
                data={"messaging_product": "whatsapp", "type": file.content_type},
                files={"file": (file.name, file.data, file.content_type)},
                # An upload that may have arrived is harmless to repeat: the copy that is never sent expires.
                write=False,
            )
        except GraphError as exc:
            raise self._refusal(exc) from None
        media_id = uploaded.get("id")
        if not isinstance(media_id, str) or not media_id:
            raise TransientError("WhatsApp answered the upload without a media id.")
        media = {"id": media_id}
        if kind == "document":
            media["filename"] = file.name
        return self._post_message(recipient, {"type": kind, kind: media}, key="")

    def _post_message(self, recipient, body, *, key, quoting="") -> str:
        message = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": recipient, **body}
        if quoting:
            message["context"] = {"message_id": quoting}  # shown as a quoted reply
        if key:
            message["biz_opaque_callback_data"] = key[:512]  # comes back with each status of this message
        try:
            answer = self._graph().post(f"{self.config['phone_number_id']}/messages", json_body=message)
        except GraphError as exc:
            raise self._refusal(exc) from None
        ids = [m.get("id") for m in as_list(answer.get("messages")) if isinstance(m, dict)]
        if not ids or not isinstance(ids[0], str) or not ids[0]:
            raise OutcomeUnknown("WhatsApp accepted the message without giving its id.")
        return ids[0]

    @staticmethod
    def _refusal(exc: GraphError):
        if exc.code in ACCOUNT_CODES:
            return CredentialsError(f"The WhatsApp business account is locked: {exc}")
        hint = SEND_HINTS.get(exc.code)
        return PermanentError(f"{hint} {exc}") if hint else exc

    # Files ------------------------------------------------------------------

    def fetch_attachment(self, ref) -> Iterator[bytes]:
        media_id = ref.removeprefix(MEDIA_PREFIX)
        if not ref.startswith(MEDIA_PREFIX) or not MEDIA_ID.fullmatch(media_id):
            raise PermanentError(f"Not a WhatsApp media reference: {ref[:60]!r}.")
        graph = self._graph()
        try:
            info = graph.get(media_id)
        except GraphError as exc:
            raise PermanentError(
                f"WhatsApp no longer has this file (media is kept for 30 days) or refused it: {exc}"
            ) from None
        url = info.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise PermanentError("WhatsApp gave no address for this file.")
        response = graph.stream(url)
        with response:
            try:
                yield from response.iter_content(DOWNLOAD_CHUNK)
            except requests.RequestException as exc:
                raise TransientError(f"WhatsApp file download broke off: {type(exc).__name__}") from None


# Interpreting message content ---------------------------------------------------------------------


def content(message, kind, value) -> tuple[str, tuple[InboundAttachment, ...]]:
    """What a message says, as text an agent reads, and its file if it has one."""
    if kind == "text":
        body = as_dict(message.get("text")).get("body")
        if not isinstance(body, str):
            raise BadItem("text message without text.body")
        return body, ()
    if kind in MEDIA_TYPES and isinstance(message.get(kind), dict):
        return media_content(message[kind], kind)
    if kind == "location":
        return location_text(as_dict(message.get("location"))), ()
    if kind == "contacts":
        return contacts_text(as_list(message.get("contacts"))), ()
    if kind == "interactive" and isinstance(message.get("interactive"), dict):
        return interactive_text(message["interactive"]), ()
    if kind == "button":
        button = as_dict(message.get("button"))
        return f"Pressed the button: {words(button.get('text')) or words(button.get('payload'))}", ()
    if kind == "order":
        return order_text(as_dict(message.get("order"))), ()
    if kind == "system":
        system = as_dict(message.get("system"))
        return f"[WhatsApp notice: {words(system.get('body')) or words(system.get('type')) or 'system message'}]", ()
    if kind == "request_welcome":
        return "[The person opened a chat with this number for the first time.]", ()
    return unsupported_text(message, kind, value), ()


def media_content(media: Mapping, kind) -> tuple[str, tuple[InboundAttachment, ...]]:
    media_id = media.get("id")
    if not isinstance(media_id, str) or not MEDIA_ID.fullmatch(media_id):
        raise BadItem(f"{kind} without a media id")
    content_type = base_type(words(media.get("mime_type"))) or "application/octet-stream"
    voice = kind == "voice" or (kind == "audio" and media.get("voice") is True)
    label = "voice-message" if voice else f"{'animated-' if media.get('animated') is True else ''}{kind}"
    name = words(media.get("filename"))[:200] or f"{label}-{media_id}{EXTENSIONS.get(content_type, '')}"
    size = media.get("file_size")
    attachment = InboundAttachment(
        name=name,
        content_type=content_type,
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else 0,
        ref=MEDIA_PREFIX + media_id,
    )
    caption = media.get("caption")
    return (caption if isinstance(caption, str) else ""), (attachment,)


def location_text(location: Mapping) -> str:
    latitude, longitude = location.get("latitude"), location.get("longitude")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (latitude, longitude)):
        raise BadItem("location without coordinates")
    place = ", ".join(part for part in (words(location.get("name")), words(location.get("address"))) if part)
    link = words(location.get("url")) or f"https://maps.google.com/?q={latitude},{longitude}"
    return f"Shared a location: {place + ' ' if place else ''}({latitude}, {longitude}) {link}"


def contacts_text(contacts: list) -> str:
    lines = ["Shared contacts:"]
    for contact in contacts:
        if not isinstance(contact, dict):
            continue
        name = as_dict(contact.get("name"))
        full = words(name.get("formatted_name")) or " ".join(
            part for part in (words(name.get("first_name")), words(name.get("last_name"))) if part
        )
        details = [
            " ".join(part for part in (words(phone.get("phone")), f"({words(phone.get('type'))})") if part != "()")
            for phone in as_list(contact.get("phones"))
            if isinstance(phone, dict) and words(phone.get("phone"))
        ]
        details += [
            words(email.get("email"))
            for email in as_list(contact.get("emails"))
            if isinstance(email, dict) and words(email.get("email"))
        ]
        lines.append(f"- {full or '(no name)'}{': ' + ', '.join(details) if details else ''}")
    if len(lines) == 1:
        raise BadItem("contacts message without contacts")
    return "\n".join(lines)


def interactive_text(interactive: Mapping) -> str:
    kind = interactive.get("type")
    if kind == "button_reply":
        reply = as_dict(interactive.get("button_reply"))
        return f"Chose: {words(reply.get('title')) or words(reply.get('id'))}"
    if kind == "list_reply":
        reply = as_dict(interactive.get("list_reply"))
        title, description = words(reply.get("title")) or words(reply.get("id")), words(reply.get("description"))
        return f"Chose: {title}{f' ({description})' if description else ''}"
    if kind == "nfm_reply":
        reply = as_dict(interactive.get("nfm_reply"))
        return f"Submitted a form: {words(reply.get('body')) or words(reply.get('name'))}\n{reply.get('response_json', '')}"
    return f"[An interactive reply of a kind this helpdesk does not read: {str(kind)[:40]}]"


def order_text(order: Mapping) -> str:
    lines = ["Sent an order:"]
    for item in as_list(order.get("product_items")):
        if isinstance(item, dict):
            lines.append(
                f"- {item.get('quantity', '?')} x {words(item.get('product_retailer_id'))} "
                f"({item.get('item_price', '?')} {words(item.get('currency'))})"
            )
    if words(order.get("text")):
        lines.append(words(order.get("text")))
    return "\n".join(lines)


def unsupported_text(message, kind, value) -> str:
    """A message WhatsApp could not pass on, or of a type this adapter does not know: said, never dropped."""
    shown = words(as_dict(message.get("unsupported")).get("type")) or kind
    errors = [e for e in as_list(message.get("errors")) + as_list(value.get("errors")) if isinstance(e, dict)]
    reason = describe_error_words(error_words(errors[0])) if errors else ""
    return f"[unsupported message type: {shown[:40]}{f' ({reason})' if reason else ''}]"


def message_meta(message) -> dict:
    context = as_dict(message.get("context"))
    meta = {}
    if context.get("forwarded") is True:
        meta["forwarded"] = True
    if context.get("frequently_forwarded") is True:
        meta["forwarded"] = meta["frequently_forwarded"] = True
    if isinstance(context.get("id"), str):
        meta["in_reply_to"] = context["id"]  # the message this one quotes (ours or theirs)
    referral = as_dict(message.get("referral"))
    if referral:
        meta["referral"] = {k: words(referral.get(k)) for k in ("source_type", "source_url", "headline")}
    return meta


def reaction(message, wa_id, common) -> Envelope:
    data = as_dict(message.get("reaction"))
    target = text_id(data.get("message_id"), "reaction.message_id")
    emoji = data.get("emoji") if isinstance(data.get("emoji"), str) else ""
    removed = not emoji
    timestamp = message.get("timestamp")
    return Envelope(
        external_id=f"{target}:reaction:{wa_id}:{'unreact' if removed else 'react'}:{timestamp}",
        kind=EnvelopeKind.REACTION,
        target_id=target,
        reopens=False,
        meta={"emoji": emoji, "removed": removed},
        **common,
    )


def edit(message, wamid, common) -> Envelope:
    data = as_dict(message.get("edit"))
    original = text_id(data.get("original_message_id"), "original_message_id")
    edited = as_dict(data.get("message"))
    kind = edited.get("type")
    if kind == "text":
        text = as_dict(edited.get("text")).get("body")
    else:
        text = as_dict(edited.get(kind)).get("caption") if isinstance(kind, str) else None
    if not isinstance(text, str):
        raise BadItem("edit without the new text or caption")
    return Envelope(
        # The edit's own wamid: two edits within one second stay two events.
        external_id=f"{original}:edit:{wamid}",
        kind=EnvelopeKind.EDIT,
        target_id=original,
        text=text,
        reopens=False,
        **common,
    )


# Replies ------------------------------------------------------------------------------------------


def recipient_of(target: ReplyTarget) -> str:
    if not target.thread_key.startswith(THREAD_PREFIX) or not GRAPH_ID.fullmatch(
        target.thread_key.removeprefix(THREAD_PREFIX)
    ):
        raise PermanentError(f"Not a WhatsApp chat: {target.thread_key[:60]!r}.")
    return target.thread_key.removeprefix(THREAD_PREFIX)


def template_key(template: Mapping) -> str:
    return f"template:{template['name']}:{template['language']}"


def usable_template(item) -> tuple[dict | None, str]:
    """(the template as state keeps it, "") when agents can send it by filling its body's parameters;
    (None, why not) otherwise."""
    if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("name", "language")):
        return None, "no name or language"
    if item.get("status", "APPROVED") != "APPROVED":
        return None, f"status {item.get('status')}"
    body = ""
    for component in as_list(item.get("components")):
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type", "")).upper()
        if kind == "BODY":
            body = words(component.get("text"))
        elif kind == "HEADER" and (
            str(component.get("format", "TEXT")).upper() != "TEXT" or PLACEHOLDER.search(str(component.get("text")))
        ):
            return None, "its header needs a file or a value, which agents cannot give"
        elif kind == "BUTTONS" and any(
            isinstance(b, dict) and PLACEHOLDER.search(str(b.get("url", ""))) for b in as_list(component.get("buttons"))
        ):
            return None, "a button needs a value, which agents cannot give"
    if not body:
        return None, "no body text"
    return {
        "name": item["name"],
        "language": item["language"],
        "category": str(item.get("category") or ""),
        "body": body,
    }, ""


def placeholders(body: str) -> list[str]:
    """The template's parameters in the order they are filled: numbers in order, names as they appear."""
    names = list(dict.fromkeys(PLACEHOLDER.findall(body)))
    return sorted(names, key=int) if all(n.isdigit() for n in names) else names


def fill_template(body: str, text: str, *, strict: bool, name: str = "") -> tuple[str, list[tuple[str, str]]]:
    """The body with ``{{n}}`` replaced by the agent's lines (one per parameter), and the (parameter, value)
    pairs to send. ``strict``: a missing, empty or extra line is a ``PermanentError`` that names what is expected.

    A template without parameters is sent as it is, whatever the reply says: the helpdesk takes no empty reply,
    and the composer shows the template's body, which is what the person gets."""
    wanted = placeholders(body)
    lines = [PARAMETER_WHITESPACE.sub(" ", line.strip()) for line in text.strip().splitlines()] if text.strip() else []
    if strict and wanted and (len(lines) != len(wanted) or not all(lines)):
        expected = ", ".join(f"{{{{{p}}}}}" for p in wanted)
        raise PermanentError(
            f'Template "{name}" takes {len(wanted)} value{"s" if len(wanted) != 1 else ""}, one per line '
            f"({expected}); the reply has {len([line for line in lines if line])}."
        )
    values = dict(zip(wanted, lines, strict=False))
    rendered = PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), body)
    return rendered, [(p, values[p]) for p in wanted if p in values]


def template_message(template: Mapping, parameters: list[tuple[str, str]]) -> dict:
    message = {"type": "template", "template": {"name": template["name"], "language": {"code": template["language"]}}}
    if parameters:
        named = not all(name.isdigit() for name, _ in parameters)
        message["template"]["components"] = [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": value, **({"parameter_name": name} if named else {})}
                    for name, value in parameters
                ],
            }
        ]
    return message


def media_kind(file: OutboundFile) -> str:
    """How WhatsApp carries this file: as an image, video or audio where it takes the type and size, else as a
    document (up to 100 MB), so a large photo still arrives, as a file."""
    content_type, size = base_type(file.content_type), len(file.data)
    if size > DOCUMENT_BYTES:
        raise PermanentError(f"WhatsApp takes files up to {DOCUMENT_BYTES // (1024 * 1024)} MB; {file.name} is larger.")
    if content_type in IMAGE_TYPES and size <= IMAGE_BYTES:
        return "image"
    if content_type in VIDEO_TYPES and size <= VIDEO_BYTES:
        return "video"
    if content_type in AUDIO_TYPES and size <= AUDIO_BYTES:
        return "audio"
    return "document"
