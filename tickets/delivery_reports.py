"""What platforms report back after a reply went out (delivered, read, failed) and the reactions people put
on messages. Both change a stored message in place, like an edit, and show on the open pages at once.

A report only moves a reply forward (sent → delivered → read): reports arrive out of order and more than
once, and a late "delivered" never hides a "read". A report may come while the reply's files are still
being sent (its text has its id already): it applies, and the delivery keeps it. A failure reported after
sending is shown with the platform's words, and the reply loses the platform id of the message that failed,
so the agent's Retry sends it again. A report on a reply the desk does not know (yet) is skipped with a note:
the platform's answer to the send may still be on its way. Unless it carries the reply's delivery key
(``meta["key"]``, WhatsApp's ``biz_opaque_callback_data``) and names a reply whose send went unanswered (no
platform id, waiting or failed with "it may or may not have arrived"): then the reply did arrive, and the
report records its id and status, so nobody sends it again.
"""

from __future__ import annotations

from datetime import datetime

from channel_adapters.base import DeliveryReport, Envelope

from .marks import next_mark
from .models import Message

#: How far each report moves a reply; a report never moves it back.
_RANK = {
    Message.DeliveryStatus.SENDING: 0,
    Message.DeliveryStatus.SENT: 0,
    Message.DeliveryStatus.DELIVERED: 1,
    Message.DeliveryStatus.READ: 2,
}
_STATUS_OF = {
    DeliveryReport.SENT: Message.DeliveryStatus.SENT,
    DeliveryReport.DELIVERED: Message.DeliveryStatus.DELIVERED,
    DeliveryReport.READ: Message.DeliveryStatus.READ,
}
_REPORTABLE = (*_RANK, Message.DeliveryStatus.FAILED)  # sending: its text went out, files may still follow
#: A reply without a platform id in these states may be the one a keyed report names (its send went unanswered).
_UNCONFIRMED = (Message.DeliveryStatus.QUEUED, Message.DeliveryStatus.FAILED)


#: What each function below returns per envelope: "" when applied, else why it was skipped.
APPLIED = ""


def apply_reports(channel, envelopes: list[Envelope]) -> dict[str, str]:
    """Apply delivery reports: per envelope, ``APPLIED`` or why not."""
    outcomes = {}
    by_id = [e for e in envelopes if e.target_id]
    targets = {
        m.external_id: m
        for m in Message.objects.with_external_ids({e.target_id for e in by_id}).filter(
            thread__channel=channel, direction=Message.Direction.OUTBOUND
        )
    }
    keyed = _unconfirmed_by_key(channel, [e for e in by_id if e.target_id not in targets])
    changed: dict[int, Message] = {}
    for envelope in sorted(by_id, key=lambda e: e.sent_at):
        message = targets.get(envelope.target_id)
        if message is None and (message := keyed.pop(str(envelope.meta.get("key")), None)):
            _confirm(message, envelope)
            targets[envelope.target_id] = message  # later reports on it (delivered, read) apply as usual
        if message is None:
            outcomes[envelope.external_id] = "the reported reply is not stored"
            continue
        outcomes[envelope.external_id] = _report(message, envelope)
        if outcomes[envelope.external_id] == APPLIED:
            changed[message.pk] = message
    if changed:
        fields = [
            *("delivery_status", "delivery_error", "delivery_reported_at", "external_id", "changed_mark"),
            *("delivery_unconfirmed_since", "delivery_next_attempt_at", "delivered_at"),
        ]
        Message.objects.bulk_update(changed.values(), fields)
    for envelope in (e for e in envelopes if not e.target_id):
        outcomes[envelope.external_id] = _report_up_to(channel, envelope)
    return outcomes


def _unconfirmed_by_key(channel, envelopes: list[Envelope]) -> dict[str, Message]:
    """The replies without a platform id that these reports name by delivery key, by key: one query."""
    keys = {e.meta["key"] for e in envelopes if e.meta.get("key")}
    if not keys:
        return {}
    return Message.objects.filter(
        thread__channel=channel,
        direction=Message.Direction.OUTBOUND,
        external_id="",
        delivery_status__in=_UNCONFIRMED,
    ).with_delivery_keys(keys)


def _confirm(message: Message, envelope: Envelope) -> None:
    """The platform has the reply whose send went unanswered: it takes the reported id, and counts as sent (the
    report then moves it on), with no warning left and no attempt pending."""
    message.external_id = envelope.target_id or ""
    message.delivery_status = Message.DeliveryStatus.SENT
    message.delivery_error = ""
    message.delivery_unconfirmed_since = None
    message.delivery_next_attempt_at = None
    message.delivered_at = message.delivered_at or envelope.sent_at
    message.changed_mark = next_mark()


def _report(message: Message, envelope: Envelope) -> str:
    """Move ``message`` as the report says: ``APPLIED`` (also when it changes nothing: an older report) or why
    it cannot apply."""
    report = envelope.meta.get("status")
    if message.delivery_status not in _REPORTABLE:
        return f"the reply is {message.delivery_status} here"
    if report == DeliveryReport.FAILED:
        if message.delivery_status == Message.DeliveryStatus.READ:
            return "the reply was read already"
        message.delivery_status = Message.DeliveryStatus.FAILED
        message.delivery_error = str(envelope.meta.get("error") or "The platform reported the reply as failed.")
        message.external_id = ""
    elif report in _STATUS_OF:
        status = _STATUS_OF[report]
        if message.delivery_status == Message.DeliveryStatus.FAILED:
            return "the reply failed already"
        if _RANK[message.delivery_status] >= _RANK[status]:
            return APPLIED  # an older report, arriving late
        message.delivery_status = status
    else:
        return f"unknown report {report!r}"
    message.delivery_reported_at = envelope.sent_at
    message.changed_mark = next_mark()
    return APPLIED


def _report_up_to(channel, envelope: Envelope) -> str:
    """A watermark: every reply in the conversation sent until ``meta["up_to"]`` is delivered (or read)."""
    status = _STATUS_OF.get(envelope.meta.get("status"))
    try:
        up_to = datetime.fromisoformat(envelope.meta["up_to"])
    except (KeyError, TypeError, ValueError):
        return "a report without a reply or a time"
    if status is None:
        return f"unknown report {envelope.meta.get('status')!r}"
    below = [s for s, rank in _RANK.items() if rank < _RANK[status]]
    Message.objects.filter(
        thread__channel=channel,
        thread__key=envelope.thread_key,
        direction=Message.Direction.OUTBOUND,
        delivery_status__in=below,
        # The platform stamps a reply between our attempt's start and its answer; it can be read at once.
        delivery_started_at__lte=up_to,
    ).update(delivery_status=status, delivery_reported_at=envelope.sent_at, changed_mark=next_mark())
    return APPLIED


def apply_reactions(channel, envelopes: list[Envelope]) -> dict[str, str]:
    """Reactions added or taken off stored messages, in the order people made them: ``APPLIED`` or why not."""
    targets = {
        m.external_id: m
        for m in Message.objects.with_external_ids({e.target_id for e in envelopes}).filter(thread__channel=channel)
    }
    outcomes = {}
    changed: dict[int, Message] = {}
    for envelope in sorted(envelopes, key=lambda e: e.sent_at):
        message = targets.get(envelope.target_id)
        if message is None or envelope.sender is None:
            outcomes[envelope.external_id] = "the message reacted to is not stored"
            continue
        who = f"{envelope.sender.namespace}:{envelope.sender.external_id}"
        emoji = str(envelope.meta.get("emoji") or "")
        if envelope.meta.get("removed") or not emoji:
            message.reactions.pop(who, None)
        else:
            message.reactions[who] = emoji
        message.changed_mark = next_mark()
        changed[message.pk] = message
        outcomes[envelope.external_id] = APPLIED
    if changed:
        Message.objects.bulk_update(changed.values(), ["reactions", "changed_mark"])
    return outcomes
