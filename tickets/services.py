"""Ticket workflows that span models: taking in customer messages, replying."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, replace

from django.db import transaction
from django.utils import timezone

from channels_ingest.adapters.base import Envelope, EnvelopeKind, ReplyMode, ReplyTarget, Sender

from .attachments import attach_reply_files, check_reply_files, record_inbound
from .bulk import insert_rows
from .marks import next_mark
from .models import Contact, Identity, Message, Ticket, TicketEvent, TicketThread

logger = logging.getLogger(__name__)

MAX_BODY_LENGTH = 40_000


class ReplyError(ValueError):
    """A reply that cannot be sent as written."""


@dataclass(frozen=True)
class Outcome:
    stored: bool
    note: str = ""
    ticket_id: int | None = None
    opened_ticket: bool = False
    #: Attachments of the stored message that the channel layer still has to download.
    attachments_to_fetch: tuple[int, ...] = ()


STORED = Outcome(stored=True)


def clean_text(text: str) -> str:
    """Keep every character a person typed (emoji, RTL, zero-width), but nothing the database refuses."""
    text = text.replace("\x00", "\ufffd")
    if len(text) > MAX_BODY_LENGTH:
        dropped = len(text) - MAX_BODY_LENGTH
        logger.warning("Message text truncated by %d characters", dropped)
        text = text[:MAX_BODY_LENGTH] + f"\n… [truncated {dropped} characters]"
    return text


def receive_batch(*, channel, envelopes: list[Envelope]) -> dict[str, Outcome]:
    """Apply a batch of inbound envelopes from one channel, with a fixed number of queries.

    New messages join the ticket of their thread, or open one. Edits and
    deletions update the stored message. Returns an outcome per envelope
    ``external_id``. Must run inside a transaction.
    """
    messages = [e for e in envelopes if e.kind == EnvelopeKind.MESSAGE]
    changes = [e for e in envelopes if e.kind != EnvelopeKind.MESSAGE]
    outcomes = _store_messages(channel, messages) if messages else {}
    outcomes.update(_apply_changes(channel, changes) if changes else {})
    return outcomes


def _store_messages(channel, envelopes):
    envelopes = sorted(envelopes, key=lambda e: e.sent_at)
    identities = _resolve_identities({e.sender for e in envelopes if e.sender})
    already = set(
        Message.objects.filter(thread__channel=channel, external_id__in=[e.external_id for e in envelopes]).values_list(
            "external_id", flat=True
        )
    )
    outcomes = {e.external_id: Outcome(stored=False, note="already stored") for e in envelopes if e.external_id in already}
    outcomes.update({e.external_id: Outcome(stored=False, note="no sender") for e in envelopes if not e.sender})
    fresh = list({e.external_id: e for e in envelopes if e.external_id not in already and e.sender}.values())
    threads, opened = _resolve_threads(channel, fresh, identities)

    rows = []
    for envelope in fresh:
        thread_id, ticket_id = threads[envelope.thread_key]
        rows.append(
            {
                "ticket_id": ticket_id,
                "thread_id": thread_id,
                "direction": Message.Direction.INBOUND,
                "author_identity_id": identities[(envelope.sender.namespace, envelope.sender.external_id)].pk,
                "body": clean_text(envelope.text),
                "external_id": envelope.external_id,
                "created_at": envelope.sent_at,
                "meta": envelope.meta,
            }
        )
        outcomes[envelope.external_id] = Outcome(
            stored=True, ticket_id=ticket_id, opened_ticket=opened.get(envelope.thread_key) == envelope.external_id
        )
    message_ids = insert_rows(Message, rows)
    with_files = [(e, message_id) for e, message_id in zip(fresh, message_ids, strict=True) if e.attachments]
    if with_files:
        to_fetch = record_inbound((message_id, item) for e, message_id in with_files for item in e.attachments)
        for envelope, message_id in with_files:
            outcome = outcomes[envelope.external_id]
            outcomes[envelope.external_id] = replace(outcome, attachments_to_fetch=tuple(to_fetch.get(message_id, ())))
    opened_tickets = {threads[key][1] for key in opened}
    touched = {row["ticket_id"] for row in rows} - opened_tickets
    if touched:
        Ticket.objects.filter(id__in=touched).record_customer_activity()
    return outcomes


def _resolve_identities(senders: set[Sender]) -> dict[tuple[str, str], Identity]:
    """Find or create the identity (and its contact) of each sender; refresh changed names."""
    by_key = {(s.namespace, s.external_id): s for s in senders}
    found = {}
    for namespace in {ns for ns, _ in by_key}:
        ids = [ext for ns, ext in by_key if ns == namespace]
        for identity in Identity.objects.filter(namespace=namespace, external_id__in=ids):
            found[(identity.namespace, identity.external_id)] = identity

    stale = []
    for key, identity in found.items():
        sender = by_key[key]
        if sender.display_name and (identity.display_name, identity.handle, identity.email) != (
            sender.display_name,
            sender.handle,
            sender.email,
        ):
            identity.display_name, identity.handle, identity.email = sender.display_name, sender.handle, sender.email
            stale.append(identity)
    if stale:
        Identity.objects.bulk_update(stale, ["display_name", "handle", "email"])

    missing = [by_key[key] for key in by_key if key not in found]
    if missing:
        contacts = Contact.objects.bulk_create(
            [Contact(display_name=s.display_name or s.handle or s.external_id, email=s.email) for s in missing]
        )
        created = Identity.objects.bulk_create(
            [
                Identity(
                    contact=contact,
                    namespace=s.namespace,
                    external_id=s.external_id,
                    handle=s.handle,
                    display_name=s.display_name,
                    email=s.email,
                )
                for s, contact in zip(missing, contacts, strict=True)
            ]
        )
        found.update({(i.namespace, i.external_id): i for i in created})
    return found


def refresh_identities(senders: list[Sender]) -> None:
    """Names arrived for these accounts: update their identities, and contacts still named by a raw id."""
    identities = _resolve_identities(set(senders))
    for sender in senders:
        contact_id = identities[(sender.namespace, sender.external_id)].contact_id
        Contact.objects.filter(pk=contact_id, display_name=sender.external_id).update(
            display_name=sender.display_name or sender.handle or sender.external_id, email=sender.email
        )


def _resolve_threads(channel, envelopes, identities):
    """(thread id, ticket id) for each envelope's thread, and which envelope opened each new ticket.

    A thread seen for the first time opens a ticket. So does a message in a
    conversation that does not reopen (a DM) whose ticket is resolved or closed.
    """
    keys = {e.thread_key for e in envelopes}
    existing = TicketThread.objects.filter(channel=channel, key__in=keys, detached_at=None).values_list(
        "key", "id", "ticket_id", "ticket__status"
    )
    threads, closed = {}, {}
    for key, thread_id, ticket_id, status in existing:
        threads[key] = (thread_id, ticket_id)
        if status in Ticket.CLOSED_STATUSES:
            closed[key] = thread_id
    openers = {}
    for envelope in envelopes:  # sorted by time: the first message of a new thread opens it
        key = envelope.thread_key
        if key in openers:
            continue
        if key not in threads or (key in closed and not envelope.reopens):
            openers[key] = envelope
    # A new ticket's messages are all in this batch, so its counters are known before it is inserted.
    batch_count, batch_latest = defaultdict(int), {}
    for envelope in envelopes:
        batch_count[envelope.thread_key] += 1
        batch_latest[envelope.thread_key] = envelope.sent_at
    detach = [closed[key] for key in openers if key in closed]
    if detach:
        TicketThread.objects.filter(id__in=detach).update(detached_at=timezone.now())
    ticket_ids = insert_rows(
        Ticket,
        [
            {
                # A message of files alone is named by its files.
                "subject": Ticket.subject_from_text(clean_text(e.text or ", ".join(a.name for a in e.attachments))),
                "requester_id": identities[(e.sender.namespace, e.sender.external_id)].contact_id,
                "channel_id": channel.pk,
                "created_at": e.sent_at,
                "last_activity_at": batch_latest[key],
                "message_count": batch_count[key],
            }
            for key, e in openers.items()
        ],
    )
    thread_ids = insert_rows(
        TicketThread,
        [
            {"ticket_id": ticket_id, "channel_id": channel.pk, "key": key}
            for key, ticket_id in zip(openers, ticket_ids, strict=True)
        ],
    )
    threads.update(zip(openers, zip(thread_ids, ticket_ids, strict=True), strict=True))
    return threads, {key: e.external_id for key, e in openers.items()}


def _apply_changes(channel, envelopes):
    targets = {
        m.external_id: m
        for m in Message.objects.filter(thread__channel=channel, external_id__in={e.target_id for e in envelopes})
    }
    outcomes = {}
    changed = {}
    for envelope in sorted(envelopes, key=lambda e: e.sent_at):
        message = targets.get(envelope.target_id)
        if message is None:
            outcomes[envelope.external_id] = Outcome(stored=False, note="the changed message is not stored")
            continue
        if envelope.kind == EnvelopeKind.EDIT:
            message.body = clean_text(envelope.text)
            message.edited_at = envelope.sent_at
        else:
            message.deleted_at = envelope.sent_at
        message.changed_mark = next_mark()  # open pages swap the entry in place (tickets.changes)
        changed[message.pk] = message
        outcomes[envelope.external_id] = STORED
    Message.objects.bulk_update(changed.values(), ["body", "edited_at", "deleted_at", "changed_mark"])
    return outcomes


def latest_thread(ticket: Ticket) -> TicketThread | None:
    """The conversation a reply goes to by default: where the requester wrote last."""
    return (
        TicketThread.objects.filter(ticket=ticket, messages__direction=Message.Direction.INBOUND)
        .select_related("channel")
        .order_by("-messages__created_at")
        .first()
    )


def reply_target(thread: TicketThread, *, mode: str = "") -> ReplyTarget:
    """What the channel needs to answer this conversation: the last inbound message and its author."""
    last = (
        thread.messages.filter(direction=Message.Direction.INBOUND)
        .select_related("author_identity")
        .order_by("-created_at", "-id")
        .first()
    )
    return ReplyTarget(
        thread_key=thread.key,
        mode=mode,
        reply_to=last.external_id if last else "",
        reply_to_meta=last.meta if last else {},
        recipient=last.author_identity.external_id if last and last.author_identity else "",
    )


def reply_modes(ticket: Ticket, thread: TicketThread | None = None) -> list[ReplyMode]:
    """How an agent may answer this ticket right now (e.g. public reply or DM), per its channel's rules."""
    thread = thread or latest_thread(ticket)
    if thread is None:
        return []
    return thread.channel.adapter().reply_modes(reply_target(thread))


def reply_to_ticket(
    *, ticket: Ticket, author, body: str, mode: str | None = None, thread: TicketThread | None = None, files=()
) -> Message:
    """Store an agent's reply as queued and hand it to delivery once committed.

    ``mode`` picks one of the channel's reply modes; None takes the first allowed one. ``thread``
    picks which of the ticket's conversations to answer; None takes where the requester wrote last.
    ``files`` (uploaded files) are kept on the reply and sent after its text, if the mode carries attachments.
    """
    body = body.strip()
    if not body:
        raise ReplyError("A reply needs some text.")
    if len(body) > MAX_BODY_LENGTH:  # before any (possibly slow) weighing by the channel
        raise ReplyError(f"The reply is {len(body)} characters; replies take at most {MAX_BODY_LENGTH}.")
    if ticket.merged_into_id:
        raise ReplyError(f"This ticket was merged into #{ticket.merged_into_id}; reply there.")
    if thread is not None and thread.ticket_id != ticket.pk:
        raise ReplyError(f"That conversation is not part of ticket #{ticket.pk}.")
    thread = thread or latest_thread(ticket)
    if thread is None:
        raise ReplyError("This ticket has no channel conversation to reply to.")
    adapter = thread.channel.adapter()
    modes = adapter.reply_modes(reply_target(thread))
    chosen = next((m for m in modes if (m.key == mode if mode is not None else m.allowed)), None)
    if chosen is None:
        raise ReplyError(f"This channel has no reply mode {mode!r}." if mode is not None else "No way to reply here.")
    if not chosen.allowed:
        raise ReplyError(f"{chosen.label} is not possible here: {chosen.reason}")
    length = adapter.reply_length(body, chosen.key)
    if length > chosen.max_length:
        what = f"a {chosen.label.lower()}" if chosen.key else "this channel"
        raise ReplyError(f"The reply is {length} characters; {what} takes at most {chosen.max_length}.")
    refused = check_reply_files(files, chosen)
    if refused:
        raise ReplyError(refused)

    from channels_ingest.tasks import deliver_message, enqueue

    now = timezone.now()
    with transaction.atomic():
        message = Message.objects.create(
            ticket=ticket,
            thread=thread,
            direction=Message.Direction.OUTBOUND,
            author_user=author,
            body=body,
            created_at=now,
            reply_mode=chosen.key,
            delivery_status=Message.DeliveryStatus.QUEUED,
            delivery_next_attempt_at=now,
        )
        attach_reply_files(message, files)
        ticket.record_agent_reply(at=now)
        ticket.save(update_fields=["status", "last_activity_at", "message_count"])
        transaction.on_commit(lambda: enqueue(deliver_message, message.pk))
    return message


def add_note(*, ticket: Ticket, author, body: str) -> Message:
    """Store an agent's internal note: seen by agents in the timeline, never delivered to the requester.

    A note has no thread and no delivery status. It counts as activity (``last_activity_at``,
    ``message_count``) but leaves the status alone: nobody answered the requester.
    """
    from django.db.models import F
    from django.db.models.functions import Greatest

    body = body.strip()
    if not body:
        raise ReplyError("A note needs some text.")
    if len(body) > MAX_BODY_LENGTH:
        raise ReplyError(f"The note is {len(body)} characters; notes take at most {MAX_BODY_LENGTH}.")
    now = timezone.now()
    with transaction.atomic():
        message = Message.objects.create(
            ticket=ticket, direction=Message.Direction.NOTE, author_user=author, body=clean_text(body), created_at=now
        )
        Ticket.objects.filter(pk=ticket.pk).update(
            last_activity_at=Greatest(F("last_activity_at"), now), message_count=F("message_count") + 1
        )
    ticket.refresh_from_db(fields=["last_activity_at", "message_count"])
    return message


def attach_thread(*, ticket: Ticket, channel, key: str) -> None:
    """A reply opened a new conversation (e.g. moved to DM): the requester's answers there join this ticket."""
    thread, created = TicketThread.objects.get_or_create(
        channel=channel, key=key, detached_at=None, defaults={"ticket": ticket}
    )
    if not created and thread.ticket_id != ticket.pk and not thread.ticket.is_open:
        thread.detached_at = timezone.now()
        thread.save(update_fields=["detached_at"])
        TicketThread.objects.create(channel=channel, key=key, ticket=ticket)


class TicketChangeError(ValueError):
    """A ticket change that cannot be applied (an unknown status, a non-agent assignee)."""


#: "Leave as it is" for fields where None means "clear" (assignee, queue).
UNCHANGED = object()


def _user_label(user):
    return (user.get_full_name() or user.get_username()) if user else ""


def validate_changes(*, status=None, priority=None, assignee=UNCHANGED):
    """Refuse what no ticket may be given (an unknown status or priority, a non-agent assignee).

    Returns the priority as a ``Ticket.Priority`` (or None).
    """
    from .roles import is_agent

    if status is not None and status not in Ticket.Status.values:
        raise TicketChangeError(f"Unknown status {status!r}.")
    if priority is not None:
        try:
            priority = Ticket.Priority(int(priority))
        except (TypeError, ValueError) as exc:
            raise TicketChangeError(f"Unknown priority {priority!r}.") from exc
    if assignee is not UNCHANGED and assignee is not None and not is_agent(assignee):
        raise TicketChangeError(f"{_user_label(assignee)} is not an agent and cannot be assigned tickets.")
    return priority


def apply_changes(current: Ticket, *, actor, at, status=None, priority=None, assignee=UNCHANGED, queue=UNCHANGED):
    """Change a locked, freshly read ticket in memory; returns (unsaved events, changed fields).

    ``current`` must have ``assignee`` and ``queue`` loaded (their names go into the events).
    Arguments are already validated (``validate_changes``).
    """
    events, fields = [], set()

    def record(kind, old, new):
        events.append(TicketEvent(ticket=current, actor=actor, kind=kind, old_value=old, new_value=new, created_at=at))

    if status is not None and status != current.status:
        old = current.status
        current.set_status(status, at=at)
        record(TicketEvent.Kind.STATUS, old, status)
        fields |= {"status", "resolved_at"}
    if priority is not None and priority != current.priority:
        old = Ticket.Priority(current.priority).label.lower()
        current.priority = priority
        record(TicketEvent.Kind.PRIORITY, old, priority.label.lower())
        fields.add("priority")
    if assignee is not UNCHANGED and (assignee.pk if assignee else None) != current.assignee_id:
        record(TicketEvent.Kind.ASSIGNEE, _user_label(current.assignee), _user_label(assignee))
        current.assignee = assignee
        fields.add("assignee")
    if queue is not UNCHANGED and (queue.pk if queue else None) != current.queue_id:
        record(TicketEvent.Kind.QUEUE, current.queue.name if current.queue else "", queue.name if queue else "")
        current.queue = queue
        fields.add("queue")
    if events:
        current.last_activity_at = max(current.last_activity_at, at)
        fields.add("last_activity_at")
    return events, fields


def change_ticket(*, ticket: Ticket, actor, status=None, priority=None, assignee=UNCHANGED, queue=UNCHANGED):
    """Apply an agent's changes to a ticket and record one ``TicketEvent`` per field that really changed.

    ``status`` and ``priority`` are left alone when None; ``assignee`` and ``queue`` when ``UNCHANGED``
    (None clears them). Status moves through ``Ticket.set_status`` (resolving stamps ``resolved_at``,
    reopening clears it). The row is locked and re-read, so concurrent changes are judged against the
    stored values; ``ticket`` is updated in place. Returns the events written (none for a no-op).
    """
    priority = validate_changes(status=status, priority=priority, assignee=assignee)
    now = timezone.now()
    with transaction.atomic():
        current = Ticket.objects.select_for_update(of=("self",)).select_related("assignee", "queue").get(pk=ticket.pk)
        events, fields = apply_changes(
            current, actor=actor, at=now, status=status, priority=priority, assignee=assignee, queue=queue
        )
        if not events:
            return []
        current.save(update_fields=sorted(fields))
        TicketEvent.objects.bulk_create(events)
    for field in ("status", "resolved_at", "priority", "assignee", "queue", "last_activity_at"):
        setattr(ticket, field, getattr(current, field))
    return events
