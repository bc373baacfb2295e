"""An in-memory adapter, like Django's locmem mail backend: for tests of the pipeline itself.

``inbox[name]`` holds envelopes the next poll returns (an exception in it is
raised when the poll reaches it, after the pages before it); ``outbox``
records every reply sent, and every file sent with one (``sent_keys`` maps each
reply's delivery key to the id it got); ``failures`` queues exceptions that the next ``send`` calls raise,
``file_failures`` those of the next ``send_attachment`` or ``fetch_attachment``
calls. ``files`` maps an inbound attachment's ``ref`` to its bytes.

``applied_failures`` queues exceptions that the next ``send`` calls raise
*after* recording the reply (a post the platform applied but never confirmed).
Like most platforms, locmem cannot say whether a reply arrived, unless its
config sets ``finds_sent``: then ``find_sent`` looks its key up.

Its config can also give it a platform's reply rules, for tests of the composer: ``window_hours`` (a
customer-service window, as Meta's 24 hours: the reply is allowed until the person's last message plus
that many hours, with ``ReplyMode.expires_at``) and ``templates`` (approved templates, as WhatsApp's:
``[{"name", "language", "body"}]``, each an extra mode ``template:{name}:{language}``, always allowed).
A reply sent in a mode other than the default records it in its outbox entry (``"mode"``). With a
``verify_token`` secret, it answers a webhook verification GET as Meta's platforms expect it
(``hub.mode=subscribe``, ``hub.verify_token``, echoing ``hub.challenge``).
"""

import hashlib
import hmac
import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from .base import (
    AttachmentLimits,
    Capability,
    ChannelAdapter,
    Envelope,
    EnvelopeKind,
    InvalidWebhook,
    PermanentError,
    PollPage,
    ReplyMode,
    Sender,
    Sent,
    WebhookResult,
)

inbox: dict[str, list[Envelope | Exception]] = {}
outbox: list[dict] = []
failures: list[Exception] = []
applied_failures: list[Exception] = []
sent_keys: dict[str, str] = {}
files: dict[str, bytes] = {}
file_failures: list[Exception] = []

REPLY_FILES = AttachmentLimits(max_files=3, max_bytes=1024 * 1024)


def reset():
    inbox.clear()
    outbox.clear()
    failures.clear()
    applied_failures.clear()
    sent_keys.clear()
    files.clear()
    file_failures.clear()


class LocmemAdapter(ChannelAdapter):
    """Config: ``inbox`` (the inbox name), ``page_size``, ``finds_sent`` (default false), ``window_hours`` and
    ``templates`` (reply rules, see above). Secrets: ``webhook_secret`` (HMAC-SHA256 hex), ``verify_token``."""

    kind = "locmem"
    capabilities = frozenset({Capability.POLL, Capability.WEBHOOK, Capability.REPLY})
    secret_fields = ("webhook_secret", "verify_token")
    max_reply_length = 1000

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.finds_sent = bool(self.config.get("finds_sent", False))

    def check_credentials(self):
        return {"checked": True}

    def poll(self, cursor):
        position = cursor.get("position", 0)
        items = inbox.get(self.config["inbox"], [])
        size = self.config.get("page_size", 100)
        while position < len(items):
            if isinstance(items[position], Exception):
                raise items[position]
            page = list(itertools.takewhile(lambda item: isinstance(item, Envelope), items[position : position + size]))
            position += len(page)
            yield PollPage(envelopes=page, cursor={"position": position})

    def handle_webhook(self, *, headers, body):
        expected = hmac.new(self.secrets.get("webhook_secret", "").encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("X-Signature", "")):
            raise InvalidWebhook("Invalid signature.", status=401)
        try:
            item = json.loads(body)
            envelope = Envelope(
                external_id=item["id"],
                kind=EnvelopeKind.MESSAGE,
                thread_key=item.get("thread", item["id"]),
                sent_at=datetime.fromisoformat(item["at"]),
                sender=Sender(namespace="locmem", external_id=item["from"]),
                text=item["text"],
                starts_thread="thread" not in item,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidWebhook(f"Malformed body: {exc}", status=400) from None
        return WebhookResult(envelopes=[envelope])

    def verify_subscription(self, params):
        token = self.secrets.get("verify_token")
        if not token:
            return super().verify_subscription(params)
        given = str(params.get("hub.verify_token", ""))
        if params.get("hub.mode") != "subscribe" or not hmac.compare_digest(given.encode(), token.encode()):
            raise InvalidWebhook("Wrong verify token.", status=403)
        return WebhookResult(body=str(params.get("hub.challenge", "")))

    def reply_modes(self, target):
        reply = ReplyMode(key="", label="Reply", max_length=self.max_reply_length, attachments=REPLY_FILES)
        hours = self.config.get("window_hours")
        if hours is not None:
            reply = self._within_window(reply, target, timedelta(hours=hours))
        templates = [
            ReplyMode(
                key=f"template:{t['name']}:{t['language']}",
                label=f'Template "{t["name"]}" ({t["language"]})',
                max_length=self.max_reply_length,
                template_body=t["body"],
            )
            for t in self.config.get("templates", ())
        ]
        return [reply, *templates]

    def _within_window(self, mode, target, window):
        """``mode`` allowed until ``window`` after the person last wrote, else refused with when it closed."""
        if target.last_inbound_at is None:
            return replace(mode, allowed=False, reason="Nobody has written in this conversation yet.")
        closes = target.last_inbound_at + window
        if datetime.now(UTC) < closes:
            return replace(mode, expires_at=closes)
        hours = window.total_seconds() / 3600
        return replace(
            mode,
            allowed=False,
            reason=f"the {hours:g}-hour reply window closed at {closes:%Y-%m-%d %H:%M} UTC; "
            + ("send a template instead." if self.config.get("templates") else "wait until the person writes again."),
        )

    def send(self, *, target, text, key):
        if failures:
            raise failures.pop(0)
        # The default mode is left out, so the entries of channels without modes stay {"thread_key", "text"}.
        outbox.append({"thread_key": target.thread_key, "text": text, **({"mode": target.mode} if target.mode else {})})
        sent_keys[key] = f"{target.thread_key}:out{len(outbox)}"
        if applied_failures:
            raise applied_failures.pop(0)
        return Sent(external_id=sent_keys[key])

    def find_sent(self, *, target, text, key, since):
        if not self.finds_sent:
            return super().find_sent(target=target, text=text, key=key, since=since)
        return Sent(external_id=sent_keys[key]) if key in sent_keys else None

    def send_attachment(self, *, target, file):
        if file_failures:
            raise file_failures.pop(0)
        outbox.append({"thread_key": target.thread_key, "file": file.name, "data": file.data})
        return f"file{len(outbox)}"

    def fetch_attachment(self, ref):
        if file_failures:
            raise file_failures.pop(0)
        if ref not in files:
            raise PermanentError(f"No file {ref!r}.")
        data = files[ref]
        for start in range(0, len(data), 4096):
            yield data[start : start + 4096]
