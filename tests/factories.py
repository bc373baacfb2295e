"""Small builders for envelopes, so tests read as "these events in, this ticket out"."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from channel_adapters.base import Envelope, EnvelopeKind, Sender

#: When the built messages were sent: 09:00 UTC two days before the run, so a message is always between 48 and
#: 72 hours old (older than the queue's "24h" age filter, younger than its "7d"), whatever the date today.
BASE_TIME = (datetime.now(UTC) - timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)


def sender(user="u1", name="Ann Employee", namespace="locmem"):
    return Sender(namespace=namespace, external_id=user, handle=user, display_name=name)


def message(external_id, *, thread=None, user="u1", text=None, minute=0, name="Ann Employee"):
    return Envelope(
        external_id=external_id,
        kind=EnvelopeKind.MESSAGE,
        thread_key=thread or external_id,
        sent_at=BASE_TIME + timedelta(minutes=minute),
        sender=sender(user, name),
        text=text if text is not None else f"text of {external_id}",
        starts_thread=thread in (None, external_id),
    )


def edit(target, text, *, minute=1):
    return Envelope(
        external_id=f"{target}:edit:{minute}",
        kind=EnvelopeKind.EDIT,
        thread_key=target,
        sent_at=BASE_TIME + timedelta(minutes=minute),
        text=text,
        target_id=target,
    )


def deletion(target, *, minute=2):
    return Envelope(
        external_id=f"{target}:delete",
        kind=EnvelopeKind.DELETE,
        thread_key=target,
        sent_at=BASE_TIME + timedelta(minutes=minute),
        target_id=target,
    )


def x_dm_from_bob():
    """Bob writing to us by X DM (conversation "dm:55"), at BASE_TIME: a second channel for merge tests."""
    return Envelope(
        external_id="dm:1",
        kind=EnvelopeKind.MESSAGE,
        thread_key="dm:55",
        sent_at=BASE_TIME,
        sender=Sender(namespace="x", external_id="200", handle="bob_x", display_name=""),
        text="hello from X",
        starts_thread=True,
        reopens=False,
    )


def composer_time(minute=0):
    """How the composer shows when someone last wrote ("j M, H:i T"), for a message sent ``minute`` after BASE_TIME,
    to a user without a time zone of their own (UTC)."""
    at = BASE_TIME + timedelta(minutes=minute)
    return f"{at.day} {at:%b, %H:%M} UTC"


def message_with(*attachments, external_id="m0"):
    """A message that carries ``attachments`` (``InboundAttachment``s)."""
    return replace(message(external_id), attachments=attachments)


def mention(n, *, summoned=False, text=None, user="100", handle="ann", name="Ann Employee", minute=0):
    """A public post on X that mentions the helpdesk; ``summoned`` when it @mentions the account itself."""
    return Envelope(
        external_id=f"tweet:{n}",
        kind=EnvelopeKind.MESSAGE,
        thread_key=f"conv:{n}",
        sent_at=BASE_TIME + timedelta(minutes=minute),
        sender=Sender(namespace="x", external_id=user, handle=f"@{handle}", display_name=name),
        text=text if text is not None else f"@ithelp my laptop {n} is broken",
        starts_thread=True,
        public=True,
        meta={"summoned": summoned, "direct_mention": summoned},
    )


def delivery_report(target, status, *, thread="m0", minute=5, error=""):
    """The platform reports on our reply ``target`` (its id as ``send`` returned it): delivered, read or failed."""
    return Envelope(
        external_id=f"{target}:{status}:{minute}",
        kind=EnvelopeKind.STATUS,
        thread_key=thread,
        sent_at=BASE_TIME + timedelta(minutes=minute),
        target_id=target,
        meta={"status": str(status), **({"error": error} if error else {})},
    )


def reaction(target, emoji, *, user="u1", thread="m0", removed=False, minute=3):
    """``user`` reacts to the stored message ``target`` with ``emoji`` (or takes the reaction off)."""
    return Envelope(
        external_id=f"{target}:reaction:{user}:{minute}",
        kind=EnvelopeKind.REACTION,
        thread_key=thread,
        sent_at=BASE_TIME + timedelta(minutes=minute),
        target_id=target,
        sender=sender(user),
        meta={"emoji": emoji, "removed": removed},
    )
