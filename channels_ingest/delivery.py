"""Delivering replies: sent, retried with backoff (honouring Retry-After), or visibly failed.

Every change of a reply's delivery status happens in this module. A reply is stored ``queued`` by the domain
(``tickets.replies``); from there:

- queued → sending: a worker claims it (``deliver_message``), so a duplicate task does nothing;
- sending → sent, when the platform took the text and every file;
- sending → queued, after a transient error, with the next attempt scheduled (backoff, Retry-After);
- sending → failed, after a permanent error or the last attempt, with the platform's words;
- sending → queued or failed, when the worker died mid-send (its heartbeat lapsed: ``recover_stalled_sends``):
  it may or may not have arrived, so it is re-queued to be checked where the channel can look, and failed
  visibly elsewhere;
- failed → queued, when an agent presses Retry (``retry_delivery``);
- queued → queued, re-queued by the sweep when its task was lost (``redeliver_overdue``).

A reply's text goes first, then each of its files. Each step is recorded as soon as the platform took it
(the message's ``external_id``, each attachment's ``delivered_at``), so a retry sends only what is missing.

An attempt holds the reply by its claim (``delivery_started_at``) and keeps it by a heartbeat
(``delivery_heartbeat_at``, renewed every SEND_HEARTBEAT, also while it waits on the platform). The sweep takes
back a send whose heartbeat lapsed and clears the heartbeat; from then on the attempt's claim is gone: it
posts nothing more (it checks its claim right before each platform write) and writes no outcome, and a newer
attempt owns the reply. Only what the platform already took is still recorded (a post, where the reply has
none; a file), so that the newer attempt does not send it again.

Exactly once, out: every attempt passes the same key (``Message.delivery_key``). When an attempt's outcome is unknown
(``OutcomeUnknown``: no answer after the request went out, or a worker that died mid-send), the reply keeps
``delivery_unconfirmed_since``, and the next attempt (automatic, or the agent's Retry) first asks the adapter
whether the text already arrived (``find_sent``) and records it instead of posting it again. A channel that
cannot look fails such a reply visibly instead, so an agent decides, unless its delivery report, carrying the
key, confirms it first (``reports_carry_key``: ``tickets.delivery_reports``); see docs/delivery.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from channel_adapters.base import (
    AdapterError,
    CredentialsError,
    OutboundFile,
    OutcomeUnknown,
    PermanentError,
    TransientError,
)
from tickets.marks import next_mark
from tickets.models import Attachment, Message
from tickets.replies import attach_thread, remember_on_answered, reply_target

from .backoff import retry_delay
from .heartbeat import Heartbeat
from .models import Channel
from .queueing import TaskName, enqueue_each, enqueue_on_commit
from .usage import record_usage

logger = logging.getLogger(__name__)

#: The worker holding a reply ``sending`` renews its heartbeat this often, also while it waits on the platform.
SEND_HEARTBEAT = timedelta(seconds=5)
#: A send whose heartbeat is this old lost its worker: the sweep takes it back. With the sweep's 5 s, a dead
#: worker's reply is taken back within 30 s. Longer than a platform call (the clients' 15 s timeout): an attempt
#: renews its claim right before it posts, so by the time the sweep could take the reply back, that post has
#: landed (for the next attempt's check to find) or been given up, even if no renewal got through meanwhile.
SEND_LEASE = timedelta(seconds=25)
#: A heartbeat stops after this long: a send stuck on the platform that long is taken back.
SEND_HEARTBEAT_LIMIT = timedelta(minutes=15)
#: A reply ``sending`` without a heartbeat (claimed by a version without one) is taken back this long after its
#: attempt started.
STALE_SENDING = timedelta(minutes=5)
#: A queued reply whose scheduled attempt is this overdue lost its task (e.g. the broker restarted).
LOST_RETRY = timedelta(minutes=2)
STALLED_SEND_ERROR = (
    "The worker sending this reply stopped mid-send; it may or may not have arrived. "
    "Check the conversation before retrying."
)
STALLED_SEND_CHECK = (
    "The worker sending this reply stopped mid-send; checking whether it arrived before sending it again."
)
UNCONFIRMED_ERROR = (
    "{error}. The platform did not confirm this reply; it may or may not have arrived. "
    "Check the conversation before retrying."
)
UNCONFIRMED_AWAITING_REPORT = (
    "{error}. The platform did not confirm this reply; it may or may not have arrived. Its delivery report "
    "usually follows within a minute and marks it here as delivered; retry only if none comes."
)
UNCONFIRMED_CHECKED_ON_RETRY = (
    "{error}. The platform did not confirm this reply; it may have arrived. Retry looks for it before sending it again."
)


@dataclass
class DeliveryOutcome:
    status: str
    retry_in: float | None = None


#: The attempt's claim was taken back by the sweep (its heartbeat lapsed): a newer attempt owns the reply.
TAKEN_BACK = DeliveryOutcome(status="taken back")


class ClaimLost(Exception):
    """The sweep took the reply back from this attempt: it must not post anything more."""


def deliver_message(message_id: int) -> DeliveryOutcome:
    """Send one queued reply. Does nothing unless the message is queued (so redelivery is harmless)."""
    now = timezone.now()
    claimed = Message.objects.filter(pk=message_id, delivery_status=Message.DeliveryStatus.QUEUED).update(
        delivery_status=Message.DeliveryStatus.SENDING,
        delivery_attempts=F("delivery_attempts") + 1,
        delivery_started_at=now,
        delivery_heartbeat_at=now,
    )
    if not claimed:
        return DeliveryOutcome(status="noop")
    message = Message.objects.select_related("thread__channel", "author_user").get(pk=message_id)
    channel = message.thread.channel
    adapter = channel.adapter()
    subject = message.meta.get("subject", "") if isinstance(message.meta, dict) else ""
    target = reply_target(message.thread, mode=message.reply_mode, writer=message.author_user, subject=subject)
    heartbeat = Heartbeat(
        f"the send of message {message_id}",
        lambda: _renew_claim(message),
        every=SEND_HEARTBEAT,
        limit=SEND_HEARTBEAT_LIMIT,
    )
    heartbeat.start()
    try:
        if not message.external_id:  # a retry whose text already went out sends only the files left
            _send_text(adapter, target, message, channel)
        _send_files(adapter, target, message)
    except ClaimLost:
        logger.warning("message %s: taken back by the sweep mid-send; a newer attempt sends the rest", message_id)
        return TAKEN_BACK
    except OutcomeUnknown as exc:
        return _unconfirmed(adapter, message, exc, started=now)
    except TransientError as exc:
        return _retry_or_fail(message, exc)
    except AdapterError as exc:
        if isinstance(exc, CredentialsError):
            channel.record_credentials_rejected(str(exc))
        return _mark_failed(message, _partly_sent(message, str(exc)))
    finally:
        heartbeat.stop()
        record_usage(channel, adapter.usage)
    done = {"delivered_at": timezone.now(), "delivery_next_attempt_at": None, "delivery_unconfirmed_since": None}
    claim = _claim(message)
    sent = claim.filter(delivery_status=Message.DeliveryStatus.SENDING).update(
        delivery_status=Message.DeliveryStatus.SENT, delivery_error="", **done
    )
    # Not sending any more: the platform reported on the text while its files went out (its report stands),
    # or the sweep took the reply back (its next attempt finds everything recorded and marks it sent).
    if not sent and not claim.update(**done):
        return TAKEN_BACK
    return DeliveryOutcome(status="sent")


def _claim(message):
    """The reply, while this attempt still holds it: no newer attempt claimed it (``delivery_started_at`` is
    this attempt's) and the sweep has not taken it back (which clears the heartbeat). Every outcome an attempt
    writes goes through it, so a late one never overwrites a newer attempt's."""
    return Message.objects.filter(
        pk=message.pk, delivery_started_at=message.delivery_started_at, delivery_heartbeat_at__isnull=False
    )


def _renew_claim(message) -> bool:
    return bool(_claim(message).update(delivery_heartbeat_at=timezone.now()))


def _keep_claim(message):
    """Before each platform write: a reply the sweep took back is the newer attempt's to send (it checks first
    what arrived). Renewing here also gives the write a full SEND_LEASE before the sweep could take it back."""
    if not _renew_claim(message):
        raise ClaimLost(message.pk)


def _send_text(adapter, target, message, channel):
    sent = _already_sent(adapter, target, message)
    if sent is None:
        # One post carries the text and every file (an email), or the text alone.
        files = {"files": _stored_files(message)} if adapter.files_with_text else {}
        _keep_claim(message)
        sent = adapter.send(target=target, text=message.body, key=message.delivery_key, **files)
    with transaction.atomic():
        # Recorded even if the sweep took the reply back meanwhile: the post is on the platform, and the newer
        # attempt (or the agent's Retry) then skips the text. A newer attempt that recorded a post already (it
        # found this one, or, past the lease, made its own) keeps it.
        Message.objects.filter(pk=message.pk, external_id="").update(external_id=sent.external_id)
        if adapter.files_with_text:
            message.attachments.filter(delivered_at=None).update(
                external_id=sent.external_id, delivered_at=timezone.now()
            )
        if sent.thread_key:
            attach_thread(ticket=message.ticket, channel=channel, key=sent.thread_key)
        if sent.answered_meta and target.reply_to:
            remember_on_answered(message.thread, target.reply_to, sent.answered_meta)
    message.external_id = sent.external_id


def _already_sent(adapter, target, message):
    """After an unknown outcome, the post the platform already has for this reply, if the adapter can look."""
    since = message.delivery_unconfirmed_since
    if since is None or not adapter.finds_sent:
        return None
    try:
        sent = adapter.find_sent(target=target, text=message.body, key=message.delivery_key, since=since)
    except PermanentError as exc:  # e.g. no right to read the conversation: the agent decides, warned
        _claim(message).update(delivery_unconfirmed_since=None)
        raise PermanentError(UNCONFIRMED_ERROR.format(error=f"Could not check whether it arrived: {exc}")) from None
    if sent is None:
        return None
    if Message.objects.filter(thread=message.thread_id, external_id=sent.external_id).exclude(pk=message.pk).exists():
        return None  # another reply's post (the same words): this one did not arrive
    logger.info("message %s: the platform already has it (%s); not sent again", message.pk, sent.external_id)
    return sent


def _unconfirmed(adapter, message, exc, *, started):
    """No answer after the request went out. The text may have arrived: remember since when, and retry (the next
    attempt looks first), or, where the channel cannot look, fail visibly so that an agent checks."""
    if message.external_id:  # a file's upload: retried, at least once (docs/delivery.md)
        return _retry_or_fail(message, exc)
    _claim(message).filter(delivery_unconfirmed_since=None).update(delivery_unconfirmed_since=started)
    error = str(exc).rstrip(".")
    if not adapter.finds_sent:
        warning = UNCONFIRMED_AWAITING_REPORT if adapter.reports_carry_key else UNCONFIRMED_ERROR
        return _mark_failed(message, warning.format(error=error))
    if message.delivery_attempts >= settings.DELIVERY_MAX_ATTEMPTS:
        error = f"{error} (gave up after {message.delivery_attempts} attempts)"
        return _mark_failed(message, UNCONFIRMED_CHECKED_ON_RETRY.format(error=error))
    return _retry_or_fail(message, exc)


def _outbound_file(attachment) -> OutboundFile:
    try:
        with attachment.file.open("rb") as stored:
            data = stored.read()
    except (OSError, ValueError) as exc:  # ValueError: no file recorded
        raise PermanentError(f"{attachment.name} is missing from storage ({exc}).") from None
    return OutboundFile(name=attachment.name, content_type=attachment.content_type, data=data)


def _stored_files(message) -> tuple[OutboundFile, ...]:
    return tuple(_outbound_file(attachment) for attachment in message.attachments.order_by("id"))


def _send_files(adapter, target, message):
    for attachment in message.attachments.filter(delivered_at=None).order_by("id"):
        file = _outbound_file(attachment)
        _keep_claim(message)
        try:
            file_id = adapter.send_attachment(target=target, file=file)
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
    if not _claim(message).update(
        delivery_status=Message.DeliveryStatus.QUEUED,
        delivery_error=f"Attempt {message.delivery_attempts} failed: {exc}; retrying in {delay:.0f}s",
        delivery_next_attempt_at=timezone.now() + timedelta(seconds=delay),
    ):
        return TAKEN_BACK
    return DeliveryOutcome(status="retry", retry_in=delay)


def _mark_failed(message, error):
    if not _claim(message).update(
        delivery_status=Message.DeliveryStatus.FAILED, delivery_error=error[:2000], delivery_next_attempt_at=None
    ):
        return TAKEN_BACK
    logger.error("message %s: delivery failed: %s", message.pk, error)
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
    """Queue again the replies whose scheduled attempt is long overdue: their task was lost. Returns how many.

    Each is due again from now, so a reply waiting for a busy worker is queued once, not on every pass."""
    overdue = Message.objects.filter(
        delivery_status=Message.DeliveryStatus.QUEUED, delivery_next_attempt_at__lt=now - LOST_RETRY
    )
    lost = list(overdue.values_list("pk", flat=True))
    Message.objects.filter(pk__in=lost, delivery_status=Message.DeliveryStatus.QUEUED).update(
        delivery_next_attempt_at=now
    )
    return enqueue_each(TaskName.DELIVER, lost)


def recover_stalled_sends(now: datetime) -> int:
    """Replies whose worker died mid-send (its heartbeat lapsed) may or may not have arrived. Never resent
    blindly: where the channel can look (``finds_sent``) they are queued again and the next attempt checks first;
    elsewhere they are failed with a warning, and an agent's Retry resends them. Returns how many.

    The heartbeat is cleared with it, which ends the old attempt's claim: if its worker was alive after all (its
    renewals held up for SEND_LEASE), it posts nothing more and its outcome is not written over the newer one's."""
    lapsed = Q(delivery_heartbeat_at__lt=now - SEND_LEASE) | Q(
        delivery_heartbeat_at__isnull=True, delivery_started_at__lt=now - STALE_SENDING
    )
    stalled = Message.objects.filter(lapsed, delivery_status=Message.DeliveryStatus.SENDING).values_list(
        "pk", "delivery_started_at", "thread__channel_id"
    )
    looks = {}
    requeued, failed = [], 0
    for message_id, started_at, channel_id in stalled:
        if channel_id not in looks:
            looks[channel_id] = _finds_sent(channel_id)
        # Compared and set in one statement: a heartbeat renewed since the read above keeps its send.
        still_stalled = Message.objects.filter(
            lapsed, pk=message_id, delivery_status=Message.DeliveryStatus.SENDING, delivery_started_at=started_at
        )
        unconfirmed = Coalesce(F("delivery_unconfirmed_since"), F("delivery_started_at"))
        if looks[channel_id]:
            if still_stalled.update(
                delivery_status=Message.DeliveryStatus.QUEUED,
                delivery_error=STALLED_SEND_CHECK,
                delivery_next_attempt_at=now,
                delivery_unconfirmed_since=unconfirmed,
                delivery_heartbeat_at=None,
            ):
                requeued.append(message_id)
        else:
            failed += still_stalled.update(
                delivery_status=Message.DeliveryStatus.FAILED,
                delivery_error=STALLED_SEND_ERROR,
                delivery_unconfirmed_since=unconfirmed,
                delivery_heartbeat_at=None,
            )
    return enqueue_each(TaskName.DELIVER, requeued) + failed


def _finds_sent(channel_id: int | None) -> bool:
    channel = Channel.objects.filter(pk=channel_id).first() if channel_id else None
    return bool(channel and channel.adapter().finds_sent)
