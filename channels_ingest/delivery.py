"""Delivering replies: sent, retried with backoff (honouring Retry-After), or visibly failed.

Every change of a reply's delivery status happens in this module. A reply is stored ``queued`` by the domain
(``tickets.replies``); from there:

- queued → sending: a worker claims it (``deliver_message``), so a duplicate task does nothing;
- sending → sent, when the platform took the text and every file;
- sending → queued, after a transient error, with the next attempt scheduled (backoff, Retry-After);
- sending → failed, after a permanent error or the last attempt, with the platform's words;
- sending → failed, when the worker died mid-send (``fail_stalled_sends``): it may or may not have arrived;
- failed → queued, when an agent presses Retry (``retry_delivery``);
- queued → queued, re-queued by the sweep when its task was lost (``redeliver_overdue``).

A reply's text goes first, then each of its files. Each step is recorded as soon as the platform took it
(the message's ``external_id``, each attachment's ``delivered_at``), so a retry sends only what is missing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from channel_adapters.base import AdapterError, CredentialsError, OutboundFile, PermanentError, TransientError
from tickets.marks import next_mark
from tickets.models import Attachment, Message
from tickets.replies import attach_thread, reply_target

from .backoff import retry_delay
from .queueing import TaskName, enqueue_each, enqueue_on_commit
from .usage import record_usage

logger = logging.getLogger(__name__)

#: A reply still ``sending`` this long after its attempt started lost its worker.
STALE_SENDING = timedelta(minutes=5)
#: A queued reply whose scheduled attempt is this overdue lost its task (e.g. the broker restarted).
LOST_RETRY = timedelta(minutes=2)
STALLED_SEND_ERROR = (
    "The worker sending this reply stopped mid-send; it may or may not have arrived. "
    "Check the conversation before retrying."
)


@dataclass
class DeliveryOutcome:
    status: str
    retry_in: float | None = None


def deliver_message(message_id: int) -> DeliveryOutcome:
    """Send one queued reply. Does nothing unless the message is queued (so redelivery is harmless)."""
    now = timezone.now()
    claimed = Message.objects.filter(pk=message_id, delivery_status=Message.DeliveryStatus.QUEUED).update(
        delivery_status=Message.DeliveryStatus.SENDING,
        delivery_attempts=F("delivery_attempts") + 1,
        delivery_started_at=now,
    )
    if not claimed:
        return DeliveryOutcome(status="noop")
    message = Message.objects.select_related("thread__channel").get(pk=message_id)
    channel = message.thread.channel
    adapter = channel.adapter()
    target = reply_target(message.thread, mode=message.reply_mode)
    try:
        if not message.external_id:  # a retry whose text already went out sends only the files left
            _send_text(adapter, target, message, channel)
        _send_files(adapter, target, message)
    except TransientError as exc:
        return _retry_or_fail(message, exc)
    except AdapterError as exc:
        if isinstance(exc, CredentialsError):
            channel.record_credentials_rejected(str(exc))
        return _mark_failed(message, _partly_sent(message, str(exc)))
    finally:
        record_usage(channel, adapter.usage)
    Message.objects.filter(pk=message_id).update(
        delivery_status=Message.DeliveryStatus.SENT,
        delivery_error="",
        delivered_at=timezone.now(),
        delivery_next_attempt_at=None,
    )
    return DeliveryOutcome(status="sent")


def _send_text(adapter, target, message, channel):
    sent = adapter.send(target=target, text=message.body)
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(external_id=sent.external_id)
        if sent.thread_key:
            attach_thread(ticket=message.ticket, channel=channel, key=sent.thread_key)
    message.external_id = sent.external_id


def _send_files(adapter, target, message):
    for attachment in message.attachments.filter(delivered_at=None).order_by("id"):
        try:
            with attachment.file.open("rb") as stored:
                data = stored.read()
        except (OSError, ValueError) as exc:  # ValueError: no file recorded
            raise PermanentError(f"{attachment.name} is missing from storage ({exc}).") from None
        try:
            file_id = adapter.send_attachment(
                target=target, file=OutboundFile(name=attachment.name, content_type=attachment.content_type, data=data)
            )
        except AdapterError as exc:
            raise type(exc)(f"{attachment.name}: {exc}", **_retry_after(exc)) from None
        Attachment.objects.filter(pk=attachment.pk).update(external_id=file_id, delivered_at=timezone.now())


def _retry_after(exc):
    return {"retry_after": exc.retry_after} if isinstance(exc, TransientError) else {}


def _partly_sent(message, error):
    return f"The text was sent, but not every file: {error}" if message.external_id else error


def _retry_or_fail(message, exc):
    if message.delivery_attempts >= settings.DELIVERY_MAX_ATTEMPTS:
        return _mark_failed(
            message, _partly_sent(message, f"{exc} (gave up after {message.delivery_attempts} attempts)")
        )
    delay = retry_delay(message.delivery_attempts, exc)
    Message.objects.filter(pk=message.pk).update(
        delivery_status=Message.DeliveryStatus.QUEUED,
        delivery_error=f"Attempt {message.delivery_attempts} failed: {exc}; retrying in {delay:.0f}s",
        delivery_next_attempt_at=timezone.now() + timedelta(seconds=delay),
    )
    return DeliveryOutcome(status="retry", retry_in=delay)


def _mark_failed(message, error):
    logger.error("message %s: delivery failed: %s", message.pk, error)
    Message.objects.filter(pk=message.pk).update(
        delivery_status=Message.DeliveryStatus.FAILED, delivery_error=error[:2000], delivery_next_attempt_at=None
    )
    return DeliveryOutcome(status="failed")


def retry_delivery(message: Message) -> bool:
    """Queue a failed reply again (the agent's Retry). Returns False if it was not failed."""
    with transaction.atomic():
        requeued = Message.objects.filter(pk=message.pk, delivery_status=Message.DeliveryStatus.FAILED).update(
            delivery_status=Message.DeliveryStatus.QUEUED,
            delivery_attempts=0,
            delivery_next_attempt_at=timezone.now(),
            # A failed badge no longer polls: other open pages learn of the Retry from their live poll.
            changed_mark=next_mark(),
        )
        if requeued:
            enqueue_on_commit(TaskName.DELIVER, message.pk)
    return bool(requeued)


def redeliver_overdue(now: datetime) -> int:
    """Queue again the replies whose scheduled attempt is long overdue: their task was lost. Returns how many."""
    lost = Message.objects.filter(
        delivery_status=Message.DeliveryStatus.QUEUED, delivery_next_attempt_at__lt=now - LOST_RETRY
    ).values_list("pk", flat=True)
    return enqueue_each(TaskName.DELIVER, lost)


def fail_stalled_sends(now: datetime) -> int:
    """Fail the replies whose worker died mid-send. Never resent blindly: a platform without an idempotency
    key (Slack's ``chat.postMessage``) could post them twice. Returns how many."""
    return Message.objects.filter(
        delivery_status=Message.DeliveryStatus.SENDING, delivery_started_at__lt=now - STALE_SENDING
    ).update(delivery_status=Message.DeliveryStatus.FAILED, delivery_error=STALLED_SEND_ERROR)
