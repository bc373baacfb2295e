"""WhatsApp Cloud API: one business phone number. Messages arrive only by webhook; replies go out as text inside
WhatsApp's 24-hour customer service window, or as an approved template at any time.

WhatsApp has no API to read messages back, so this channel cannot poll, and cannot tell after an unanswered send
whether the reply arrived (``finds_sent`` is false). What it learns afterwards comes by webhook: ``statuses[]``
report each reply sent, delivered, read or failed (``STATUS`` envelopes), with the reply's delivery key
(``biz_opaque_callback_data``), so a report confirms a reply whose send went unanswered
(``reports_carry_key``).

Inbound files (images, videos, audio and voice notes, documents, stickers) carry a media id, not the bytes:
``fetch_attachment`` asks ``GET /{media-id}`` for a short-lived URL and streams it with the access token.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
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
)
from .graph import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT_SECONDS,
    Graph,
    GraphError,
    answer_subscription,
    verify_signature,
)
from .whatsapp_messages import (
    MEDIA_ID,
    MEDIA_PREFIX,
    BadItem,
    as_dict,
    as_list,
    base_type,
    content,
    describe_error_words,
    edit,
    error_words,
    event_time,
    message_meta,
    reaction,
    text_id,
    words,
)
from .whatsapp_templates import fill_template, template_key, template_message, usable_template

logger = logging.getLogger(__name__)

WEBHOOK_OBJECT = "whatsapp_business_account"
THREAD_PREFIX = "wa:"
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
#: A photo over IMAGE_BYTES goes as a document, so images share the documents' limit here.
REPLY_FILES = AttachmentLimits(
    max_files=10, max_bytes=DOCUMENT_BYTES, by_type=(("video/", VIDEO_BYTES), ("audio/", AUDIO_BYTES))
)
DOWNLOAD_CHUNK = 64 * 1024
GRAPH_ID = re.compile(r"[0-9]{1,32}")
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
    reports_carry_key = True

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
        except (ValueError, LookupError, TypeError, AttributeError) as exc:  # BadItem is a ValueError
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
        key = status.get("biz_opaque_callback_data")
        if state == "sent" and not isinstance(key, str):
            return None  # send() already knew; with our key it can confirm a send whose answer was lost
        if status.get("recipient_type") == "group":
            logger.info("whatsapp: ignoring a %s status for a group message", str(state)[:20])
            return None
        meta: dict = {}
        if state == "sent":
            meta["status"] = DeliveryReport.SENT.value
        elif state == "delivered":
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
        if isinstance(key, str):
            meta["key"] = key[:512]
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
            return replace(mode, expires_at=closes)
        then = "an approved template"
        if not self._templates():
            then += ", and this number has none (approve one in WhatsApp Manager, then Check credentials)"
        return replace(
            mode,
            allowed=False,
            reason=(
                f"WhatsApp's 24-hour window closed at {closes.astimezone(UTC):%Y-%m-%d %H:%M} UTC, 24 hours after "
                f"the person last wrote; only {then} can be sent until they write again."
            ),
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
            billed = f"template_{str(template.get('category') or 'unknown').lower()}"
        elif target.mode:
            raise PermanentError(f"WhatsApp has no reply mode {target.mode!r}.")
        else:
            if len(text) > TEXT_LENGTH:
                raise PermanentError(f"A WhatsApp message takes at most {TEXT_LENGTH} characters.")
            body = {"type": "text", "text": {"body": text, "preview_url": False}}
            billed = "service_message"
        # The text quotes the message it answers (an edit's or reaction's id is no message to quote).
        quoting = target.reply_to if not target.mode and ":" not in target.reply_to else ""
        sent = Sent(external_id=self._post_message(recipient, body, key=key, quoting=quoting))
        self.usage[billed] += 1  # Meta bills a delivered message, not a refused one
        return sent

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


# Replies ------------------------------------------------------------------------------------------


def recipient_of(target: ReplyTarget) -> str:
    if not target.thread_key.startswith(THREAD_PREFIX) or not GRAPH_ID.fullmatch(
        target.thread_key.removeprefix(THREAD_PREFIX)
    ):
        raise PermanentError(f"Not a WhatsApp chat: {target.thread_key[:60]!r}.")
    return target.thread_key.removeprefix(THREAD_PREFIX)


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
