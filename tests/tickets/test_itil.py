"""ITIL on the domain (tickets.itil): the matrix, recomputing and overriding the priority, classification,
problems and their incidents, a change's window and its approval by the named approver, the admins' lists."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction

from tests.helpers import open_tickets
from tickets.itil import (
    DEFAULT_MATRIX,
    FROM_MATRIX,
    ItilError,
    classify,
    decide_change,
    link_problem,
    matrix_grid,
    matrix_priority,
    override_priority,
    plan_change,
    save_list_entry,
    save_matrix,
)
from tickets.models import AuditEntry, Category, PriorityMatrix, Service, Ticket, TicketEvent
from tickets.updates import update_ticket, update_tickets

H, M, L = Ticket.Level.HIGH, Ticket.Level.MEDIUM, Ticket.Level.LOW
P = Ticket.Priority
START = datetime(2026, 12, 5, 22, 0, tzinfo=UTC)
END = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)


def events_of(ticket, kind):
    return list(TicketEvent.objects.filter(ticket=ticket, kind=kind).order_by("id"))


@pytest.mark.django_db
def test_the_migration_stores_the_itil_3x3():
    stored = {(r.impact, r.urgency): r.priority for r in PriorityMatrix.objects.all()}
    assert stored == DEFAULT_MATRIX
    assert stored[(H, H)] == P.URGENT
    assert stored[(H, M)] == stored[(M, H)] == P.HIGH
    assert stored[(H, L)] == stored[(M, M)] == stored[(L, H)] == P.NORMAL
    assert stored[(M, L)] == stored[(L, M)] == stored[(L, L)] == P.LOW
    assert P.HIGH.label == "P2 · High"
    assert P.URGENT.label == "P1 · Urgent"


@pytest.mark.django_db
def test_matrix_lookup_reads_the_table_and_falls_back_to_itil():
    PriorityMatrix.objects.filter(impact=L, urgency=L).update(priority=P.NORMAL)
    assert matrix_priority(L, L) == P.NORMAL
    PriorityMatrix.objects.filter(impact=H, urgency=H).delete()
    assert matrix_priority(H, H) == P.URGENT
    with pytest.raises(ItilError):
        matrix_priority(9, 1)


def test_setting_impact_or_urgency_recomputes_the_priority(ticket, agent):
    assert ticket.priority == P.NORMAL  # Medium x Medium
    events = classify(ticket, actor=agent, impact=H)
    assert [(e.kind, e.old_value, e.new_value) for e in events] == [
        ("impact", "Medium", "High"),
        ("priority", "normal", "high"),
    ]
    assert events[1].reason == FROM_MATRIX
    ticket.refresh_from_db()
    assert (ticket.impact, ticket.priority) == (H, P.HIGH)
    classify(ticket, actor=agent, urgency=H)
    ticket.refresh_from_db()
    assert ticket.priority == P.URGENT
    assert classify(ticket, actor=agent, impact=H, urgency=H) == []


def test_an_override_needs_a_reason_and_is_kept_until_impact_or_urgency_change(ticket, agent):
    with pytest.raises(ItilError, match="Say why"):
        override_priority(ticket, actor=agent, priority=P.URGENT, reason="  ")
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.priority_overridden) == (P.NORMAL, False)
    event = override_priority(ticket, actor=agent, priority=P.URGENT, reason="The CEO's laptop")
    assert (event.kind, event.new_value, event.reason) == ("priority", "urgent", "The CEO's laptop")
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.priority_overridden) == (P.URGENT, True)
    # A change that touches neither impact nor urgency keeps the override.
    classify(ticket, actor=agent, kind=Ticket.Kind.SERVICE_REQUEST)
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.priority_overridden) == (P.URGENT, True)
    # A new urgency recomputes it from the matrix and clears the mark.
    classify(ticket, actor=agent, urgency=L)
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.priority_overridden) == (P.LOW, False)
    assert events_of(ticket, "priority")[-1].reason == FROM_MATRIX


def test_new_tickets_get_the_matrix_priority_for_their_default_impact_and_urgency(locmem_channel):
    PriorityMatrix.objects.filter(impact=M, urgency=M).update(priority=P.HIGH)
    (ticket,) = open_tickets(locmem_channel, 1)
    assert (ticket.impact, ticket.urgency, ticket.priority) == (M, M, P.HIGH)


def test_classification_records_type_category_and_service(ticket, agent):
    hardware, vpn = Category.objects.create(name="Hardware"), Service.objects.create(name="VPN")
    events = classify(ticket, actor=agent, kind="problem", category=hardware, service=vpn)
    assert {(e.kind, e.old_value, e.new_value) for e in events} == {
        ("kind", "incident", "problem"),
        ("category", "", "Hardware"),
        ("service", "", "VPN"),
    }
    assert events[0].new_display == "Problem"
    ticket.refresh_from_db()
    assert (ticket.kind, ticket.category, ticket.service) == ("problem", hardware, vpn)
    with pytest.raises(ItilError, match="Unknown type"):
        classify(ticket, actor=agent, kind="outage")
    old = Category.objects.create(name="Old", active=False)
    with pytest.raises(ItilError, match="no longer in use"):
        classify(ticket, actor=agent, category=old)
    classify(ticket, actor=agent, category=None)
    ticket.refresh_from_db()
    assert ticket.category is None


def test_problems_link_the_incidents_they_explain(locmem_channel, agent):
    problem, incident, other = open_tickets(locmem_channel, 3)
    classify(problem, actor=agent, kind=Ticket.Kind.PROBLEM)
    with pytest.raises(ItilError, match="is not a problem"):
        link_problem(incident, problem=other, actor=agent)
    with pytest.raises(ItilError, match="cannot explain itself"):
        link_problem(problem, problem=problem, actor=agent)
    second = Ticket.objects.create(subject="Another root cause", requester=problem.requester, kind="problem")
    with pytest.raises(ItilError, match="cannot be linked to another problem"):
        link_problem(problem, problem=second, actor=agent)
    link_problem(incident, problem=problem, actor=agent)
    link_problem(other, problem=problem, actor=agent)
    assert set(problem.incidents.all()) == {incident, other}
    assert [e.new_value for e in events_of(incident, "problem")] == [f"#{problem.pk} {problem.subject}"]
    assert [e.new_value for e in events_of(problem, "incident")] == [
        f"#{incident.pk} {incident.subject}",
        f"#{other.pk} {other.subject}",
    ]
    assert link_problem(incident, problem=problem, actor=agent) == []
    with pytest.raises(ItilError, match="Unlink"):
        classify(problem, actor=agent, kind=Ticket.Kind.INCIDENT)
    link_problem(incident, problem=None, actor=agent)
    incident.refresh_from_db()
    assert incident.problem is None
    assert events_of(incident, "problem")[-1].old_value == f"#{problem.pk} {problem.subject}"
    assert events_of(problem, "incident")[-1].old_value == f"#{incident.pk} {incident.subject}"


def test_a_changes_window_must_end_after_it_starts(ticket, agent):
    with pytest.raises(ItilError, match="Only a change"):
        plan_change(ticket, actor=agent, start=START, end=END, approver=agent)
    classify(ticket, actor=agent, kind=Ticket.Kind.CHANGE)
    with pytest.raises(ItilError, match="end after it starts"):
        plan_change(ticket, actor=agent, start=END, end=START, approver=agent)
    with pytest.raises(ItilError, match="end after it starts"):
        plan_change(ticket, actor=agent, start=START, end=START, approver=agent)
    # The database refuses it too.
    with pytest.raises(IntegrityError), transaction.atomic():
        Ticket.objects.filter(pk=ticket.pk).update(change_start=END, change_end=START)


def test_only_the_named_approver_approves_or_rejects(ticket, agent, other_agent, employee):
    classify(ticket, actor=agent, kind=Ticket.Kind.CHANGE)
    with pytest.raises(ItilError, match="approver must be"):
        plan_change(ticket, actor=agent, start=START, end=END, approver=employee)
    (planned,) = plan_change(ticket, actor=agent, start=START, end=END, approver=other_agent)
    assert planned.kind == "change_plan"
    assert planned.new_value.startswith("2026-12-05 22:00 – 2026-12-06 02:00 UTC, approver")
    ticket.refresh_from_db()
    assert ticket.change_approval == Ticket.Approval.PENDING
    for someone in (agent, employee):
        with pytest.raises(ItilError, match="Only the change's named approver"):
            decide_change(ticket, actor=someone, approve=True)
    event = decide_change(ticket, actor=other_agent, approve=False, reason="Clashes with payroll")
    assert (event.kind, event.old_value, event.new_value, event.reason) == (
        "approval",
        "pending",
        "rejected",
        "Clashes with payroll",
    )
    ticket.refresh_from_db()
    assert ticket.change_approval == Ticket.Approval.REJECTED
    assert ticket.change_decided_at is not None
    # Replanning asks for approval again.
    plan_change(ticket, actor=agent, start=START, end=END.replace(hour=3), approver=other_agent)
    ticket.refresh_from_db()
    assert (ticket.change_approval, ticket.change_decided_at) == (Ticket.Approval.PENDING, None)
    decide_change(ticket, actor=other_agent, approve=True)
    ticket.refresh_from_db()
    assert ticket.change_approval == Ticket.Approval.APPROVED


@pytest.mark.django_db
def test_matrix_changes_are_audited(admin_user):
    assert save_matrix({(L, L): P.NORMAL}, actor=admin_user)
    assert matrix_grid()[(L, L)] == P.NORMAL
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.before, entry.after) == (
        "priority_matrix.update",
        {"Low x Low": "P4 · Low"},
        {"Low x Low": "P3 · Normal"},
    )
    assert not save_matrix({(L, L): P.NORMAL}, actor=admin_user)
    with pytest.raises(ItilError):
        save_matrix({(L, 7): P.NORMAL}, actor=admin_user)
    assert AuditEntry.objects.count() == 1


@pytest.mark.django_db
def test_list_entries_are_named_uniquely_and_audited(admin_user):
    category = Category()
    save_list_entry(category, actor=admin_user, name="  Hard   ware ")
    assert category.name == "Hard ware"
    save_list_entry(category, actor=admin_user, name="Hardware", active=False)
    with pytest.raises(ItilError, match="already"):
        save_list_entry(Category(), actor=admin_user, name="HARDWARE")
    with pytest.raises(ItilError, match="name"):
        save_list_entry(Service(), actor=admin_user, name=" ")
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "after"))
    assert actions == [
        ("category.create", {"name": "Hard ware", "active": True}),
        ("category.update", {"name": "Hardware", "active": False}),
    ]


def test_overridden_means_other_than_the_matrix_gives(ticket, agent):
    """Back to the matrix's priority (an Undo, a bulk action, an agent's choice) is no override any more."""
    override_priority(ticket, actor=agent, priority=P.URGENT, reason="Board meeting")
    update_ticket(ticket=ticket, actor=agent, priority=P.NORMAL, reason="undo")
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.priority_overridden) == (P.NORMAL, False)
    update_tickets(ticket_ids=[ticket.pk], actor=agent, priority=P.LOW, why="Quiet week")
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.priority_overridden) == (P.LOW, True)
    override_priority(ticket, actor=agent, priority=P.NORMAL, reason="Back to normal")
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.priority_overridden) == (P.NORMAL, False)
