"""ITIL depth on a ticket: its record type, category and affected service, impact x urgency → priority (the
matrix admins edit) and an agent's override of it, problems linked to the incidents they explain, and a change's
planned window and approval by its named approver.

Every change to a ticket is a ``TicketEvent`` in its timeline; every change to the lists and the matrix (the
admins' configuration) is in the audit log (``tickets.audit``).

**Priority overrides.** Setting the impact or the urgency recomputes the priority from the matrix. An agent may
choose another priority, only with a reason (the timeline shows it); the ticket is then marked
``priority_overridden`` and keeps that priority until its impact or urgency changes again, which recomputes it
from the matrix and clears the mark. Editing the matrix changes no existing ticket.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from .audit import record_change
from .models import Category, PriorityMatrix, Service, Ticket, TicketEvent
from .roles import is_agent

Level = Ticket.Level
Priority = Ticket.Priority

#: The ITIL 3x3, also what migration 0020 stores: a cell missing from the table falls back to it.
DEFAULT_MATRIX: dict[tuple[int, int], int] = {
    (Level.HIGH, Level.HIGH): Priority.URGENT,
    (Level.HIGH, Level.MEDIUM): Priority.HIGH,
    (Level.MEDIUM, Level.HIGH): Priority.HIGH,
    (Level.HIGH, Level.LOW): Priority.NORMAL,
    (Level.MEDIUM, Level.MEDIUM): Priority.NORMAL,
    (Level.LOW, Level.HIGH): Priority.NORMAL,
    (Level.MEDIUM, Level.LOW): Priority.LOW,
    (Level.LOW, Level.MEDIUM): Priority.LOW,
    (Level.LOW, Level.LOW): Priority.LOW,
}
#: Why the priority changed when the matrix set it.
FROM_MATRIX = "impact x urgency"
#: The longest reason an event keeps.
REASON_LENGTH = 200


class ItilError(ValueError):
    """A change that cannot be made (an unknown type, a blank override reason, a window ending before it starts…)."""


def _label(user: User | None) -> str:
    return (user.get_full_name() or user.get_username()) if user else ""


def _ticket_label(ticket: Ticket | None) -> str:
    return f"#{ticket.pk} {ticket.subject}"[:200] if ticket else ""


def _event(ticket: Ticket, kind: str, old: str, new: str, *, actor, at: datetime, reason: str = "") -> TicketEvent:
    return TicketEvent(
        ticket_id=ticket.pk,
        actor=actor,
        kind=kind,
        old_value=str(old)[:200],
        new_value=str(new)[:200],
        reason=reason[:REASON_LENGTH],
        created_at=at,
    )


# The matrix ---------------------------------------------------------------------------------------------


def matrix_grid() -> dict[tuple[int, int], int]:
    """Every cell of the matrix, (impact, urgency) → priority, in one query."""
    grid = dict(DEFAULT_MATRIX)
    grid.update({(i, u): p for i, u, p in PriorityMatrix.objects.values_list("impact", "urgency", "priority")})
    return grid


def matrix_priority(impact: int, urgency: int) -> int:
    """The matrix's priority for ``impact`` x ``urgency``."""
    try:
        key = (Level(int(impact)), Level(int(urgency)))
    except (TypeError, ValueError) as exc:
        raise ItilError(f"Unknown impact or urgency {impact!r} x {urgency!r}.") from exc
    found = PriorityMatrix.objects.filter(impact=key[0], urgency=key[1]).values_list("priority", flat=True).first()
    return found if found is not None else DEFAULT_MATRIX[key]


def save_matrix(cells: dict[tuple[int, int], int], *, actor: User | None) -> bool:
    """Set the matrix's cells (every one given must be a known impact, urgency and priority); audited.

    Returns whether anything changed. Tickets keep their priority until their impact or urgency changes.
    """
    for (impact, urgency), priority in cells.items():
        if impact not in Level.values or urgency not in Level.values or priority not in Priority.values:
            raise ItilError(f"Not a matrix cell: {impact!r} x {urgency!r} → {priority!r}.")
    with transaction.atomic():
        before = matrix_grid()
        after = {**before, **{(i, u): p for (i, u), p in cells.items()}}
        if after == before:
            return False
        for (impact, urgency), priority in after.items():
            PriorityMatrix.objects.update_or_create(impact=impact, urgency=urgency, defaults={"priority": priority})
        changed = sorted(key for key in after if before[key] != after[key])

        def readable(grid):
            return {f"{Level(i).label} x {Level(u).label}": Priority(grid[(i, u)]).label for i, u in changed}

        record_change(
            actor=actor,
            action="priority_matrix.update",
            target=PriorityMatrix.objects.get(impact=Level.MEDIUM, urgency=Level.MEDIUM),
            before=readable(before),
            after=readable(after),
        )
    return True


# Categories and services -------------------------------------------------------------------------------


def save_list_entry(entry: Category | Service, *, actor: User | None, name: str, active: bool = True) -> None:
    """Create or rename (and activate or deactivate) a category or service; audited.

    Tickets keep a deactivated entry; agents can no longer choose it for another ticket.
    """
    name = " ".join((name or "").split())
    if not name:
        raise ItilError("Give it a name.")
    model = type(entry)
    if model.objects.filter(name__iexact=name).exclude(pk=entry.pk).exists():
        raise ItilError(f"There is already a {model._meta.verbose_name} named “{name}”.")
    before = {"name": entry.name, "active": entry.active} if entry.pk else None
    after = {"name": name, "active": active}
    if before == after:
        return
    entry.name, entry.active = name, active
    try:
        with transaction.atomic():
            entry.save()
            action = f"{model._meta.model_name}.{'update' if before else 'create'}"
            record_change(actor=actor, action=action, target=entry, before=before, after=after)
    except IntegrityError as exc:  # a concurrent save took the name
        raise ItilError(f"There is already a {model._meta.verbose_name} named “{name}”.") from exc


# A ticket's classification and priority ----------------------------------------------------------------


@dataclass(frozen=True)
class Unset:
    """ "Leave as it is", for the fields where None means "clear" (category, service)."""


UNSET = Unset()


def _locked(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update(of=("self",)).select_related("category", "service").get(pk=ticket.pk)


def classify(
    ticket: Ticket,
    *,
    actor: User | None,
    kind: str | None = None,
    category: Category | Unset | None = UNSET,
    service: Service | Unset | None = UNSET,
    impact: int | None = None,
    urgency: int | None = None,
    reason: str = "",
) -> list[TicketEvent]:
    """Set a ticket's record type, category, affected service, impact and urgency: one event per real change.

    A new impact or urgency recomputes the priority from the matrix (clearing an agent's override). Returns the
    events written; ``ticket`` is updated in place.
    """
    if kind is not None and kind not in Ticket.Kind.values:
        raise ItilError(f"Unknown type {kind!r}.")
    for level in (impact, urgency):
        if level is not None and level not in Level.values:
            raise ItilError(f"Unknown level {level!r}.")
    for entry in (category, service):
        if isinstance(entry, Category | Service) and not entry.active:
            raise ItilError(f"“{entry.name}” is no longer in use.")
    now = timezone.now()
    with transaction.atomic():
        current = _locked(ticket)
        events: list[TicketEvent] = []
        fields: set[str] = set()

        def record(kind_, old, new):
            events.append(_event(current, kind_, old, new, actor=actor, at=now, reason=reason))

        if kind is not None and kind != current.kind:
            if current.kind == Ticket.Kind.PROBLEM and current.incidents.exists():
                raise ItilError("Unlink this problem's incidents before changing its type.")
            record(TicketEvent.Kind.KIND, current.kind, kind)
            current.kind = kind
            fields.add("kind")
        for name, value, event_kind in (
            ("category", category, TicketEvent.Kind.CATEGORY),
            ("service", service, TicketEvent.Kind.SERVICE),
        ):
            if isinstance(value, Unset):
                continue
            old = getattr(current, name)
            if (old.pk if old else None) != (value.pk if value else None):
                record(event_kind, old.name if old else "", value.name if value else "")
                setattr(current, name, value)
                fields.add(name)
        for name, value, event_kind in (
            ("impact", impact, TicketEvent.Kind.IMPACT),
            ("urgency", urgency, TicketEvent.Kind.URGENCY),
        ):
            if value is not None and value != getattr(current, name):
                record(event_kind, Level(getattr(current, name)).label, Level(value).label)
                setattr(current, name, value)
                fields.add(name)
        if {"impact", "urgency"} & fields:
            priority = matrix_priority(current.impact, current.urgency)
            if priority != current.priority:
                events.append(
                    _event(
                        current,
                        TicketEvent.Kind.PRIORITY,
                        TicketEvent.priority_value(current.priority),
                        TicketEvent.priority_value(priority),
                        actor=actor,
                        at=now,
                        reason=FROM_MATRIX,
                    )
                )
                current.priority = priority
                fields.add("priority")
            if current.priority_overridden:
                current.priority_overridden = False
                fields.add("priority_overridden")
        if not events:
            return []
        current.last_activity_at = max(current.last_activity_at, now)
        current.save(update_fields=sorted(fields | {"last_activity_at"}))
        TicketEvent.objects.bulk_create(events)
    for name in (*fields, "last_activity_at"):
        setattr(ticket, name, getattr(current, name))
    return events


def override_priority(ticket: Ticket, *, actor: User | None, priority: int, reason: str) -> TicketEvent | None:
    """An agent's priority instead of the matrix's: only with a reason, which the timeline shows.

    The ticket keeps it (``priority_overridden``) until its impact or urgency changes. None if unchanged.
    """
    try:
        priority = Priority(int(priority))
    except (TypeError, ValueError) as exc:
        raise ItilError(f"Unknown priority {priority!r}.") from exc
    reason = " ".join((reason or "").split())
    if not reason:
        raise ItilError("Say why you override the priority that impact x urgency gives.")
    now = timezone.now()
    with transaction.atomic():
        current = _locked(ticket)
        if priority == current.priority:
            return None
        event = _event(
            current,
            TicketEvent.Kind.PRIORITY,
            TicketEvent.priority_value(current.priority),
            TicketEvent.priority_value(priority),
            actor=actor,
            at=now,
            reason=reason,
        )
        current.priority = priority
        # Choosing what the matrix gives anyway is no override.
        current.priority_overridden = priority != matrix_priority(current.impact, current.urgency)
        current.last_activity_at = max(current.last_activity_at, now)
        current.save(update_fields=["priority", "priority_overridden", "last_activity_at"])
        event.save()
    ticket.priority, ticket.priority_overridden = priority, current.priority_overridden
    ticket.last_activity_at = current.last_activity_at
    return event


# Problems and the incidents they explain ---------------------------------------------------------------


def link_problem(incident: Ticket, *, problem: Ticket | None, actor: User | None) -> list[TicketEvent]:
    """Link ``incident`` to the ``problem`` that explains it (None: unlink); events on both tickets."""
    if problem is not None:
        if problem.kind != Ticket.Kind.PROBLEM:
            raise ItilError(f"#{problem.pk} is not a problem.")
        if problem.pk == incident.pk:
            raise ItilError("A ticket cannot explain itself.")
        if incident.kind == Ticket.Kind.PROBLEM:
            raise ItilError("A problem cannot be linked to another problem.")
    now = timezone.now()
    with transaction.atomic():
        current = Ticket.objects.select_for_update(of=("self",)).get(pk=incident.pk)
        if current.problem_id == (problem.pk if problem else None):
            return []
        old_problem = Ticket.objects.only("id", "subject").get(pk=current.problem_id) if current.problem_id else None
        events = [
            _event(
                current,
                TicketEvent.Kind.PROBLEM,
                _ticket_label(old_problem),
                _ticket_label(problem),
                actor=actor,
                at=now,
            )
        ]
        if old_problem is not None:
            events.append(
                _event(old_problem, TicketEvent.Kind.INCIDENT, _ticket_label(current), "", actor=actor, at=now)
            )
        if problem is not None:
            events.append(_event(problem, TicketEvent.Kind.INCIDENT, "", _ticket_label(current), actor=actor, at=now))
        current.problem = problem
        touched = [t for t in (current, old_problem, problem) if t is not None]
        Ticket.objects.filter(pk__in=[t.pk for t in touched], last_activity_at__lt=now).update(last_activity_at=now)
        Ticket.objects.filter(pk=current.pk).update(problem=problem)
        TicketEvent.objects.bulk_create(events)
    incident.problem = problem
    return events


# Changes: the planned window and the approval ------------------------------------------------------------


def _window_label(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    return f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC"


def plan_change(
    ticket: Ticket, *, actor: User | None, start: datetime, end: datetime, approver: User
) -> list[TicketEvent]:
    """Set a change's planned window (``end`` after ``start``) and its approver (an agent or admin).

    A new window or approver asks for approval again (any earlier decision is cleared).
    """
    if ticket.kind != Ticket.Kind.CHANGE:
        raise ItilError("Only a change has a planned window and an approver.")
    if start is None or end is None:
        raise ItilError("Give the window's start and end.")
    if end <= start:
        raise ItilError("The window must end after it starts.")
    if approver is None or not is_agent(approver) or not approver.is_active:
        raise ItilError("The approver must be an active agent or admin.")
    now = timezone.now()
    with transaction.atomic():
        current = Ticket.objects.select_for_update(of=("self",)).select_related("change_approver").get(pk=ticket.pk)
        old = (current.change_start, current.change_end, current.change_approver_id)
        if old == (start, end, approver.pk):
            return []
        event = _event(
            current,
            TicketEvent.Kind.CHANGE_PLAN,
            _window_label(current.change_start, current.change_end)
            + (f", approver {_label(current.change_approver)}" if current.change_approver else ""),
            f"{_window_label(start, end)}, approver {_label(approver)}",
            actor=actor,
            at=now,
        )
        current.change_start, current.change_end, current.change_approver = start, end, approver
        current.change_approval, current.change_decided_at = Ticket.Approval.PENDING, None
        current.last_activity_at = max(current.last_activity_at, now)
        fields = ["change_start", "change_end", "change_approver", "change_approval", "change_decided_at"]
        current.save(update_fields=[*fields, "last_activity_at"])
        event.save()
    for name in (*fields, "last_activity_at"):
        setattr(ticket, name, getattr(current, name))
    return [event]


def decide_change(ticket: Ticket, *, actor: User, approve: bool, reason: str = "") -> TicketEvent:
    """The named approver approves or rejects a planned change; nobody else may."""
    now = timezone.now()
    with transaction.atomic():
        current = Ticket.objects.select_for_update(of=("self",)).get(pk=ticket.pk)
        if current.kind != Ticket.Kind.CHANGE or current.change_approver_id is None:
            raise ItilError("This ticket is not a change awaiting approval.")
        if actor is None or actor.pk != current.change_approver_id:
            raise ItilError("Only the change's named approver can approve or reject it.")
        decision = Ticket.Approval.APPROVED if approve else Ticket.Approval.REJECTED
        if current.change_approval == decision:
            raise ItilError(f"This change is already {decision.label.lower()}.")
        event = _event(
            current, TicketEvent.Kind.APPROVAL, current.change_approval, decision, actor=actor, at=now, reason=reason
        )
        current.change_approval, current.change_decided_at = decision, now
        current.last_activity_at = max(current.last_activity_at, now)
        current.save(update_fields=["change_approval", "change_decided_at", "last_activity_at"])
        event.save()
    ticket.change_approval, ticket.change_decided_at = decision, now
    return event
