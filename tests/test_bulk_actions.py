"""Bulk actions on the queue: assign, set status or priority on the ticked tickets, in a fixed number of queries.

Uses ``agent``, ``employee``, ``agent_client`` and ``locmem_channel`` from conftest.
"""

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.conftest import receive
from tests.factories import message
from tickets.models import Ticket, TicketEvent
from tickets.roles import AGENTS_GROUP
from tickets.updates import TicketUpdateError, update_tickets

LIST = reverse("console:ticket-list")
BULK = reverse("console:ticket-bulk")


def open_tickets(channel, count, first=0):
    receive(channel, [message(f"m{n}", text=f"Problem {n}", minute=n) for n in range(first, first + count)])
    return list(Ticket.objects.filter(subject__startswith="Problem").order_by("pk"))


@pytest.fixture
def tickets(locmem_channel):
    return open_tickets(locmem_channel, 3)


@pytest.fixture
def colleague(db):
    user = User.objects.create_user("sam", first_name="Sam", last_name="Second")
    user.groups.add(Group.objects.get_or_create(name=AGENTS_GROUP)[0])
    return user


def ids(tickets):
    return [str(ticket.pk) for ticket in tickets]


def flashes(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


def events_of(ticket):
    return {(e.kind, e.old_value, e.new_value, e.actor_id) for e in TicketEvent.objects.filter(ticket=ticket)}


# The queue page ----------------------------------------------------------------


def test_queue_has_a_labelled_checkbox_per_row_and_the_bulk_bar(agent_client, colleague, tickets):
    """The table sits in one POST form (CSRF) with a labelled checkbox per row, a select-all box and the bulk bar."""
    html = agent_client.get(LIST + "?priority=2").content.decode()
    form = html[html.index('<form method="post" action="' + BULK + '"') : html.index("</form>", html.index(BULK))]
    assert 'name="csrfmiddlewaretoken"' in form
    assert 'name="next" value="/console/?priority=2"' in form
    for ticket in tickets:
        assert f'<input type="checkbox" name="ids" value="{ticket.pk}" id="select-{ticket.pk}">' in form
        assert f'<label for="select-{ticket.pk}" class="visually-hidden">Select ticket #{ticket.pk}</label>' in form
    assert '<input type="checkbox" id="select-all"><label for="select-all"' in form
    assert '<label for="bulk-assignee">Assign to</label>' in form
    assert f'<option value="{colleague.pk}">sam</option>' in form
    assert '<label for="bulk-status">Status</label>' in form
    assert '<option value="pending">' in form
    assert '<label for="bulk-priority">Priority</label>' in form
    assert 'value="assign-to-me"' in form
    assert f'formaction="{reverse("console:ticket-merge")}"' in form
    assert "<kbd>x</kbd></dt><dd>Tick the selected ticket for bulk actions" in html


def test_polled_rows_keep_their_checkboxes(agent_client, tickets):
    html = agent_client.get(reverse("console:ticket-rows"), headers={"HX-Request": "true"}).content.decode()
    assert html.lstrip().startswith("<tr>")
    assert html.count('name="ids"') == 3
    assert "<form" not in html


# Changing the ticked tickets -------------------------------------------------------


def test_bulk_assign_and_status_change_every_ticket_with_events(agent_client, agent, colleague, tickets):
    """Assigning and setting the status of 2 of 3 tickets changes just those, with one event per real change."""
    chosen, untouched = tickets[:2], tickets[2]
    response = agent_client.post(
        BULK,
        {
            "ids": ids(chosen),
            "assignee": str(colleague.pk),
            "status": "pending",
            "priority": "",
            "action": "apply",
            "next": "/console/?view=unassigned",
        },
    )
    assert response.status_code == 302
    assert response.url == "/console/?view=unassigned"
    for ticket in chosen:
        ticket.refresh_from_db()
        assert (ticket.assignee, ticket.status) == (colleague, "pending")
        assert events_of(ticket) == {
            ("assignee", "", "Sam Second", agent.pk),
            ("status", "new", "pending", agent.pk),
        }
    untouched.refresh_from_db()
    assert (untouched.assignee, untouched.status) == (None, "new")
    assert not events_of(untouched)
    assert flashes(agent_client.get(LIST)) == ["2 tickets updated."]


def test_assign_to_me_and_to_nobody(agent_client, agent, tickets):
    agent_client.post(BULK, {"ids": ids(tickets), "action": "assign-to-me"})
    assert {t.assignee_id for t in Ticket.objects.all()} == {agent.pk}
    response = agent_client.post(BULK, {"ids": ids(tickets[:1]), "assignee": "none", "action": "apply"}, follow=True)
    assert Ticket.objects.get(pk=tickets[0].pk).assignee is None
    assert ("assignee", "Alex Agent", "", agent.pk) in events_of(tickets[0])
    assert "1 ticket updated." in flashes(response)


def test_tickets_that_already_have_the_values_get_no_event(agent_client, tickets):
    """Priority "normal" is every ticket's already, and only one is raised: one event, and the rest are told."""
    Ticket.objects.filter(pk=tickets[0].pk).update(priority=Ticket.Priority.HIGH)
    response = agent_client.post(BULK, {"ids": ids(tickets), "priority": "2", "action": "apply"}, follow=True)
    assert TicketEvent.objects.count() == 1
    assert TicketEvent.objects.get().ticket_id == tickets[0].pk
    assert flashes(response) == ["1 ticket updated.", "2 tickets already had those values."]


def test_resolving_in_bulk_stamps_resolved_at(agent_client, tickets):
    agent_client.post(BULK, {"ids": ids(tickets), "status": "resolved", "action": "apply"})
    assert all(t.status == "resolved" and t.resolved_at for t in Ticket.objects.all())


def assert_nothing_changed():
    assert not TicketEvent.objects.exists()
    assert {(t.assignee_id, t.status, t.priority) for t in Ticket.objects.all()} == {(None, "new", 2)}


def test_non_agent_assignee_is_refused(agent_client, employee, tickets):
    data = {"ids": ids(tickets), "action": "apply", "assignee": str(employee.pk), "status": "open"}
    response = agent_client.post(BULK, data, follow=True)
    assert flashes(response) == ["employee is not an agent and cannot be assigned tickets."]
    assert_nothing_changed()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"status": "bogus"}, "Status: Select a valid choice. bogus is not one of the available choices."),
        ({"priority": "9"}, "Priority: Select a valid choice. 9 is not one of the available choices."),
        ({"assignee": "999999"}, "That agent does not exist (or no longer works here)."),
        ({}, "Choose what to change."),
    ],
)
def test_refused_changes_say_why_and_change_nothing(agent_client, tickets, data, error):
    response = agent_client.post(BULK, {"ids": ids(tickets), "action": "apply", **data}, follow=True)
    assert flashes(response) == [error]
    assert_nothing_changed()


def test_nothing_ticked_is_refused(agent_client, tickets):
    response = agent_client.post(BULK, {"status": "open", "action": "apply"}, follow=True)
    assert flashes(response) == ["Select at least one ticket."]
    assert not TicketEvent.objects.exists()


def test_service_refuses_unknown_status_and_non_agents(agent, employee, tickets):
    """The service applies update_ticket's rules itself, whoever calls it."""
    with pytest.raises(TicketUpdateError, match="Unknown status 'bogus'"):
        update_tickets(ticket_ids=[t.pk for t in tickets], actor=agent, status="bogus")
    with pytest.raises(TicketUpdateError, match="is not an agent"):
        update_tickets(ticket_ids=[t.pk for t in tickets], actor=agent, assignee=employee)
    assert not TicketEvent.objects.exists()


def test_deleted_tickets_are_counted_not_fatal(agent_client, tickets):
    gone = tickets[0].pk
    Ticket.objects.filter(pk=gone).delete()
    response = agent_client.post(BULK, {"ids": ids(tickets), "status": "open", "action": "apply"}, follow=True)
    assert flashes(response) == ["2 tickets updated.", "1 ticket no longer exists."]


def test_next_must_be_a_queue_url(agent_client, tickets):
    for next_url in ("https://evil.example/console/", "//evil.example/console/", "/admin/"):
        response = agent_client.post(BULK, {"ids": ids(tickets), "status": "open", "action": "apply", "next": next_url})
        assert response.url == LIST


# Who may -----------------------------------------------------------------------


def test_bulk_actions_are_for_agents_only(client, employee, tickets):
    assert client.post(BULK, {"ids": ids(tickets), "status": "closed"}).url.startswith(reverse("login"))
    client.force_login(employee)
    assert client.post(BULK, {"ids": ids(tickets), "status": "closed"}).status_code == 403
    assert client.get(BULK).status_code == 403
    assert not TicketEvent.objects.exists()


def test_bulk_actions_need_the_csrf_token(agent, tickets):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.post(BULK, {"ids": ids(tickets), "status": "closed", "action": "apply"}).status_code == 403
    assert not TicketEvent.objects.exists()
    client.get(LIST)  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    data = {"ids": ids(tickets), "status": "closed", "action": "apply", "csrfmiddlewaretoken": token}
    assert client.post(BULK, data).status_code == 302
    assert TicketEvent.objects.count() == 3


def test_get_is_not_allowed(agent_client):
    assert agent_client.get(BULK).status_code == 405


# Queries -----------------------------------------------------------------------


def bulk_queries(tickets, **changes):
    with CaptureQueriesContext(connection) as queries:
        update_tickets(ticket_ids=[t.pk for t in tickets], **changes)
    return len(queries)


def test_query_count_does_not_grow_with_the_selection(agent, colleague, locmem_channel):
    """3 tickets or 30: the same queries (lock and read, one UPDATE, one INSERT of events)."""
    few = open_tickets(locmem_channel, 3)
    few_queries = bulk_queries(few, actor=agent, assignee=colleague, status="open", priority=3)
    many = open_tickets(locmem_channel, 30, first=100)[3:]
    assert len(many) == 30
    assert bulk_queries(many, actor=agent, assignee=colleague, status="open", priority=3) == few_queries
    assert TicketEvent.objects.count() == 33 * 3
    assert few_queries <= 6  # savepoint, assignee's groups, lock+read, UPDATE, INSERT, release


def test_view_query_count_does_not_grow_with_the_selection(agent_client, colleague, locmem_channel):
    few = open_tickets(locmem_channel, 3)
    data = {"assignee": str(colleague.pk), "status": "pending", "action": "apply"}
    with CaptureQueriesContext(connection) as queries:
        agent_client.post(BULK, {"ids": ids(few), **data})
    many = open_tickets(locmem_channel, 30, first=100)[3:]
    with CaptureQueriesContext(connection) as more_queries:
        agent_client.post(BULK, {"ids": ids(many), **data})
    assert len(more_queries) == len(queries)
