"""Updating tickets' fields (status, priority, assignee, queue), one ticket or many, each real change audited.

Both ways share one set of rules (``validate_update``, ``apply_update``). Many tickets (the queue's bulk
actions) take a fixed number of queries: the rows are locked and read in one query, changed in memory,
then written with one UPDATE and one INSERT of events, however many tickets were selected.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from . import sla
from .itil import REASON_LENGTH, matrix_grid
from .models import Queue, Ticket, TicketEvent
from .roles import is_agent

#: The most tickets one update may change at once (a page of the queue is 50).
MAX_BULK = 500
#: Every field an update may write.
_UPDATED_FIELDS = [
    "status",
    "resolved_at",
    "priority",
    "priority_overridden",
    "assignee",
    "queue",
    "last_activity_at",
    *sla.CLOCK_FIELDS,
]


class TicketUpdateError(ValueError):
    """A ticket update that cannot be applied (an unknown status, a non-agent assignee)."""


class Unchanged(enum.Enum):
    """ "Leave as it is", for the fields where None means "clear" (assignee, queue)."""

    UNCHANGED = "unchanged"


UNCHANGED = Unchanged.UNCHANGED


def _user_label(user: User | None) -> str:
    return (user.get_full_name() or user.get_username()) if user else ""


def validate_update(
    *, status: str | None = None, priority: int | str | None = None, assignee: User | Unchanged | None = UNCHANGED
) -> Ticket.Priority | None:
    """Refuse what no ticket may be given (an unknown status or priority, a non-agent assignee).

    Returns the priority as a ``Ticket.Priority`` (or None).
    """
    if status is not None and status not in Ticket.Status.values:
        raise TicketUpdateError(f"Unknown status {status!r}.")
    valid_priority = None
    if priority is not None:
        try:
            valid_priority = Ticket.Priority(int(priority))
        except (TypeError, ValueError) as exc:
            raise TicketUpdateError(f"Unknown priority {priority!r}.") from exc
    if assignee is not UNCHANGED and assignee is not None and not is_agent(assignee):
        raise TicketUpdateError(f"{_user_label(assignee)} is not an agent and cannot be assigned tickets.")
    return valid_priority


def apply_update(
    current: Ticket,
    *,
    actor: User | None,
    at: datetime,
    status: str | None = None,
    priority: Ticket.Priority | None = None,
    assignee: User | Unchanged | None = UNCHANGED,
    queue: Queue | Unchanged | None = UNCHANGED,
    reason: str = "",
    policies: sla.Policies | None = None,
    matrix: dict[tuple[int, int], int] | None = None,
) -> tuple[list[TicketEvent], set[str]]:
    """Change a locked, freshly read ticket in memory; returns (unsaved events, changed fields).

    ``current`` must have ``assignee``, ``queue`` and ``requester`` loaded (their names go into the events; a
    requester's VIP mark into the SLA policy's choice). Arguments are already validated (``validate_update``).
    ``reason`` goes on every event (e.g. the macro). The SLA clock follows (``tickets.sla.after_update``):
    ``policies`` is read once for many tickets.
    """
    old_status = current.status
    events: list[TicketEvent] = []
    fields: set[str] = set()

    def record(kind: str, old: str, new: str) -> None:
        events.append(
            TicketEvent(
                ticket=current, actor=actor, kind=kind, old_value=old, new_value=new, reason=reason, created_at=at
            )
        )

    status_changed = current.set_status(status, at=at, actor=actor, reason=reason) if status is not None else None
    if status_changed:
        events.append(status_changed)
        fields |= {"status", "resolved_at"}
    if priority is not None and priority != current.priority:
        # Stored by name ("high"): the console shows it as it names priorities ("P2 · High").
        old = TicketEvent.priority_value(current.priority)
        current.priority = priority
        # Not the matrix's priority (``matrix``, given with ``priority``): kept until the impact or urgency
        # changes (``tickets.itil``).
        current.priority_overridden = matrix is None or priority != matrix.get((current.impact, current.urgency))
        record(TicketEvent.Kind.PRIORITY, old, TicketEvent.priority_value(priority))
        fields |= {"priority", "priority_overridden"}
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
        sla_events, sla_fields = sla.after_update(
            current, old_status=old_status, fields=fields, at=at, policies=policies or sla.Policies()
        )
        events += sla_events
        fields |= sla_fields
    return events, fields


def update_ticket(
    *,
    ticket: Ticket,
    actor: User | None,
    status: str | None = None,
    priority: int | str | None = None,
    assignee: User | Unchanged | None = UNCHANGED,
    queue: Queue | Unchanged | None = UNCHANGED,
    reason: str = "",
) -> list[TicketEvent]:
    """Apply an agent's changes to a ticket and record one ``TicketEvent`` per field that really changed.

    ``status`` and ``priority`` are left alone when None; ``assignee`` and ``queue`` when ``UNCHANGED``
    (None clears them). Status moves through ``Ticket.set_status`` (resolving stamps ``resolved_at``,
    reopening clears it). ``reason`` goes on the events when the change was not the agent's own choice
    (a macro's). The row is locked and re-read, so concurrent changes are judged against the stored
    values; ``ticket`` is updated in place. Returns the events written (none for a no-op).
    """
    valid_priority = validate_update(status=status, priority=priority, assignee=assignee)
    now = timezone.now()
    with transaction.atomic():
        current = (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("assignee", "queue", "requester")
            .get(pk=ticket.pk)
        )
        events, fields = apply_update(
            current,
            actor=actor,
            at=now,
            status=status,
            priority=valid_priority,
            assignee=assignee,
            queue=queue,
            reason=reason,
            matrix=matrix_grid() if valid_priority is not None else None,
        )
        if not events:
            return []
        current.save(update_fields=sorted(fields))
        TicketEvent.objects.bulk_create(events)
    for field in _UPDATED_FIELDS:
        setattr(ticket, field, getattr(current, field))
    return events


@dataclass(frozen=True)
class BulkOutcome:
    #: Tickets that really changed (the others already had the values asked for).
    changed: int
    #: Selected ids that no longer exist.
    missing: int
    events: list[TicketEvent]


def update_tickets(
    *,
    ticket_ids: Iterable[int],
    actor: User | None,
    status: str | None = None,
    priority: int | str | None = None,
    assignee: User | Unchanged | None = UNCHANGED,
    queue: Queue | Unchanged | None = UNCHANGED,
    why: str = "",
) -> BulkOutcome:
    """Apply the same changes to every ticket in ``ticket_ids``, with one ``TicketEvent`` per real change.

    Arguments mean what they mean for ``update_ticket``. A priority set by hand replaces the one impact and
    urgency give, so, as on one ticket (``tickets.itil.override_priority``), it needs ``why``, which every
    event shows. Raises ``TicketUpdateError`` for an empty or oversized selection, an unknown status or
    priority, a priority without a reason, or a non-agent assignee, before anything is written.
    """
    ids = sorted(set(ticket_ids))
    if not ids:
        raise TicketUpdateError("Select at least one ticket.")
    if len(ids) > MAX_BULK:
        raise TicketUpdateError(f"At most {MAX_BULK} tickets can be changed at once; {len(ids)} were selected.")
    if status is None and priority is None and assignee is UNCHANGED and queue is UNCHANGED:
        raise TicketUpdateError("Choose what to change.")
    valid_priority = validate_update(status=status, priority=priority, assignee=assignee)
    why = " ".join(why.split())
    if valid_priority is not None and not why:
        raise TicketUpdateError("Say why the priority changes: it replaces the one impact and urgency give.")
    now = timezone.now()
    with transaction.atomic():
        # Locked in id order, as every bulk writer does, so two bulk actions cannot deadlock.
        tickets = list(
            Ticket.objects.select_for_update(of=("self",))
            .select_related("assignee", "queue", "requester")
            .filter(pk__in=ids)
            .order_by("pk")
        )
        events, changed, policies = [], [], sla.Policies()
        matrix = matrix_grid() if valid_priority is not None else None
        reason = f"bulk update of {len(ids)} tickets" if len(ids) > 1 else "bulk update"
        reason = f"{reason}: {why}"[:REASON_LENGTH] if why else reason
        for ticket in tickets:
            ticket_events, _ = apply_update(
                ticket,
                actor=actor,
                at=now,
                status=status,
                priority=valid_priority,
                assignee=assignee,
                queue=queue,
                reason=reason,
                policies=policies,
                matrix=matrix,
            )
            if ticket_events:
                events += ticket_events
                changed.append(ticket)
        if changed:
            Ticket.objects.bulk_update(changed, _UPDATED_FIELDS)
            TicketEvent.objects.bulk_create(events)
    return BulkOutcome(changed=len(changed), missing=len(ids) - len(tickets), events=events)
