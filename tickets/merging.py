"""Merging duplicate tickets into one, in a fixed number of queries.

The kept ticket takes the others' conversations (``TicketThread``) and messages. Each message keeps
its thread, so it keeps its channel conversation: a reply can still go to every requester, and
their later messages land in the kept ticket (ingestion finds the ticket through the thread).
Their followers follow the kept ticket. The merged tickets are closed and point at the kept one
(``Ticket.merged_into``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models, transaction
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from .models import Message, Ticket, TicketEvent, TicketFollower, TicketThread
from .updates import MAX_BULK, TicketUpdateError


@dataclass(frozen=True)
class MergeOutcome:
    kept: Ticket
    merged: list[Ticket]


def oldest(tickets):
    """The ticket a merge keeps unless the agent picks another: the first one opened."""
    return min(tickets, key=lambda ticket: (ticket.created_at, ticket.pk))


def merge_tickets(*, ticket_ids, actor, keep_id: int | None = None) -> MergeOutcome:
    """Merge the selected tickets into one of them: ``keep_id``, or else the oldest.

    Refused (``TicketUpdateError``, nothing written): fewer than two tickets, a ticket into itself,
    a kept ticket that is not among the selected, a ticket that no longer exists or was already
    merged. Each merged ticket gets a status event (closed) and a "merged" event; so does the kept
    one. If the kept ticket was resolved or closed while a merged one was still open, it reopens:
    an open conversation must not drop out of the queue.
    """
    ids = sorted(set(ticket_ids))
    if len(ids) < 2:
        if len(ticket_ids) >= 2 or (keep_id is not None and ids == [keep_id]):
            raise TicketUpdateError("A ticket cannot be merged into itself.")
        raise TicketUpdateError("Select at least 2 tickets to merge.")
    if len(ids) > MAX_BULK:
        raise TicketUpdateError(f"At most {MAX_BULK} tickets can be merged at once; {len(ids)} were selected.")
    if keep_id is not None and keep_id not in ids:
        raise TicketUpdateError(f"The ticket to keep, #{keep_id}, must be one of the selected tickets.")

    now = timezone.now()
    with transaction.atomic():
        _lock_channels_of(ids)
        tickets = list(Ticket.objects.select_for_update(of=("self",)).filter(pk__in=ids).order_by("pk"))
        missing = sorted(set(ids) - {ticket.pk for ticket in tickets})
        if missing:
            raise TicketUpdateError(f"Ticket #{missing[0]} no longer exists.")
        for ticket in tickets:
            if ticket.merged_into_id:
                raise TicketUpdateError(f"#{ticket.pk} was already merged into #{ticket.merged_into_id}.")
        kept = next(t for t in tickets if t.pk == keep_id) if keep_id is not None else oldest(tickets)
        merged = [ticket for ticket in tickets if ticket is not kept]
        merged_ids = [ticket.pk for ticket in merged]

        Message.objects.filter(ticket_id__in=merged_ids).update(ticket=kept)
        TicketThread.objects.filter(ticket_id__in=merged_ids).update(ticket=kept)
        _move_followers(merged_ids, kept)

        events = []

        def record(ticket, kind, old, new):
            events.append(
                TicketEvent(ticket=ticket, actor=actor, kind=kind, old_value=old, new_value=new, created_at=now)
            )

        still_open = [ticket for ticket in merged if ticket.is_open]
        if not kept.is_open and still_open:
            reason = f"{', '.join(f'#{t.pk}' for t in still_open)} merged in, still open"
            reopening = kept.set_status(Ticket.Status.OPEN, at=now, actor=actor, reason=reason)
            if reopening:
                events.append(reopening)
        for ticket in merged:
            closing = ticket.set_status(Ticket.Status.CLOSED, at=now, actor=actor, reason=f"merged into #{kept.pk}")
            if closing:
                events.append(closing)
            record(ticket, TicketEvent.Kind.MERGED, str(ticket.pk), str(kept.pk))
            record(kept, TicketEvent.Kind.MERGED, str(ticket.pk), str(kept.pk))
            ticket.merged_into = kept
            ticket.message_count = 0
            ticket.last_activity_at = max(ticket.last_activity_at, now)

        Ticket.objects.bulk_update(
            merged, ["status", "resolved_at", "merged_into", "message_count", "last_activity_at"]
        )
        messages = Message.objects.filter(ticket=models.OuterRef("pk")).order_by()
        Ticket.objects.filter(pk=kept.pk).update(
            status=kept.status,
            resolved_at=kept.resolved_at,
            message_count=Coalesce(
                models.Subquery(messages.values("ticket").annotate(n=models.Count("id")).values("n")), 0
            ),
            last_activity_at=Greatest(
                "last_activity_at",
                Coalesce(
                    models.Subquery(messages.order_by("-created_at").values("created_at")[:1]), "last_activity_at"
                ),
            ),
        )
        TicketEvent.objects.bulk_create(events)
    kept.refresh_from_db(fields=["message_count", "last_activity_at"])
    return MergeOutcome(kept=kept, merged=merged)


def _move_followers(merged_ids, kept):
    """Who followed a merged ticket follows the kept one (once, and not its own requester)."""
    followers = TicketFollower.objects.filter(ticket_id__in=merged_ids)
    TicketFollower.objects.bulk_create(
        [
            TicketFollower(ticket=kept, identity_id=identity_id, added_at=added_at)
            for identity_id, added_at in followers.exclude(identity__contact_id=kept.requester_id)
            .order_by("identity_id")
            .values_list("identity_id", "added_at")
        ],
        ignore_conflicts=True,
    )
    followers.delete()


def _lock_channels_of(ticket_ids):
    """Lock the channels of these tickets' conversations, as ingestion does while it files messages.

    Ingestion reads thread → ticket and writes messages under that lock, so no inbound message can
    be filed on a ticket that this merge is closing. Taken before the tickets' rows, in the same
    order as ingestion (channel, then ticket), so the two cannot deadlock.
    """
    Channel = TicketThread._meta.get_field("channel").related_model
    threads = TicketThread.objects.filter(ticket_id__in=ticket_ids).values("channel_id")
    list(
        Channel._default_manager.select_for_update(no_key=True)
        .filter(pk__in=threads)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
