"""Taking in what people write on the channels: new messages join their conversation's ticket or open one,
edits and deletions change the stored message. Set-based: a batch costs a fixed number of queries.

The pipeline (``channels_ingest.ingest``) hands over envelopes already stored and decides which to ingest;
this module only knows tickets, their conversations (an opaque thread key per channel) and people.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime

from django.db import connection
from django.utils import timezone
from django.utils.text import capfirst

from channel_adapters.base import Envelope, EnvelopeKind, Sender

from . import sla
from .attachments import record_inbound
from .bulk_insert import insert_rows
from .delivery_reports import APPLIED, apply_reactions, apply_reports
from .itil import matrix_priority
from .marks import next_mark
from .models import Contact, Identity, Message, Ticket, TicketEvent, TicketFollower, TicketThread
from .routing import route_new_tickets


@dataclass(frozen=True)
class Outcome:
    stored: bool
    note: str = ""
    ticket_id: int | None = None
    opened_ticket: bool = False
    #: Attachments of the stored message that the channel layer still has to download.
    attachments_to_fetch: tuple[int, ...] = ()


STORED = Outcome(stored=True)


def receive_batch(*, channel, envelopes: list[Envelope]) -> dict[str, Outcome]:
    """Apply a batch of inbound envelopes from one channel, with a fixed number of queries.

    New messages join the ticket they name (``ticket_number``) when their sender takes part in it, else the
    ticket of a message they answer (``refers_to``), else that of their thread, or open one. The people they
    were copied to follow their ticket. Edits,
    deletions and reactions update the stored message; delivery reports
    update the reply they are about. Returns an outcome per envelope
    ``external_id``. Must run inside a transaction.
    """
    by_kind = defaultdict(list)
    for envelope in envelopes:
        by_kind[envelope.kind].append(envelope)
    messages = by_kind[EnvelopeKind.MESSAGE]
    edits = by_kind[EnvelopeKind.EDIT] + by_kind[EnvelopeKind.DELETE]
    outcomes = _store_messages(channel, messages) if messages else {}
    outcomes.update(_apply_edits(channel, edits) if edits else {})
    for kind, apply in ((EnvelopeKind.STATUS, apply_reports), (EnvelopeKind.REACTION, apply_reactions)):
        if by_kind[kind]:
            notes = apply(channel, by_kind[kind])
            outcomes.update(
                {key: STORED if note == APPLIED else Outcome(stored=False, note=note) for key, note in notes.items()}
            )
    return outcomes


def _store_messages(channel, envelopes):
    envelopes = sorted(envelopes, key=lambda e: e.sent_at)
    identities = _resolve_identities({person for e in envelopes for person in (e.sender, *e.copied) if person})
    already = set(
        Message.objects.with_external_ids([e.external_id for e in envelopes])
        .filter(thread__channel=channel)
        .values_list("external_id", flat=True)
    )
    outcomes = {
        e.external_id: Outcome(stored=False, note="already stored") for e in envelopes if e.external_id in already
    }
    outcomes.update({e.external_id: Outcome(stored=False, note="no sender") for e in envelopes if not e.sender})
    fresh = list({e.external_id: e for e in envelopes if e.external_id not in already and e.sender}.values())
    fresh, settled, attach = _join_named_tickets(channel, fresh, identities)
    fresh = _join_referenced_threads(channel, fresh, settled=settled)
    threads, opened = _resolve_threads(channel, fresh, identities, attach)

    rows = []
    for envelope in fresh:
        thread_id, ticket_id = threads[envelope.thread_key]
        rows.append(
            {
                "ticket_id": ticket_id,
                "thread_id": thread_id,
                "direction": Message.Direction.INBOUND,
                "author_identity_id": identities[_sender_key(envelope)].pk,
                "body": Message.clean_body(envelope.text),
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
    _add_followers(fresh, threads, identities)
    opened_tickets = {threads[key][1] for key in opened}
    touched = {row["ticket_id"] for row in rows} - opened_tickets
    if touched:
        # By time, so the last one of a ticket is who wrote last.
        writers = {threads[e.thread_key][1]: identities[_sender_key(e)] for e in fresh}
        _record_requester_activity(channel, touched, writers)
    return outcomes


def _sender_key(envelope: Envelope) -> tuple[str, str]:
    """Who wrote ``envelope``, as identities are keyed (only envelopes with a sender are stored)."""
    if envelope.sender is None:
        raise ValueError(f"{envelope.external_id} has no sender")
    return envelope.sender.namespace, envelope.sender.external_id


def _join_named_tickets(
    channel, envelopes: list[Envelope], identities
) -> tuple[list[Envelope], set[str], dict[str, int]]:
    """Each message naming a ticket (``ticket_number``) whose sender takes part in it moves to that ticket's
    conversation on this channel; a ticket merged into another is followed to where its conversations went.

    Taking part is being the requester (of the named ticket, or of one it was merged into) or a follower: a
    number guessed by anyone else is ignored, so nobody can write into someone else's ticket. Returns the
    envelopes, the external ids of those that joined their ticket this way, and the conversations to attach
    ({thread key: ticket id}): a ticket with no conversation on this channel yet gets the message's own.
    A fixed number of queries, none without a named ticket.
    """
    named = {e.ticket_number for e in envelopes if e.ticket_number is not None}
    if not named:
        return envelopes, set(), {}
    chains = _merge_chains(named)
    finals = {chain[-1][0] for chain in chains.values()}
    authors = {identities[_sender_key(e)].pk for e in envelopes if e.ticket_number in chains}
    following = set(
        TicketFollower.objects.filter(ticket_id__in=finals, identity_id__in=authors).values_list(
            "ticket_id", "identity_id"
        )
    )
    threads: list[tuple[int | None, int, str]] = list(
        TicketThread.objects.filter(channel=channel, ticket_id__in=finals, detached_at=None)
        .order_by("id")
        .values_list("id", "ticket_id", "key")
    )
    wrote_in = set(
        Message.objects.filter(thread_id__in=[pk for pk, _, _ in threads], author_identity_id__in=authors)
        .order_by()
        .values_list("thread_id", "author_identity_id")
        .distinct()
    )
    joined: list[Envelope] = []
    settled: set[str] = set()
    attach: dict[str, int] = {}
    for envelope in envelopes:
        chain = chains.get(envelope.ticket_number) if envelope.ticket_number is not None else None
        author = identities[_sender_key(envelope)]
        if not chain or not (
            author.contact_id in {requester for _, requester in chain} or (chain[-1][0], author.pk) in following
        ):
            joined.append(envelope)
            continue
        ticket_id = chain[-1][0]
        # Their own conversation if they have one there; else the latest (the last one a merge brought in).
        candidates = [(pk, key) for pk, ticket, key in threads if ticket == ticket_id]
        own = [key for pk, key in candidates if (pk, author.pk) in wrote_in]
        keys = own or [key for _, key in candidates]
        if keys:
            key = keys[-1]
        else:
            key = envelope.thread_key
            attach[key] = ticket_id
            # Later messages naming the same ticket in this batch join this new conversation.
            threads.append((None, ticket_id, key))
        settled.add(envelope.external_id)
        joined.append(
            replace(envelope, thread_key=key, starts_thread=False) if key != envelope.thread_key else envelope
        )
    return joined, settled, attach


#: Farther than any real chain of merges (each merge of a ticket already merged into another adds one).
MAX_MERGE_HOPS = 50


def _merge_chains(ticket_ids: set[int]) -> dict[int, list[tuple[int, int]]]:
    """For each existing ticket of ``ticket_ids``: (ticket id, requester id) of it, then of the ticket it was
    merged into, and so on to the ticket that holds its conversations now. One query, however long the chains."""
    table = connection.ops.quote_name(Ticket._meta.db_table)
    placeholders = ", ".join(["%s"] * len(ticket_ids))
    sql = f"""
        WITH RECURSIVE chain (named, id, requester_id, merged_into_id, hops) AS (
            SELECT id, id, requester_id, merged_into_id, 0 FROM {table} WHERE id IN ({placeholders})
            UNION ALL
            SELECT chain.named, t.id, t.requester_id, t.merged_into_id, chain.hops + 1
            FROM {table} t JOIN chain ON t.id = chain.merged_into_id
            WHERE chain.hops < %s
        )
        SELECT named, id, requester_id FROM chain ORDER BY named, hops
    """  # noqa: S608 - only the quoted table name and the placeholders are formatted in
    chains: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*sorted(ticket_ids), MAX_MERGE_HOPS])
        for named, ticket_id, requester_id in cursor.fetchall():
            chains[named].append((ticket_id, requester_id))
    return dict(chains)


def _join_referenced_threads(channel, envelopes: list[Envelope], *, settled: set[str]) -> list[Envelope]:
    """Each message that refers to a stored message (or one earlier in the batch) moves to that message's
    conversation: an email reply joins its ticket whatever its own thread key. Not those ``settled`` already
    (by the ticket they name). One indexed query."""
    referenced = {ref for e in envelopes if e.external_id not in settled for ref in e.refers_to}
    if not referenced:
        return envelopes
    known = dict(
        Message.objects.with_external_ids(referenced)
        .filter(thread__channel=channel, thread__detached_at=None)
        .values_list("external_id", "thread__key")
        .order_by()
    )
    joined = []
    for envelope in envelopes:  # by time, so a reply to a message of this batch finds its new key
        key = (
            None
            if envelope.external_id in settled
            else next((known[ref] for ref in envelope.refers_to if ref in known), None)
        )
        if key is not None and key != envelope.thread_key:
            envelope = replace(envelope, thread_key=key, starts_thread=False)
        known[envelope.external_id] = envelope.thread_key
        joined.append(envelope)
    return joined


def _record_requester_activity(channel, ticket_ids: set[int], writers: dict[int, Identity]) -> None:
    """People wrote on these tickets: refresh their activity, and reopen those waiting on the requester or done,
    each reopening on the ticket's timeline as the channel's doing. A fixed number of queries.

    The tickets are locked first (in id order, as every bulk writer; no stronger than the UPDATE's own lock,
    so replies can still be inserted meanwhile), so the statuses read are the ones the reopening UPDATE
    changes: no agent's change can slip in between.
    """
    statuses = dict(
        Ticket.objects.select_for_update(no_key=True)
        .filter(pk__in=ticket_ids)
        .order_by("pk")
        .values_list("pk", "status")
    )
    now = timezone.now()
    # An answer to a ticket waiting on the requester restarts its SLA clock, whatever the channel.
    sla.resume_many([pk for pk, status in statuses.items() if status == Ticket.Status.PENDING], at=now)
    Ticket.objects.filter(pk__in=ticket_ids).record_customer_activity()
    channel_label = f"{capfirst(channel.kind)} {channel.name}"
    reopenings = [
        TicketEvent.status_change(
            ticket_id=pk,
            old=status,
            new=Ticket.Status.OPEN,
            at=now,
            actor_label=channel_label,
            reason=f"new message from {_name_of(writers[pk])}",
        )
        for pk, status in statuses.items()
        if status in Ticket.REOPENED_BY_REQUESTER
    ]
    if reopenings:
        TicketEvent.objects.bulk_create(reopenings)


def _name_of(identity: Identity) -> str:
    return identity.display_name or identity.handle or identity.external_id


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


def _resolve_threads(channel, envelopes, identities, attach: dict[str, int]):
    """(thread id, ticket id) for each envelope's thread, and which envelope opened each new ticket.

    A thread seen for the first time opens a ticket, unless ``attach`` gives it one (a message that named its
    ticket). So does a message in a conversation that does not reopen (a DM) whose ticket is resolved or closed.
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
    attached = {key: ticket_id for key, ticket_id in attach.items() if key not in threads}
    for envelope in envelopes:  # sorted by time: the first message of a new thread opens it
        key = envelope.thread_key
        if key in openers or key in attached:
            continue
        if key not in threads or (key in closed and not envelope.reopens):
            openers[key] = envelope
    # A new ticket's messages are all in this batch, so its counters are known before it is inserted.
    batch_count: defaultdict[str, int] = defaultdict(int)
    batch_latest: dict[str, datetime] = {}
    for envelope in envelopes:
        batch_count[envelope.thread_key] += 1
        batch_latest[envelope.thread_key] = envelope.sent_at
    detach = [closed[key] for key in openers if key in closed]
    if detach:
        TicketThread.objects.filter(id__in=detach).update(detached_at=timezone.now())
    # A new ticket has the default impact and urgency, so the matrix's priority for them (one query per batch).
    priority = matrix_priority(Ticket.Level.MEDIUM, Ticket.Level.MEDIUM) if openers else Ticket.Priority.NORMAL
    ticket_ids = insert_rows(
        Ticket,
        [
            {
                # A message of files alone is named by its files.
                "subject": Ticket.subject_from_text(
                    Message.clean_body(e.subject or e.text or ", ".join(a.name for a in e.attachments))
                ),
                "requester_id": identities[(e.sender.namespace, e.sender.external_id)].contact_id,
                "channel_id": channel.pk,
                "priority": priority,
                "created_at": e.sent_at,
                "last_activity_at": batch_latest[key],
                "message_count": batch_count[key],
            }
            for key, e in openers.items()
        ],
    )
    # Routing rules run once per new ticket, here in the transaction that inserts it.
    route_new_tickets(
        {
            ticket_id: "\n".join(part for part in (e.subject, e.text) if part)
            for ticket_id, e in zip(ticket_ids, openers.values(), strict=True)
        }
    )
    # Their SLA clocks start now, before anything (an acknowledgement) reads their due times.
    sla.start_clocks(ticket_ids)
    new_threads = {**dict(zip(openers, ticket_ids, strict=True)), **attached}
    thread_ids = insert_rows(
        TicketThread,
        [{"ticket_id": ticket_id, "channel_id": channel.pk, "key": key} for key, ticket_id in new_threads.items()],
    )
    threads.update(zip(new_threads, zip(thread_ids, new_threads.values(), strict=True), strict=True))
    return threads, {key: e.external_id for key, e in openers.items()}


def _add_followers(envelopes, threads, identities) -> None:
    """The people each message was copied to follow its ticket, once each; its requester does not. Two queries,
    none without anyone copied."""
    copied = {
        (threads[e.thread_key][1], identities[(person.namespace, person.external_id)])
        for e in envelopes
        for person in e.copied
    }
    if not copied:
        return
    requesters = dict(
        Ticket.objects.filter(pk__in={ticket_id for ticket_id, _ in copied}).values_list("pk", "requester_id")
    )
    TicketFollower.objects.bulk_create(
        [
            TicketFollower(ticket_id=ticket_id, identity=identity)
            for ticket_id, identity in sorted(copied, key=lambda pair: (pair[0], pair[1].pk))
            if identity.contact_id != requesters[ticket_id]
        ],
        ignore_conflicts=True,
    )


def _apply_edits(channel, envelopes):
    """Edits and deletions of stored messages."""
    targets = {
        m.external_id: m
        for m in Message.objects.with_external_ids({e.target_id for e in envelopes}).filter(thread__channel=channel)
    }
    outcomes = {}
    edited = {}
    for envelope in sorted(envelopes, key=lambda e: e.sent_at):
        message = targets.get(envelope.target_id)
        if message is None:
            outcomes[envelope.external_id] = Outcome(stored=False, note="the changed message is not stored")
            continue
        if envelope.kind == EnvelopeKind.EDIT:
            message.body = Message.clean_body(envelope.text)
            message.edited_at = envelope.sent_at
        else:
            message.deleted_at = envelope.sent_at
        message.changed_mark = next_mark()  # open pages swap the entry in place (tickets.changes)
        edited[message.pk] = message
        outcomes[envelope.external_id] = STORED
    Message.objects.bulk_update(edited.values(), ["body", "edited_at", "deleted_at", "changed_mark"])
    return outcomes
