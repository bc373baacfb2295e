"""After a change on the ticket page, the agent is told what changed and offered an Undo for a few seconds."""

import re

import pytest
from django.urls import reverse

from tests.helpers import detail_url, flashes, text_of
from tickets.models import Queue, Ticket, TicketEvent

pytestmark = pytest.mark.django_db


def update_url(ticket):
    return reverse("console:ticket-update", args=[ticket.pk])


def undo_fields(html):
    """The Undo form's hidden fields, as it would post them."""
    form = re.search(r'<form [^>]*class="undo-form" data-undo-seconds="(\d+)">(.*?)</form>', html, re.S)
    assert form, "no Undo offered"
    assert int(form.group(1)) > 0
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form.group(2)))


def test_resolve_says_so_and_undo_puts_the_status_back(agent_client, agent, ticket):
    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.OPEN)
    response = agent_client.post(update_url(ticket), {"action": "resolve"}, follow=True)
    assert flashes(response) == [f"Resolved #{ticket.pk}."]
    html = response.content.decode()
    fields = undo_fields(html)
    assert fields == {"csrfmiddlewaretoken": fields["csrfmiddlewaretoken"], "action": "undo", "status": "open"}
    # Offered once: the next visit of the page has no Undo.
    assert 'class="undo-form"' not in agent_client.get(detail_url(ticket)).content.decode()

    undone = agent_client.post(update_url(ticket), fields, follow=True)
    assert flashes(undone) == ["Undone. Status: Resolved → Open."]
    assert 'class="undo-form"' not in undone.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN
    assert ticket.resolved_at is None
    # Both changes are in the timeline, the second marked as an undo.
    events = list(
        TicketEvent.objects.filter(ticket=ticket).order_by("id").values_list("old_value", "new_value", "reason")
    )
    assert events == [("open", "resolved", ""), ("resolved", "open", "undo")]
    assert "Change: Status Resolved → Open · Alex Agent (undo)" in text_of(undone.content.decode())


def test_assign_to_me_says_so_and_undo_unassigns_only_that(agent_client, agent, other_agent, ticket):
    response = agent_client.post(update_url(ticket), {"action": "assign-to-me"}, follow=True)
    assert flashes(response) == ["Assigned to you."]
    fields = undo_fields(response.content.decode())
    assert (fields["action"], fields["assignee"]) == ("undo", "")
    assert "status" not in fields
    # Meanwhile someone else raised the priority: the Undo leaves that alone.
    Ticket.objects.filter(pk=ticket.pk).update(priority=Ticket.Priority.URGENT)
    undone = agent_client.post(update_url(ticket), fields, follow=True)
    assert flashes(undone) == ["Undone. Unassigned (was Alex Agent)."]
    ticket.refresh_from_db()
    assert (ticket.assignee, ticket.priority) == (None, Ticket.Priority.URGENT)


def test_the_form_says_each_change_and_undo_restores_them(agent_client, agent, other_agent, ticket):
    network = Queue.objects.create(name="Network")
    data = {"status": "pending", "priority": 3, "assignee": other_agent.pk, "queue": network.pk}
    data["priority_reason"] = "a whole floor"  # an agent's priority overrides the matrix's: only with a reason
    response = agent_client.post(update_url(ticket), data, follow=True)
    assert flashes(response) == [
        "Status: New → Pending (waiting on requester). Priority: P3 · Normal → P2 · High. "
        f"Assigned to {other_agent.get_full_name() or other_agent.username}. Queue: no queue → Network."
    ]
    fields = undo_fields(response.content.decode())
    assert {k: fields[k] for k in ("status", "priority", "assignee", "queue")} == {
        "status": "new",
        "priority": "2",
        "assignee": "",
        "queue": "",
    }
    agent_client.post(update_url(ticket), fields)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.assignee, ticket.queue) == ("new", 2, None, None)


def test_nothing_changed_offers_no_undo(agent_client, ticket):
    data = {"status": ticket.status, "priority": ticket.priority, "assignee": "", "queue": ""}
    response = agent_client.post(update_url(ticket), data, follow=True)
    assert flashes(response) == ["Nothing to change."]
    assert 'class="undo-form"' not in response.content.decode()


def test_an_undo_with_nothing_or_a_bad_value_is_refused_clearly(agent_client, ticket):
    response = agent_client.post(update_url(ticket), {"action": "undo"}, follow=True)
    assert flashes(response) == ["There was nothing to undo."]
    response = agent_client.post(update_url(ticket), {"action": "undo", "status": "bogus"}, follow=True)
    assert response.status_code == 200
    assert flashes(response)[0].startswith("Status: Select a valid choice.")
    assert not TicketEvent.objects.filter(ticket=ticket).exists()
