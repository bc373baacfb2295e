"""The queue's bulk actions and merging from the queue."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.helpers import (
    detail_url,
    flashes,
    merge,
    open_tickets,
)
from tickets.models import Ticket, TicketEvent

LIST = reverse("console:ticket-list")


BULK = reverse("console:ticket-bulk")


def ids(tickets):
    return [str(ticket.pk) for ticket in tickets]


def events_of(ticket):
    return {(e.kind, e.old_value, e.new_value, e.actor_id) for e in TicketEvent.objects.filter(ticket=ticket)}


def assert_nothing_changed():
    assert not TicketEvent.objects.exists()
    assert {(t.assignee_id, t.status, t.priority) for t in Ticket.objects.all()} == {(None, "new", 2)}


MERGE = reverse("console:ticket-merge")


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
    data = {"ids": ids(tickets), "priority": "2", "why": "Printer fleet down", "action": "apply"}
    response = agent_client.post(BULK, data, follow=True)
    assert TicketEvent.objects.count() == 1
    assert TicketEvent.objects.get().reason == "bulk update of 3 tickets: Printer fleet down"
    assert TicketEvent.objects.get().ticket_id == tickets[0].pk
    assert flashes(response) == ["1 ticket updated.", "2 tickets already had those values."]


def test_resolving_in_bulk_stamps_resolved_at(agent_client, tickets):
    agent_client.post(BULK, {"ids": ids(tickets), "status": "resolved", "action": "apply"})
    assert all(t.status == "resolved" and t.resolved_at for t in Ticket.objects.all())


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
        ({"priority": "1"}, "Say why the priority changes: it replaces the one impact and urgency give."),
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


def test_deleted_tickets_are_counted_not_fatal(agent_client, tickets):
    gone = tickets[0].pk
    Ticket.objects.filter(pk=gone).delete()
    response = agent_client.post(BULK, {"ids": ids(tickets), "status": "open", "action": "apply"}, follow=True)
    assert flashes(response) == ["2 tickets updated.", "1 ticket no longer exists."]


def test_next_must_be_a_queue_url(agent_client, tickets):
    for next_url in ("https://evil.example/console/", "//evil.example/console/", "/admin/"):
        response = agent_client.post(BULK, {"ids": ids(tickets), "status": "open", "action": "apply", "next": next_url})
        assert response.url == LIST


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


def test_view_query_count_does_not_grow_with_the_selection(agent_client, colleague, locmem_channel):
    few = open_tickets(locmem_channel, 3)
    data = {"assignee": str(colleague.pk), "status": "pending", "action": "apply"}
    with CaptureQueriesContext(connection) as queries:
        agent_client.post(BULK, {"ids": ids(few), **data})
    many = open_tickets(locmem_channel, 30, first=100)[3:]
    with CaptureQueriesContext(connection) as more_queries:
        agent_client.post(BULK, {"ids": ids(many), **data})
    assert len(more_queries) == len(queries)


def test_merging_from_the_queue_asks_which_ticket_to_keep(agent_client, duplicates):
    alice, bob, carol = duplicates
    ids = [str(bob.pk), str(alice.pk)]
    response = agent_client.post(MERGE, {"ids": ids, "next": "/console/?view=open"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Merge 2 tickets" in html
    assert f'<input type="radio" name="keep" value="{alice.pk}" id="keep-{alice.pk}" checked>' in html
    assert f'<input type="radio" name="keep" value="{bob.pk}" id="keep-{bob.pk}">' in html
    assert f'<label for="keep-{alice.pk}">' in html
    assert "VPN is down" in html
    assert 'name="next" value="/console/?view=open"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert f'id="keep-{carol.pk}"' not in html  # only the ticked tickets are offered

    response = agent_client.post(MERGE, {"ids": ids, "keep": str(bob.pk)}, follow=True)
    assert response.redirect_chain[-1][0] == detail_url(bob)
    assert flashes(response) == [f"Merged #{alice.pk} into #{bob.pk}. Replies still go to each conversation's channel."]
    alice.refresh_from_db()
    assert alice.merged_into == bob


def test_merge_refusals_are_shown_in_the_queue(agent_client, agent, duplicates):
    alice, bob, carol = duplicates
    response = agent_client.post(MERGE, {"ids": [str(alice.pk)]}, follow=True)
    assert flashes(response) == ["Select at least 2 tickets to merge."]
    merge(agent, alice, bob)
    response = agent_client.post(
        MERGE, {"ids": [str(bob.pk), str(carol.pk)], "keep": str(carol.pk), "next": "/console/?view=open"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/console/?view=open"
    assert flashes(response) == [f"#{bob.pk} was already merged into #{alice.pk}."]


def test_merge_is_for_agents_with_the_csrf_token(client, employee, agent, duplicates):
    alice, bob, _ = duplicates
    data = {"ids": [str(alice.pk), str(bob.pk)], "keep": str(alice.pk)}
    assert client.post(MERGE, data).url.startswith(reverse("login"))
    client.force_login(employee)
    assert client.post(MERGE, data).status_code == 403
    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(agent)
    assert guarded.post(MERGE, data).status_code == 403
    assert not Ticket.objects.filter(merged_into__isnull=False).exists()
