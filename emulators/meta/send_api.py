"""What the business sends: Messenger/Instagram Send API (replies, HUMAN_AGENT, private replies), comment
replies, WhatsApp messages and media uploads; the windows are enforced as Meta does.

Windows (from the person's last message, or the comment's time for a private reply):
- Messenger/Instagram ``messaging_type`` RESPONSE/UPDATE within 24 h; MESSAGE_TAG with tag HUMAN_AGENT within
  7 days, when the account has the Human Agent permission. Outside: code 10, subcode 2018278 (Messenger)
  or 2534022 (Instagram).
- A private reply (``recipient={"comment_id"}``) within 7 days of the comment, once per comment.
- WhatsApp free-form within 24 h, else code 131047 (answered at once; the real Cloud API may instead accept
  the call and report 131047 in a ``failed`` status). Approved templates any time.

After each send, receipts follow (``Receipts``): Messenger ``delivery`` + ``read``, Instagram ``read``,
WhatsApp ``statuses`` sent, delivered, read; or ``failed`` for a send armed to fail.
"""

import json
import threading
from dataclasses import dataclass

from . import payloads
from .errors import GraphError, invalid_parameter, permission, too_long, whatsapp_error, whatsapp_status_error
from .graph_reads import Request
from .people import People
from .store import (
    HUMAN_AGENT_WINDOW,
    STANDARD_WINDOW,
    Account,
    Attachment,
    Comment,
    Message,
    Person,
    Store,
    WhatsAppMessage,
    iso,
    now,
)
from .webhooks import WebhookPusher

DM_TEXT_LIMITS = {"page": 2000, "instagram": 1000}
COMMENT_TEXT_LIMITS = {"page": 8000, "instagram": 2200}
WHATSAPP_TEXT_LIMIT = 4096
WINDOW_SUBCODES = {"page": 2018278, "instagram": 2534022}
WHATSAPP_UPLOAD_LIMITS = {"image": 5 * 2**20, "video": 16 * 2**20, "audio": 16 * 2**20, "sticker": 500 * 2**10}
WHATSAPP_DOCUMENT_LIMIT = 100 * 2**20
#: Armed WhatsApp failures: (title, details) per documented code.
WHATSAPP_FAILURES = {
    131026: ("Message undeliverable", "Message Undeliverable."),
    131047: (
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
    ),
    131049: (
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    ),
    131050: (
        "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business",
        "Unable to deliver the message.",
    ),
    130472: (
        "User's number is part of an experiment",
        "Failed to send message because this user's phone number is part of an experiment",
    ),
}


def _json_param(params: dict, name: str):
    """Form posts carry objects as JSON strings (``recipient={"id":"..."}``); JSON bodies as objects."""
    value = params.get(name)
    if isinstance(value, str) and value.strip().startswith(("{", "[")):
        try:
            return json.loads(value)
        except ValueError:
            raise invalid_parameter(f"param {name} must be a JSON object") from None
    return value


@dataclass
class ReceiptSettings:
    enabled: bool = True
    sent_delay: float = 0.0  # WhatsApp only
    delivered_delay: float = 0.05
    read_delay: float = 0.1


class Receipts:
    """Schedules the pushes that follow a business send, and WhatsApp sends armed to fail."""

    def __init__(self, pusher: WebhookPusher):
        self.pusher = pusher
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.settings = ReceiptSettings()
            self._failures: dict[str, list[int]] = {}  # account id -> codes, used up in order

    def configure(self, **changes) -> dict:
        with self._lock:
            for name, value in changes.items():
                if value is not None:
                    setattr(self.settings, name, bool(value) if name == "enabled" else float(value))
            return dict(vars(self.settings))

    def fail_next(self, account_id: str, code: int, count: int) -> None:
        if code not in WHATSAPP_FAILURES:
            raise ValueError(f"code must be one of {sorted(WHATSAPP_FAILURES)}")
        with self._lock:
            self._failures.setdefault(account_id, []).extend([code] * count)

    def take_failure(self, account_id: str) -> int | None:
        with self._lock:
            codes = self._failures.get(account_id)
            return codes.pop(0) if codes else None

    def after_dm(self, account: Account, person: Person, message: Message) -> None:
        settings = self.settings
        if not settings.enabled:
            return
        if account.kind == "page":
            delivery = payloads.dm_delivery(account, person.id, [message.id], message.created)
            self.pusher.publish(account.id, delivery, delay=settings.delivered_delay)
        read = payloads.dm_read(account, person.id, message.created, message.id)
        self.pusher.publish(account.id, read, delay=settings.read_delay)

    def after_whatsapp(self, account: Account, person: Person, wamid: str, callback_data: str | None) -> None:
        code = self.take_failure(account.id)
        settings = self.settings
        if code is not None:  # reported even with receipts off: it is the only word of the failure
            title, details = WHATSAPP_FAILURES[code]
            errors = [whatsapp_status_error(code, title, details)]
            body = payloads.whatsapp_status(account, wamid, person, "failed", now(), errors, callback_data)
            self.pusher.publish(account.id, body, delay=settings.sent_delay)
            return
        if not settings.enabled:
            return
        for status, delay in (
            ("sent", settings.sent_delay),
            ("delivered", settings.delivered_delay),
            ("read", settings.read_delay),
        ):
            body = payloads.whatsapp_status(account, wamid, person, status, now(), callback_data=callback_data)
            self.pusher.publish(account.id, body, delay)


class SendApi:
    def __init__(self, store: Store, people: People, receipts: Receipts):
        self.store = store
        self.people = people
        self.receipts = receipts

    def _record(self, account: Account, kind: str, **details) -> dict:
        entry = {
            "account_id": account.id,
            "product": account.product,
            "kind": kind,
            "created_time": iso(now()),
            "timestamp": now(),
            **details,
        }
        self.store.sent.append(entry)
        return entry

    # -- Messenger and Instagram ----------------------------------------------------------------

    def dm(self, request: Request, account: Account) -> dict:
        """``POST /{page-id}/messages`` (Messenger, or Instagram for an IGSID or an IG comment) and
        ``POST /{ig-user-id}/messages``."""
        params = request.params
        recipient = _json_param(params, "recipient")
        if not isinstance(recipient, dict) or not (recipient.get("id") or recipient.get("comment_id")):
            raise invalid_parameter("param recipient must be non-empty.")
        candidates = [account]
        if account.kind == "page" and self.store.instagram_of(account.id) is not None:
            candidates.append(self.store.instagram_of(account.id))
        if params.get("sender_action"):
            target, person = self._recipient(candidates, recipient)
            return {"recipient_id": person.id}
        message = _json_param(params, "message")
        if not isinstance(message, dict):
            raise invalid_parameter("param message must be a JSON object")
        if recipient.get("comment_id"):
            target, comment = self._private_reply_target(candidates, str(recipient["comment_id"]))
            person = self.store.known_person(target.id, comment.author_id)
        else:
            target, person = self._recipient(candidates, recipient)
            comment = None
        text = message.get("text") or ""
        attachment = self._attachment(request, target, message)
        if not text and attachment is None:
            raise invalid_parameter("param message must have text or an attachment")
        if len(text) > DM_TEXT_LIMITS[target.kind]:
            raise too_long("message[text]", DM_TEXT_LIMITS[target.kind])
        conversation = self.store.conversation(target, person)
        messaging_type, tag = params.get("messaging_type", "RESPONSE"), params.get("tag")
        if comment is None:
            self._check_window(target, conversation.last_inbound, messaging_type, tag)
        sent = Message(
            self.store.new_mid(target.kind),
            conversation.id,
            target.id,
            person.id,
            text,
            now(),
            from_business=True,
            attachments=[attachment] if attachment else [],
        )
        self.store.add_message(conversation, sent)
        details = {
            "id": sent.id,
            "recipient_id": person.id,
            "text": text,
            "messaging_type": messaging_type,
            "tag": tag,
            "attachments": [{"type": a.type, "url": a.url} for a in sent.attachments],
        }
        if comment is not None:
            comment.private_reply_id = sent.id
            self._record(target, "private_reply", comment_id=comment.id, **details)
        else:
            self._record(target, "dm", **details)
        self.receipts.after_dm(target, person, sent)
        return {"recipient_id": person.id, "message_id": sent.id}

    def _recipient(self, candidates: list[Account], recipient: dict) -> tuple[Account, Person]:
        for candidate in candidates:
            person = self.store.known_person(candidate.id, str(recipient.get("id")))
            if person is not None:
                return candidate, person
        raise GraphError(400, 100, "(#100) No matching user found", subcode=2018001)

    def _private_reply_target(self, candidates: list[Account], comment_id: str) -> tuple[Account, Comment]:
        comment = self.store.comments.get(comment_id)
        target = next((c for c in candidates if comment is not None and comment.account_id == c.id), None)
        if comment is None or target is None or comment.removed or comment.from_business:
            raise invalid_parameter(f"Invalid comment_id {comment_id}")
        if comment.private_reply_id is not None:
            raise GraphError(400, 10, "(#10) This comment has already been replied to privately.", subcode=1893034)
        if now() - comment.created > HUMAN_AGENT_WINDOW:
            raise GraphError(
                400,
                10,
                "(#10) This message is sent outside of allowed window. A private reply must be "
                "sent within 7 days of the comment.",
                subcode=WINDOW_SUBCODES[target.kind],
            )
        return target, comment

    def _check_window(self, account: Account, last_inbound: float | None, messaging_type: str, tag: str | None):
        age = now() - last_inbound if last_inbound is not None else None
        subcode = WINDOW_SUBCODES[account.kind]
        if messaging_type in ("RESPONSE", "UPDATE"):
            if age is not None and age <= STANDARD_WINDOW:
                return
            raise GraphError(
                400,
                10,
                "(#10) This message is sent outside of allowed window. Learn more about the new "
                "policy here: https://developers.facebook.com/docs/messenger-platform/policy-overview",
                subcode=subcode,
            )
        if messaging_type != "MESSAGE_TAG":
            raise invalid_parameter("param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
        if tag != "HUMAN_AGENT":
            raise invalid_parameter("param tag must be HUMAN_AGENT (the only tag this emulator knows)")
        if not account.human_agent:
            raise permission("The Human Agent tag needs the human_agent permission (pages_messaging with Human Agent).")
        if age is None or age > HUMAN_AGENT_WINDOW:
            raise GraphError(
                400,
                10,
                "(#10) This message is sent outside of allowed window. The HUMAN_AGENT tag "
                "allows replies within 7 days of the person's last message.",
                subcode=subcode,
            )

    def _attachment(self, request: Request, account: Account, message: dict) -> Attachment | None:
        attachment = message.get("attachment")
        upload = request.files.get("filedata")
        if attachment is None:
            return None
        if not isinstance(attachment, dict) or attachment.get("type") not in ("image", "video", "audio", "file"):
            raise invalid_parameter("param message[attachment][type] must be one of {image, video, audio, file}")
        payload = attachment.get("payload") or {}
        if upload is not None:
            filename, content_type, data = upload
            file = self.store.add_file(account.id, data, content_type or "application/octet-stream", filename)
            return Attachment(attachment["type"], self.people.file_url(file.id, filename), file)
        if payload.get("attachment_id"):
            file = self.store.files.get(str(payload["attachment_id"]))
            if file is None:
                raise invalid_parameter("Invalid attachment_id")
            return Attachment(attachment["type"], self.people.file_url(file.id, file.filename), file)
        if not payload.get("url"):
            raise invalid_parameter("param message[attachment][payload] needs a url, an attachment_id or filedata")
        return Attachment(attachment["type"], payload["url"])

    # -- comment replies ----------------------------------------------------------------------

    def comment_reply(self, request: Request, parent, kind: str) -> dict:
        """``POST /{comment-id}/comments`` (Facebook), ``/{comment-id}/replies`` (Instagram), and a Page's comment
        on its own post (``POST /{post-id}/comments``). Pushes the change, as Meta does for the business's own."""
        account = self.store.accounts[parent.account_id]
        text = request.params.get("message") or ""
        if not text:
            raise invalid_parameter("param message must be non-empty.")
        if len(text) > COMMENT_TEXT_LIMITS[account.kind]:
            raise too_long("message", COMMENT_TEXT_LIMITS[account.kind])
        if kind == "comment":
            post = self.store.posts[parent.post_id]
            top = self.store.comments[parent.parent_id] if parent.parent_id else parent
        else:
            post, top = parent, None
        created = now()
        reply = self.people._new_comment(account, post, account.id, text, created, top, from_business=True)
        if account.kind == "page":
            body = payloads.feed_comment(account, reply, account, "add", created)
        else:
            body = payloads.instagram_comment(account, reply, account)
        self.people.pusher.publish(account.id, body)
        self._record(account, "comment_reply", id=reply.id, parent_id=parent.id, post_id=post.id, text=text)
        return {"id": reply.id}

    # -- WhatsApp -------------------------------------------------------------------------------

    def whatsapp(self, request: Request, account: Account) -> dict:
        """``POST /{phone-number-id}/messages``."""
        params = request.params
        if params.get("messaging_product") != "whatsapp":
            raise invalid_parameter("The parameter messaging_product is required.")
        if params.get("status") == "read":  # the business marks an inbound message read
            if params.get("message_id") not in self.store.whatsapp_messages:
                raise invalid_parameter("Invalid parameter message_id")
            return {"success": True}
        to = str(params.get("to") or "").replace("+", "").replace(" ", "").replace("-", "")
        if not to:
            raise invalid_parameter("The parameter to is required.")
        type_ = params.get("type", "text")
        content = _json_param(params, type_)
        if not isinstance(content, dict):
            raise invalid_parameter(f"The parameter {type_} is required.")
        person = self.store.known_person(account.id, to)
        if type_ == "template":
            template_text = self._template(account, content)
            person = person or self.store.person(account, to, None, None)
        else:
            last = self.store.whatsapp_inbound.get((account.id, to))
            if person is None or last is None or now() - last > STANDARD_WINDOW:
                title, details = WHATSAPP_FAILURES[131047]
                raise whatsapp_error(131047, title, details)
            template_text = None
            self._check_whatsapp_content(account, type_, content)
        context = _json_param(params, "context")
        context_id = context.get("message_id") if isinstance(context, dict) else None
        wamid = self.store.new_wamid()
        self.store.whatsapp_messages[wamid] = WhatsAppMessage(
            wamid, account.id, person.id, False, type_, content, now(), context_id
        )
        self._record(
            account,
            "whatsapp",
            id=wamid,
            to=person.id,
            type=type_,
            content=content,
            context_id=context_id,
            text=template_text if template_text is not None else content.get("body") or content.get("caption"),
        )
        callback_data = params.get("biz_opaque_callback_data")
        self.receipts.after_whatsapp(account, person, wamid, callback_data if isinstance(callback_data, str) else None)
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": params["to"], "wa_id": person.id}],
            "messages": [{"id": wamid}],
        }

    def _check_whatsapp_content(self, account: Account, type_: str, content: dict) -> None:
        if type_ == "text":
            body = content.get("body")
            if not isinstance(body, str) or not body:
                raise invalid_parameter("The parameter text['body'] is required.")
            if len(body) > WHATSAPP_TEXT_LIMIT:
                raise invalid_parameter(f"Param text['body'] must be at most {WHATSAPP_TEXT_LIMIT} characters long.")
        elif type_ in ("image", "video", "audio", "document", "sticker"):
            if content.get("id"):
                file = self.store.files.get(str(content["id"]))
                if file is None or file.account_id != account.id:
                    raise invalid_parameter(f"Invalid parameter {type_}['id']", subcode=2494010)
            elif not content.get("link"):
                raise invalid_parameter(f"The parameter {type_}['id'] or {type_}['link'] is required.")
        elif type_ == "reaction":
            if content.get("message_id") not in self.store.whatsapp_messages:
                raise invalid_parameter("Invalid parameter reaction['message_id']")
        else:
            raise invalid_parameter(f"Unsupported message type {type_}")

    def _template(self, account: Account, content: dict) -> str:
        language = content.get("language") or {}
        code = language.get("code") if isinstance(language, dict) else language
        template = next(
            (
                t
                for t in self.store.templates
                if t.waba_id == account.waba_id
                and t.name == content.get("name")
                and t.language == code
                and t.status == "APPROVED"
            ),
            None,
        )
        if template is None:
            raise whatsapp_error(
                132001,
                "Template name does not exist in the translation",
                f"template name ({content.get('name')}) does not exist in {code}",
            )
        values = []
        for component in content.get("components") or []:
            if isinstance(component, dict) and str(component.get("type", "")).lower() == "body":
                values += [str(p.get("text", "")) for p in component.get("parameters") or [] if isinstance(p, dict)]
        if len(values) != template.parameter_count:
            raise whatsapp_error(
                132000,
                "Number of parameters does not match the expected number of params",
                f"body: number of localizable_params ({len(values)}) does not match the expected "
                f"number of params ({template.parameter_count})",
            )
        text = template.body
        for number, value in enumerate(values, start=1):
            text = text.replace(f"{{{{{number}}}}}", value)
        return text

    def upload_media(self, request: Request, account: Account) -> dict:
        """``POST /{phone-number-id}/media`` (multipart: ``file``, ``type``, ``messaging_product``)."""
        if request.params.get("messaging_product") != "whatsapp":
            raise invalid_parameter("The parameter messaging_product is required.")
        upload = request.files.get("file")
        if upload is None:
            raise invalid_parameter("The parameter file is required.")
        filename, content_type, data = upload
        mime = request.params.get("type") or content_type or "application/octet-stream"
        family = mime.split("/", 1)[0]
        limit = WHATSAPP_UPLOAD_LIMITS.get("sticker" if mime == "image/webp" else family, WHATSAPP_DOCUMENT_LIMIT)
        if len(data) > limit:
            raise whatsapp_error(131053, "Media upload error", f"File is too big: {len(data)} bytes, at most {limit}.")
        file = self.store.add_file(account.id, data, mime, filename)
        return {"id": file.id}
