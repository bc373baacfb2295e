"""SLA policies and their clocks, kept in stored timestamps (no timer per ticket).

- **Choosing a policy**: active policies in order; the first whose conditions (priority, kind, category, queue,
  VIP requester; blank = any) all hold applies. The ticket keeps it (``Ticket.sla_policy``) and its due times
  (``first_response_due_at``, ``resolution_due_at``), computed in business time on the policy's calendar from
  the ticket's creation. Chosen when the ticket is created (``start_clocks``, from ``tickets.inbound``) and
  again when a field a policy looks at changes (``after_update``, from ``tickets.updates``).
- **Pausing**: while the ticket is Pending the clock stops (``sla_paused_at``). When it leaves Pending (an agent,
  or the requester answering on any channel) each unmet due time is moved so that the business time that was
  left at the pause is left again from now: pausing never shortens the remaining time.
- **Scanning** (``scan``, every 30 s from the Celery beat): reads only the tickets whose next check
  (``sla_next_check_at``: the earliest warning or breach still to record) has come, through a partial index,
  under row locks skipped by concurrent scans; stamps each warning and breach once, writes its timeline
  event, and runs the policy's escalations on a breach (email the assignee and the team lead, reassign,
  raise the priority).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property

import holidays
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mass_mail
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from .audit import record_change
from .business_hours import Schedule, business_between, due_after, due_before, parse_hours
from .models import Calendar, CalendarHoliday, SlaPolicy, Ticket, TicketEvent
from .querysets import BREACHING_SOON

logger = logging.getLogger(__name__)

#: Who SLA changes are credited to on the timeline.
SLA_ACTOR = "SLA"
#: At most this many tickets per scan run; the rest wait for the next run (every ``SLA_SCAN_SECONDS``).
SCAN_BATCH = 500
CLOCK_FIELDS = [
    "sla_policy",
    "sla_started_at",
    "first_response_due_at",
    "resolution_due_at",
    "sla_paused_at",
    "sla_next_check_at",
    "first_response_warned_at",
    "first_response_breached_at",
    "resolution_warned_at",
    "resolution_breached_at",
]


def schedule_for(calendar: Calendar, custom_dates: Iterable[date] | None = None) -> Schedule:
    """A calendar as a ``Schedule``: its public holidays (loaded a year at a time) and custom dates."""
    if custom_dates is None:
        custom_dates = [h.date for h in calendar.custom_holidays.all()]
    closed_days = set(custom_dates)
    public = None
    if calendar.holiday_country:
        public = holidays.country_holidays(calendar.holiday_country, subdiv=calendar.holiday_subdivision or None)

    def closed(day: date) -> bool:
        return day in closed_days or (public is not None and day in public)

    return Schedule(
        time_zone=calendar.time_zone,
        week=parse_hours(calendar.hours),
        closed=closed,
        always_open=calendar.always_open,
    )


@dataclass
class Policies:
    """Every SLA policy with its calendar's schedule, read once (two queries) when first needed."""

    _schedules: dict[int, Schedule] = field(default_factory=dict)

    @cached_property
    def all(self) -> list[SlaPolicy]:
        return list(SlaPolicy.objects.select_related("calendar").prefetch_related("calendar__custom_holidays"))

    @cached_property
    def by_id(self) -> dict[int, SlaPolicy]:
        return {p.pk: p for p in self.all}

    def schedule(self, policy: SlaPolicy) -> Schedule:
        if policy.calendar_id not in self._schedules:
            self._schedules[policy.calendar_id] = schedule_for(policy.calendar)
        return self._schedules[policy.calendar_id]

    def matching(self, ticket: Ticket, *, vip: bool) -> SlaPolicy | None:
        return next((p for p in self.all if p.active and matches(p, ticket, vip=vip)), None)


def matches(policy: SlaPolicy, ticket: Ticket, *, vip: bool) -> bool:
    """Whether every condition the policy sets holds for the ticket (blank conditions hold for all)."""
    return (
        (not policy.priorities or ticket.priority in policy.priorities)
        and (not policy.kind or ticket.kind == policy.kind)
        and (policy.category_id is None or ticket.category_id == policy.category_id)
        and (policy.queue_id is None or ticket.queue_id == policy.queue_id)
        and (not policy.vip_only or vip)
    )


def _local(at: datetime, schedule: Schedule) -> str:
    local = at.astimezone(schedule.zone)
    zone = local.tzname() or ""
    if not zone[:1].isalpha():
        zone = schedule.time_zone
    return f"{local:%a} {local.day} {local:%b} {local:%H:%M} {zone}"


def _warn_at(ticket: Ticket, policy: SlaPolicy, schedule: Schedule, due: datetime, minutes: int) -> datetime:
    """When the warning for a target due at ``due`` falls: the share of its business time left before it."""
    left = timedelta(minutes=minutes) * (100 - policy.warning_percent) / 100
    return due_before(schedule, due, left)


def next_check(ticket: Ticket, policies: Policies) -> datetime | None:
    """The earliest warning or breach of the ticket's clocks not yet recorded (None: nothing left to watch)."""
    policy = policies.by_id.get(ticket.sla_policy_id) if ticket.sla_policy_id else None
    if policy is None:
        return None
    schedule = policies.schedule(policy)
    moments = []
    for _target, due, met, warned, breached, minutes in _targets(ticket, policy):
        if met or due is None or breached:
            continue
        moments.append(due if warned else _warn_at(ticket, policy, schedule, due, minutes))
    return min(moments, default=None)


def _targets(ticket: Ticket, policy: SlaPolicy):
    yield (
        "first response",
        ticket.first_response_due_at,
        ticket.first_responded_at is not None,
        ticket.first_response_warned_at,
        ticket.first_response_breached_at,
        policy.first_response_minutes,
    )
    yield (
        "resolution",
        ticket.resolution_due_at,
        ticket.resolved_at is not None,
        ticket.resolution_warned_at,
        ticket.resolution_breached_at,
        policy.resolution_minutes,
    )


def apply_policy(ticket: Ticket, policies: Policies, *, vip: bool, at: datetime) -> TicketEvent | None:
    """Choose the ticket's policy and set its due times, in memory. Returns the unsaved timeline event when the
    choice changed (None otherwise). Due times run, in business time, from when the desk logged the ticket
    (``sla_started_at``; its creation for a ticket logged before that was kept)."""
    policy = policies.matching(ticket, vip=vip)
    if (policy.pk if policy else None) == ticket.sla_policy_id:
        return None
    old = policies.by_id.get(ticket.sla_policy_id) if ticket.sla_policy_id else None
    ticket.sla_policy = policy
    ticket.first_response_warned_at = ticket.resolution_warned_at = None
    ticket.first_response_breached_at = ticket.resolution_breached_at = None
    if policy is None:
        ticket.first_response_due_at = ticket.resolution_due_at = ticket.sla_next_check_at = None
        summary = ""
    else:
        schedule = policies.schedule(policy)
        start = ticket.sla_started_at or ticket.created_at
        ticket.first_response_due_at = due_after(schedule, start, timedelta(minutes=policy.first_response_minutes))
        ticket.resolution_due_at = due_after(schedule, start, timedelta(minutes=policy.resolution_minutes))
        if ticket.status == Ticket.Status.PENDING:  # chosen while Pending: the clock is stopped until it leaves
            ticket.sla_paused_at = max(ticket.sla_paused_at or at, start)
        ticket.sla_next_check_at = next_check(ticket, policies)
        due = ticket.first_response_due_at if ticket.first_responded_at is None else ticket.resolution_due_at
        which = "first response" if ticket.first_responded_at is None else "resolution"
        summary = f"{policy.name} — {which} by {_local(due, schedule)}"
    return TicketEvent(
        ticket_id=ticket.pk,
        kind=TicketEvent.Kind.SLA,
        old_value=old.name if old else "",
        new_value=summary[:200],
        actor_label=SLA_ACTOR,
        reason="first matching policy",
        created_at=at,
    )


def start_clocks(ticket_ids: list[int]) -> None:
    """New tickets (``tickets.inbound``): choose each one's policy and set its due times. Fixed query count."""
    if not ticket_ids:
        return
    policies = Policies()
    if not any(p.active for p in policies.all):
        return
    tickets = list(Ticket.objects.filter(pk__in=ticket_ids).select_related("requester").order_by("pk"))
    now = timezone.now()
    for ticket in tickets:
        ticket.sla_started_at = max(ticket.created_at, now)
    events = [e for t in tickets if (e := apply_policy(t, policies, vip=t.requester.vip, at=now))]
    # All of them, with a policy or not: a policy chosen later (a priority changed) runs from the same instant.
    Ticket.objects.bulk_update(tickets, CLOCK_FIELDS)
    TicketEvent.objects.bulk_create(events)


def pause(ticket: Ticket, at: datetime) -> None:
    """The ticket went Pending: stop its clock (in memory)."""
    if ticket.sla_policy_id and ticket.sla_paused_at is None:
        ticket.sla_paused_at = at


def resume(ticket: Ticket, at: datetime, policies: Policies) -> None:
    """The ticket left Pending: give each unmet, unbreached target back the business time it had at the pause."""
    paused_at, ticket.sla_paused_at = ticket.sla_paused_at, None
    policy = policies.by_id.get(ticket.sla_policy_id) if ticket.sla_policy_id else None
    if paused_at is None or policy is None or at <= paused_at:
        return
    schedule = policies.schedule(policy)
    for name, met in (
        ("first_response_due_at", ticket.first_responded_at is not None),
        ("resolution_due_at", False),
    ):
        due = getattr(ticket, name)
        if met or due is None or due <= paused_at:
            continue
        setattr(ticket, name, due_after(schedule, at, business_between(schedule, paused_at, due)))
    ticket.sla_next_check_at = next_check(ticket, policies)


def resume_many(ticket_ids: Iterable[int], at: datetime) -> None:
    """The requester answered tickets that were Pending (``tickets.inbound``): resume their clocks."""
    ticket_ids = list(ticket_ids)
    if not ticket_ids:
        return
    tickets = list(Ticket.objects.filter(pk__in=ticket_ids, sla_paused_at__isnull=False).order_by("pk"))
    if not tickets:
        return
    policies = Policies()
    for ticket in tickets:
        resume(ticket, at, policies)
    Ticket.objects.bulk_update(tickets, CLOCK_FIELDS)


#: The fields a policy looks at: a change to one of them chooses the policy again.
WATCHED_FIELDS = {"priority", "queue", "kind", "category"}


def after_update(
    ticket: Ticket, *, old_status: str, fields: set[str], at: datetime, policies: Policies
) -> tuple[list[TicketEvent], set[str]]:
    """After ``tickets.updates`` changed a ticket in memory: pause or resume its clock, choose its policy again
    if a watched field changed. Returns (unsaved events, changed fields)."""
    events: list[TicketEvent] = []
    Status = Ticket.Status
    if ticket.status == Status.PENDING and old_status != Status.PENDING:
        pause(ticket, at)
    elif old_status == Status.PENDING and ticket.status != Status.PENDING and ticket.sla_paused_at:
        resume(ticket, at, policies)
    if fields & WATCHED_FIELDS and policies.all:
        event = apply_policy(ticket, policies, vip=ticket.requester.vip, at=at)
        if event:
            events.append(event)
    return events, set(CLOCK_FIELDS)


@dataclass
class ScanResult:
    warnings: int = 0
    breaches: int = 0
    checked: int = 0
    emails: list = field(default_factory=list)


def scan(now: datetime | None = None, *, batch: int = SCAN_BATCH) -> ScanResult:
    """Record the warnings and breaches that have come due, each exactly once, and escalate the breaches.

    Reads only the tickets whose ``sla_next_check_at`` has come (the ``ticket_sla_next_check`` partial index),
    locked and skipped by a concurrent scan, at most ``batch`` a run. Emails go out after the commit."""
    now = now or timezone.now()
    result = ScanResult()
    with transaction.atomic():
        tickets = list(
            Ticket.objects.select_for_update(of=("self",), skip_locked=True)
            .filter(status__in=[Ticket.Status.NEW, Ticket.Status.OPEN], sla_next_check_at__lte=now)
            .select_related("assignee", "team__lead")
            .order_by("sla_next_check_at")[:batch]
        )
        if not tickets:
            return result
        policies = Policies()
        events: list[TicketEvent] = []
        for ticket in tickets:
            result.checked += 1
            events += _check_ticket(ticket, now, policies, result)
            ticket.sla_next_check_at = next_check(ticket, policies)
        Ticket.objects.bulk_update(tickets, [*CLOCK_FIELDS, "assignee", "team", "priority", "priority_overridden"])
        TicketEvent.objects.bulk_create(events)
    if result.emails:
        try:
            send_mass_mail(result.emails, fail_silently=False)
        except Exception:  # a mail server down must not undo the recorded breaches
            logger.exception("SLA escalation emails not sent")
    return result


def _check_ticket(ticket: Ticket, now: datetime, policies: Policies, result: ScanResult) -> list[TicketEvent]:
    policy = policies.by_id.get(ticket.sla_policy_id) if ticket.sla_policy_id else None
    if policy is None:
        return []
    schedule = policies.schedule(policy)
    events = []
    for target, due, met, warned, breached, minutes in _targets(ticket, policy):
        if met or due is None or breached:
            continue
        prefix = "first_response" if target == "first response" else "resolution"
        if now >= due:
            setattr(ticket, f"{prefix}_breached_at", now)
            result.breaches += 1
            events.append(_event(ticket, f"{target} breached", f"due {_local(due, schedule)}", now))
            events += _escalate(ticket, policy, target, now, result)
        elif not warned and now >= _warn_at(ticket, policy, schedule, due, minutes):
            setattr(ticket, f"{prefix}_warned_at", now)
            result.warnings += 1
            events.append(
                _event(
                    ticket, f"{target} due {_local(due, schedule)}", f"{policy.warning_percent} % of the time used", now
                )
            )
    return events


def _event(ticket: Ticket, new: str, reason: str, at: datetime, *, kind=TicketEvent.Kind.SLA, old="") -> TicketEvent:
    return TicketEvent(
        ticket_id=ticket.pk,
        kind=kind,
        old_value=old[:200],
        new_value=new[:200],
        actor_label=SLA_ACTOR,
        reason=reason[:200],
        created_at=at,
    )


def _name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user else ""


def _escalate(ticket: Ticket, policy: SlaPolicy, target: str, now: datetime, result: ScanResult) -> list[TicketEvent]:
    """What the policy says to do on a breach: reassign, raise the priority, then email the (new) assignee and
    team lead; each on the timeline."""
    events = []
    reason = f"{target} breached: {policy.name}"
    if policy.reassign_to_id and policy.reassign_to_id != ticket.assignee_id:
        old = _name(ticket.assignee)
        ticket.assignee = policy.reassign_to
        events.append(_event(ticket, _name(ticket.assignee), reason, now, kind=TicketEvent.Kind.ASSIGNEE, old=old))
    if policy.reassign_to_team_id and policy.reassign_to_team_id != ticket.team_id:
        ticket.team = policy.reassign_to_team
        events.append(_event(ticket, f"reassigned to team {policy.reassign_to_team}", reason, now))
    if policy.raise_priority and ticket.priority < Ticket.Priority.URGENT:
        old = TicketEvent.priority_value(ticket.priority)
        ticket.priority += 1
        # No longer the matrix's priority: kept until the impact or urgency changes (tickets.itil).
        ticket.priority_overridden = True
        new = TicketEvent.priority_value(ticket.priority)
        events.append(_event(ticket, new, reason, now, kind=TicketEvent.Kind.PRIORITY, old=old))
    if policy.notify:
        to = sorted({u.email for u in (ticket.assignee, ticket.team.lead if ticket.team else None) if u and u.email})
        if to:
            result.emails.append(
                (
                    f"SLA breached: #{ticket.pk} {ticket.subject}"[:200],
                    f"The {target} target of ticket #{ticket.pk} ({policy.name}) was breached.",
                    settings.DEFAULT_FROM_EMAIL,
                    to,
                )
            )
            events.append(_event(ticket, f"notified {', '.join(to)}", reason, now))
    return events


def due_state(ticket: Ticket, now: datetime) -> tuple[str, str, datetime | None]:
    """The queue's Due cell: (state, label, due) with state "none", "met", "paused", "ok", "soon" or "breached".

    From stored fields only: the target that counts is the first response until it is met, then resolution."""
    if ticket.first_responded_at is None and ticket.first_response_due_at is not None:
        due, breached = ticket.first_response_due_at, ticket.first_response_breached_at
    else:
        due, breached = ticket.resolution_due_at, ticket.resolution_breached_at
    if due is None:
        return "none", "—", None
    if ticket.status in Ticket.CLOSED_STATUSES:
        if breached or (ticket.resolved_at or due) > due:
            return "breached", "missed", due
        return "met", "met", due
    if ticket.sla_paused_at is not None:
        return "paused", "paused", due
    if breached or now >= due:
        return "breached", f"breached {_span(now - due)} ago", due
    left = due - now
    warned = ticket.first_response_warned_at if due == ticket.first_response_due_at else ticket.resolution_warned_at
    state = "soon" if left <= BREACHING_SOON or warned else "ok"
    return state, f"due in {_span(left)}", due


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return "under a minute"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size}\u00a0{unit}"
    return ""  # pragma: no cover


class SlaConfigError(ValueError):
    """A calendar or policy that cannot be saved (invalid, or a name taken)."""


def _values(obj, extra=None) -> dict:
    values = model_to_dict(obj)
    values.pop("id", None)
    return {**values, **(extra or {})}


def save_calendar(calendar: Calendar, *, actor, custom_holidays: list[tuple[date, str]]) -> Calendar:
    """Create or change a calendar (fields already set on it) and replace its custom holidays; audited."""
    creating = calendar.pk is None
    before = None
    if not creating:
        stored = Calendar.objects.get(pk=calendar.pk)
        before = _values(stored, {"custom_holidays": [(str(h.date), h.name) for h in stored.custom_holidays.all()]})
    try:
        with transaction.atomic():
            calendar.full_clean()
            calendar.save()
            calendar.custom_holidays.all().delete()
            CalendarHoliday.objects.bulk_create(
                [CalendarHoliday(calendar=calendar, date=day, name=name) for day, name in custom_holidays]
            )
            after = _values(calendar, {"custom_holidays": [(str(day), name) for day, name in custom_holidays]})
            if after != before:
                action = "sla_calendar.create" if creating else "sla_calendar.update"
                record_change(actor=actor, action=action, target=calendar, before=before, after=after)
    except ValidationError as exc:
        raise SlaConfigError(" ".join(exc.messages)) from None
    except IntegrityError:
        raise SlaConfigError("That name or date is already taken.") from None
    return calendar


def save_policy(policy: SlaPolicy, *, actor) -> SlaPolicy:
    """Create or change a policy (fields already set on it); audited. Tickets keep the policy they have until a
    field a policy looks at changes (their due times are promises already shown)."""
    creating = policy.pk is None
    before = None if creating else _values(SlaPolicy.objects.get(pk=policy.pk))
    try:
        with transaction.atomic():
            policy.full_clean()
            policy.save()
            after = _values(policy)
            if after != before:
                action = "sla_policy.create" if creating else "sla_policy.update"
                record_change(actor=actor, action=action, target=policy, before=before, after=after)
    except ValidationError as exc:
        raise SlaConfigError(" ".join(exc.messages)) from None
    except IntegrityError:
        raise SlaConfigError(f"There is already a policy called {policy.name}.") from None
    return policy
