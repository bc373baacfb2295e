"""A Slack message, end to end: routed by the rules to the Network team at P2, and acknowledged in its own thread
with the ticket's number and, when its SLA set one, the expected first response."""

from datetime import UTC, datetime

import pytest

from channels_ingest.models import Channel
from tests.helpers import poll_as_worker
from tickets.models import Contact, RoutingRule, Team, Ticket, TicketEvent
from tickets.routing import route_new_tickets

ACK = {
    "body": "Thanks {name}: this is ticket #{ticket}. {expected_response}",
    "languages": {"de": {"body": "Danke {name}: Ticket #{ticket}. {expected_response}"}},
}


@pytest.fixture
def routed_slack(slack_channel):
    network = Team.objects.create(name="Network")
    RoutingRule.objects.create(
        name="Network issues", keywords="vpn, wi-fi", set_team=network, set_priority=Ticket.Priority.HIGH
    )
    Channel.objects.filter(pk=slack_channel.pk).update(config={**slack_channel.config, "auto_ack": ACK})
    slack_channel.refresh_from_db()
    return slack_channel


@pytest.mark.django_db
def test_a_slack_message_is_routed_and_acknowledged_in_its_thread(routed_slack, slack_emulator):
    parent = slack_emulator.post("C0GENERAL", "U0ANN", "The VPN drops every ten minutes")["ts"]
    poll_as_worker(routed_slack)
    ticket = Ticket.objects.get()
    assert (ticket.team.name, ticket.priority) == ("Network", Ticket.Priority.HIGH)
    assert TicketEvent.objects.get(ticket=ticket, kind="routed").reason == "team Network, priority P2 · High"
    (ack,) = slack_emulator.bot_messages("C0GENERAL")
    assert ack["thread_ts"] == parent
    # No due time without an SLA policy: the sentence is left out. (The name is looked up after ingestion.)
    assert ack["text"].endswith(f": this is ticket #{ticket.pk}.")
    # Delivered again (a retried event): no second routing, no second acknowledgement.
    poll_as_worker(routed_slack)
    assert TicketEvent.objects.filter(kind="routed").count() == 1
    assert len(slack_emulator.bot_messages("C0GENERAL")) == 1


@pytest.mark.django_db
def test_the_acknowledgement_speaks_the_requesters_language_and_names_the_due_time(
    routed_slack, slack_emulator, monkeypatch
):
    """The SLA sets the due time when the ticket is opened (stood in for here): the thread reply names it."""
    slack_emulator.post("C0GENERAL", "U0ANN", "Das WLAN geht nicht")
    poll_as_worker(routed_slack)  # Ann is known from now on
    Contact.objects.update(language="de")
    due = datetime(2026, 12, 5, 13, 0, tzinfo=UTC)

    def route_and_set_due(texts):
        route_new_tickets(texts)
        Ticket.objects.filter(pk__in=texts).update(first_response_due_at=due)

    monkeypatch.setattr("tickets.inbound.route_new_tickets", route_and_set_due)
    slack_emulator.post("C0GENERAL", "U0ANN", "Und das Wi-Fi auch nicht")
    poll_as_worker(routed_slack)
    second = Ticket.objects.order_by("pk").last()
    assert second.team.name == "Network"
    last = slack_emulator.bot_messages("C0GENERAL")[-1]
    assert last["text"] == f"Danke Ann Employee: Ticket #{second.pk}. We aim to answer by 13:00 UTC on 5 Dec."
