"""SLA policies and clocks (tickets.sla): the choice of policy, pauses, the scan's warnings and breaches."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels_ingest.tasks import run_sla_scan
from tests.factories import message
from tests.helpers import receive
from tickets import sla
from tickets.models import Calendar, CalendarHoliday, SlaPolicy, Team, Ticket, TicketEvent
from tickets.updates import update_ticket, update_tickets

OFFICE = {str(day): [["08:00", "18:00"]] for day in range(5)}
# Monday 2 March 2026, 09:00 CET.
MONDAY_9 = datetime(2026, 3, 2, 8, tzinfo=UTC)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def office(db):
    return Calendar.objects.create(name="Office Berlin", time_zone="Europe/Berlin", hours=OFFICE, holiday_country="DE")


@pytest.fixture
def always(db):
    return Calendar.objects.create(name="24x7", always_open=True)


@pytest.fixture
def policies(office, always):
    vip = SlaPolicy.objects.create(
        name="VIP incidents",
        position=1,
        kind=Ticket.Kind.INCIDENT,
        vip_only=True,
        first_response_minutes=30,
        resolution_minutes=240,
        calendar=always,
    )
    urgent = SlaPolicy.objects.create(
        name="Urgent incidents",
        position=2,
        priorities=[Ticket.Priority.HIGH, Ticket.Priority.URGENT],
        first_response_minutes=60,
        resolution_minutes=480,
        calendar=office,
        raise_priority=False,
    )
    default = SlaPolicy.objects.create(
        name="Default", position=3, first_response_minutes=480, resolution_minutes=3 * 600, calendar=office
    )
    return vip, urgent, default


def opened(channel, *, at=MONDAY_9, external_id="m0", user="u1"):
    with time_machine.travel(at, tick=False):
        receive(channel, [replace(message(external_id, user=user), sent_at=at)])
    return Ticket.objects.get(messages__external_id=external_id)


@pytest.mark.django_db
def test_new_ticket_gets_the_first_matching_policy_and_its_due_times(locmem_channel, policies):
    ticket = opened(locmem_channel)
    assert ticket.sla_policy.name == "Default"
    # 8 business hours from Monday 09:00 CET: Monday 17:00 CET.
    assert ticket.first_response_due_at == utc(2026, 3, 2, 16)
    # 30 business hours: Monday 9 h, Tuesday 10, Wednesday 10, Thursday 1 → Thursday 09:00 CET.
    assert ticket.resolution_due_at == utc(2026, 3, 5, 8)
    event = ticket.events.get(kind=TicketEvent.Kind.SLA)
    assert event.new_value == "Default — first response by Mon 2 Mar 17:00 CET"
    assert event.actor_label == "SLA"


@pytest.mark.django_db
def test_a_vip_requester_gets_the_vip_policy(locmem_channel, policies):
    ticket = opened(locmem_channel)
    ticket.requester.vip = True
    ticket.requester.save()
    second = opened(locmem_channel, external_id="m1", at=MONDAY_9 + timedelta(minutes=1))
    assert second.requester_id == ticket.requester_id
    assert second.sla_policy.name == "VIP incidents"
    assert second.first_response_due_at == MONDAY_9 + timedelta(minutes=31)


@pytest.mark.django_db
def test_raising_the_priority_chooses_the_policy_again(locmem_channel, policies, agent):
    ticket = opened(locmem_channel)
    with time_machine.travel(MONDAY_9 + timedelta(minutes=5), tick=False):
        update_ticket(ticket=ticket, actor=agent, priority=Ticket.Priority.URGENT)
    ticket.refresh_from_db()
    assert ticket.sla_policy.name == "Urgent incidents"
    assert ticket.first_response_due_at == MONDAY_9 + timedelta(hours=1)
    assert ticket.events.filter(kind=TicketEvent.Kind.SLA, old_value="Default").exists()


@pytest.mark.django_db
def test_without_policies_nothing_is_due(locmem_channel):
    ticket = opened(locmem_channel)
    assert ticket.sla_policy is None
    assert ticket.first_response_due_at is None


@pytest.mark.django_db
def test_pending_pauses_the_clock_and_the_requesters_answer_resumes_it(locmem_channel, policies, agent):
    ticket = opened(locmem_channel)  # first response due Monday 17:00 CET
    with time_machine.travel(MONDAY_9 + timedelta(hours=1), tick=False):  # 7 business hours left
        update_ticket(ticket=ticket, actor=agent, status=Ticket.Status.PENDING)
    ticket.refresh_from_db()
    assert ticket.sla_paused_at == MONDAY_9 + timedelta(hours=1)
    # The requester answers on Wednesday 10:00 CET (any channel: here, the same one).
    answer = utc(2026, 3, 4, 9)
    with time_machine.travel(answer, tick=False):
        receive(locmem_channel, [replace(message("m0.1", thread="m0"), sent_at=answer)])
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN
    assert ticket.sla_paused_at is None
    # 7 business hours from Wednesday 10:00 CET: Wednesday 17:00 CET.
    assert ticket.first_response_due_at == utc(2026, 3, 4, 16)


@pytest.mark.django_db
def test_agent_reopening_also_resumes(locmem_channel, policies, agent):
    ticket = opened(locmem_channel)
    with time_machine.travel(MONDAY_9, tick=False):
        update_ticket(ticket=ticket, actor=agent, status=Ticket.Status.PENDING)
    with time_machine.travel(MONDAY_9 + timedelta(hours=2), tick=False):
        update_tickets(ticket_ids=[ticket.pk], actor=agent, status=Ticket.Status.OPEN)
    ticket.refresh_from_db()
    # 8 business hours from Monday 11:00 CET: Tuesday 09:00 CET, two hours later than before.
    assert ticket.first_response_due_at == utc(2026, 3, 3, 8)


@pytest.mark.django_db
def test_scan_warns_then_breaches_exactly_once_at_the_boundary(locmem_channel, policies, agent, other_agent):
    _vip, urgent, _default = policies
    agent.email, other_agent.email = "alex@example.com", "dana@example.com"
    agent.save()
    other_agent.save()
    team = Team.objects.create(name="Network", lead=other_agent)
    urgent.reassign_to_team = team
    urgent.raise_priority = True
    urgent.save()
    ticket = opened(locmem_channel)
    with time_machine.travel(MONDAY_9, tick=False):
        update_ticket(ticket=ticket, actor=agent, priority=Ticket.Priority.HIGH, assignee=agent)
    ticket.refresh_from_db()
    due = ticket.first_response_due_at
    assert due == MONDAY_9 + timedelta(hours=1)

    assert sla.scan(due - timedelta(minutes=16)).warnings == 0  # 74 % of the hour
    first = sla.scan(due - timedelta(minutes=15))  # 75 %
    assert (first.warnings, first.breaches) == (1, 0)
    assert sla.scan(due - timedelta(minutes=10)).checked == 0  # nothing to look at until the due time
    assert sla.scan(due - timedelta(microseconds=1)).breaches == 0
    breach = sla.scan(due)  # exactly at the boundary: breached
    assert breach.breaches == 1
    assert sla.scan(due + timedelta(minutes=1)).breaches == 0  # once

    ticket.refresh_from_db()
    assert ticket.first_response_breached_at == due
    assert ticket.priority == Ticket.Priority.URGENT
    assert ticket.team == team
    kinds = list(ticket.events.filter(actor_label="SLA").values_list("kind", "new_value"))
    assert (TicketEvent.Kind.SLA, "first response breached") in kinds
    assert (TicketEvent.Kind.PRIORITY, "urgent") in kinds
    assert ticket.priority_overridden  # raised past the matrix's priority: kept until impact or urgency change
    assert len(mail.outbox) == 1  # the warning sends no mail; the breach one, to both
    assert sorted(mail.outbox[0].to) == sorted([agent.email, other_agent.email])


@pytest.mark.django_db
def test_a_first_response_meets_the_target(locmem_channel, policies):
    ticket = opened(locmem_channel)
    Ticket.objects.filter(pk=ticket.pk).update(first_responded_at=MONDAY_9 + timedelta(minutes=5))
    result = sla.scan(ticket.first_response_due_at + timedelta(minutes=1))
    assert result.breaches == 0
    ticket.refresh_from_db()
    assert ticket.first_response_breached_at is None
    assert ticket.sla_next_check_at > ticket.first_response_due_at  # now watching the resolution


@pytest.mark.django_db
def test_custom_holiday_moves_the_due_time(locmem_channel, policies, office):
    CalendarHoliday.objects.create(calendar=office, date=datetime(2026, 3, 3).date(), name="Company day")
    ticket = opened(locmem_channel)
    assert ticket.resolution_due_at == utc(2026, 3, 6, 8)  # Tuesday closed: Friday 09:00 CET, not Thursday


@pytest.mark.django_db
def test_the_scan_reads_through_the_partial_index(locmem_channel, policies, django_assert_max_num_queries):
    opened(locmem_channel)
    with django_assert_max_num_queries(3):
        sla.scan(MONDAY_9)  # nothing due: one index read (and the transaction's savepoint and its release)


@pytest.mark.django_db
def test_due_state_labels():
    now = MONDAY_9
    ticket = Ticket(status="open", first_response_due_at=now + timedelta(minutes=25))
    assert sla.due_state(ticket, now)[:2] == ("soon", "due in 25\u00a0min")
    ticket.first_response_due_at = now - timedelta(minutes=5)
    assert sla.due_state(ticket, now)[:2] == ("breached", "breached 5\u00a0min ago")
    ticket.first_response_due_at = now + timedelta(hours=3)
    assert sla.due_state(ticket, now)[0] == "ok"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pause_after=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=4)),
    paused_for=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=6)),
)
def test_pausing_never_shortens_the_remaining_time(pause_after, paused_for):
    schedule = sla.Schedule(time_zone="Europe/Berlin", week=sla.parse_hours(OFFICE))
    policy = SlaPolicy(pk=1, name="P", first_response_minutes=60, resolution_minutes=1800, calendar_id=1)
    policies = sla.Policies()
    policies.__dict__["all"] = [policy]
    policies._schedules[1] = schedule
    due = sla.due_after(schedule, MONDAY_9, timedelta(minutes=1800))
    ticket = Ticket(status="pending", sla_policy_id=1, resolution_due_at=due, first_responded_at=MONDAY_9)
    paused = MONDAY_9 + pause_after
    ticket.sla_paused_at = paused
    left = sla.business_between(schedule, paused, due)
    sla.resume(ticket, paused + paused_for, policies)
    assert ticket.resolution_due_at >= due  # never moves backwards
    if due > paused:
        assert sla.business_between(schedule, paused + paused_for, ticket.resolution_due_at) == left


@pytest.mark.django_db
def test_beat_runs_the_scan_through_a_thin_task(settings, locmem_channel, policies):
    assert settings.CELERY_BEAT_SCHEDULE["sla-scan"]["task"] == "channels_ingest.sla_scan"
    ticket = opened(locmem_channel)
    with time_machine.travel(ticket.first_response_due_at, tick=False):
        assert run_sla_scan.delay().get() == {"checked": 1, "warnings": 0, "breaches": 1}


@pytest.mark.django_db
def test_a_policy_chosen_while_pending_starts_paused(locmem_channel, policies, agent):
    ticket = opened(locmem_channel)
    Ticket.objects.filter(pk=ticket.pk).update(sla_policy=None, first_response_due_at=None, status="pending")
    with time_machine.travel(MONDAY_9 + timedelta(hours=1), tick=False):
        update_ticket(ticket=ticket, actor=agent, priority=Ticket.Priority.HIGH)
    ticket.refresh_from_db()
    assert ticket.sla_policy.name == "Urgent incidents"
    assert ticket.sla_paused_at == MONDAY_9 + timedelta(hours=1)
    assert sla.scan(ticket.first_response_due_at + timedelta(hours=1)).checked == 0  # paused: not scanned


@pytest.mark.django_db
def test_a_breach_can_reassign_to_an_agent(locmem_channel, policies, agent, other_agent):
    _vip, _urgent, default = policies
    default.reassign_to = other_agent
    default.notify = False
    default.save()
    ticket = opened(locmem_channel)
    sla.scan(ticket.first_response_due_at)
    ticket.refresh_from_db()
    assert ticket.assignee == other_agent
    event = ticket.events.get(kind=TicketEvent.Kind.ASSIGNEE)
    assert (event.old_value, event.new_value, event.actor_label) == ("", "Dana Desk", "SLA")
    assert event.reason == "first response breached: Default"
    assert not mail.outbox
