"""Changing many tickets at once (the queue's bulk actions), in a fixed number of queries.

The same rules and audit events as ``services.change_ticket``, applied to every selected ticket:
the rows are locked and read in one query, changed in memory, then written with one UPDATE and
one INSERT of events, however many tickets were selected.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from .models import Ticket, TicketEvent
from .services import UNCHANGED, TicketChangeError, apply_changes, validate_changes

#: The most tickets one bulk action may change (a page of the queue is 50).
MAX_BULK = 500

_CHANGED_FIELDS = ["status", "resolved_at", "priority", "assignee", "queue", "last_activity_at"]


@dataclass(frozen=True)
class BulkOutcome:
    #: Tickets that really changed (the others already had the values asked for).
    changed: int
    #: Selected ids that no longer exist.
    missing: int
    events: list[TicketEvent]


def bulk_change_tickets(*, ticket_ids, actor, status=None, priority=None, assignee=UNCHANGED, queue=UNCHANGED):
    """Apply the same changes to every ticket in ``ticket_ids``, with one ``TicketEvent`` per real change.

    Arguments mean what they mean for ``change_ticket``. Raises ``TicketChangeError`` for an empty
    or oversized selection, an unknown status or priority, or a non-agent assignee, before
    anything is written.
    """
    ids = sorted(set(ticket_ids))
    if not ids:
        raise TicketChangeError("Select at least one ticket.")
    if len(ids) > MAX_BULK:
        raise TicketChangeError(f"At most {MAX_BULK} tickets can be changed at once; {len(ids)} were selected.")
    if status is None and priority is None and assignee is UNCHANGED and queue is UNCHANGED:
        raise TicketChangeError("Choose what to change.")
    priority = validate_changes(status=status, priority=priority, assignee=assignee)
    now = timezone.now()
    with transaction.atomic():
        # Locked in id order, as every bulk writer does, so two bulk actions cannot deadlock.
        tickets = list(
            Ticket.objects.select_for_update(of=("self",))
            .select_related("assignee", "queue")
            .filter(pk__in=ids)
            .order_by("pk")
        )
        events, changed = [], []
        for ticket in tickets:
            ticket_events, _ = apply_changes(
                ticket, actor=actor, at=now, status=status, priority=priority, assignee=assignee, queue=queue
            )
            if ticket_events:
                events += ticket_events
                changed.append(ticket)
        if changed:
            Ticket.objects.bulk_update(changed, _CHANGED_FIELDS)
            TicketEvent.objects.bulk_create(events)
    return BulkOutcome(changed=len(changed), missing=len(ids) - len(tickets), events=events)
