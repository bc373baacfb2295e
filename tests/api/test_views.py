"""The REST API: token auth, agent-only access, ticket list and detail, replies, schema.

Uses ``agent``, ``employee`` and ``locmem_channel`` from conftest, where Celery runs eagerly and the
locmem adapter is reset for every test.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from channel_adapters import locmem
from tests.factories import BASE_TIME, message
from tests.helpers import (
    open_tickets,
    queries_for,
    receive,
)
from tickets.models import Category, Message, Ticket, TicketEvent
from tickets.replies import reply_to_ticket


def api_detail_url(ticket):
    return reverse("api:ticket-detail", args=[ticket.pk])


def api_reply_url(ticket):
    return reverse("api:ticket-reply", args=[ticket.pk])


def token_client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


TICKET_FIELDS = {
    *("impact", "urgency", "category", "category_id", "service"),
    "id",
    "subject",
    "status",
    "priority",
    "kind",
    "channel",
    "requester",
    "assignee",
    "created_at",
    "last_activity_at",
    "message_count",
}


@pytest.fixture
def api(agent):
    return token_client(agent)


MESSAGE_FIELDS = {
    "id",
    "direction",
    "author",
    "body",
    "created_at",
    "edited_at",
    "deleted_at",
    "delivery_status",
    "delivery_error",
    "delivery_attempts",
}


def conversation(channel, agent, size):
    """A ticket with ``size`` messages: inbound from two people, then agent replies."""
    inbound = range(size - size // 3)
    receive(
        channel,
        [message(f"m{n}", thread="m0", user=f"u{n % 2}", name=f"Person {n % 2}", minute=n) for n in inbound],
    )
    ticket = Ticket.objects.get()
    for n in range(size // 3):
        reply_to_ticket(ticket=ticket, author=agent, body=f"reply {n}")
    assert ticket.messages.count() == size
    return ticket


def test_token_from_credentials_authenticates(agent, ticket):
    """An agent exchanges username and password for a token, which then authenticates API calls."""
    credentials = {"username": "agent", "password": "agent-pass-123"}
    response = APIClient().post(reverse("api-token"), credentials, format="json")
    assert response.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get(reverse("api:ticket-list")).status_code == 200


@pytest.mark.django_db
def test_anonymous_is_unauthorized():
    """Without credentials the API answers 401 and names the Token scheme."""
    response = APIClient().get(reverse("api:ticket-list"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_employee_is_forbidden(employee, ticket):
    """Authenticated non-agents get 403 everywhere, and cannot reply."""
    client = token_client(employee)
    assert client.get(reverse("api:ticket-list")).status_code == 403
    assert client.get(api_detail_url(ticket)).status_code == 403
    assert client.post(api_reply_url(ticket), {"body": "hi"}, format="json").status_code == 403
    assert not ticket.messages.filter(direction=Message.Direction.OUTBOUND).exists()


def test_list_shape_and_order(api, locmem_channel):
    """Tickets come newest activity first, with channel, requester and assignee summarized."""
    open_tickets(locmem_channel, 2)
    older, newer = Ticket.objects.order_by("id")
    Ticket.objects.filter(pk=older.pk).update(last_activity_at=BASE_TIME + timedelta(hours=1))
    body = api.get(reverse("api:ticket-list")).json()
    assert set(body) == {"next", "previous", "results"}
    assert [t["id"] for t in body["results"]] == [older.pk, newer.pk]
    item = body["results"][0]
    assert set(item) == TICKET_FIELDS
    assert item["channel"] == {"id": locmem_channel.pk, "name": "lm", "kind": "locmem"}
    assert item["requester"] == {"id": older.requester_id, "display_name": "Person 0"}
    assert item["assignee"] is None
    assert (item["subject"], item["status"], item["priority"], item["kind"]) == ("Problem 0", "new", 2, "incident")
    assert item["message_count"] == 1


def test_list_status_filter_and_assignee(api, agent, locmem_channel):
    """?status= narrows the list to one status; an assigned ticket names its agent."""
    open_tickets(locmem_channel, 2)
    pending, _ = Ticket.objects.order_by("id")
    Ticket.objects.filter(pk=pending.pk).update(status=Ticket.Status.PENDING, assignee=agent)
    results = api.get(reverse("api:ticket-list"), {"status": "pending"}).json()["results"]
    assert [(t["id"], t["assignee"]) for t in results] == [(pending.pk, "agent")]


def test_list_pages_with_a_cursor(api, locmem_channel):
    """Pages hold 50 tickets; the next cursor leads to the rest, with no ticket twice."""
    open_tickets(locmem_channel, 60)
    first = api.get(reverse("api:ticket-list")).json()
    second = api.get(first["next"]).json()
    ids = [t["id"] for t in first["results"] + second["results"]]
    assert len(first["results"]) == 50
    assert second["next"] is None
    assert sorted(ids) == sorted(Ticket.objects.values_list("id", flat=True))


def test_list_query_count_does_not_grow(api, locmem_channel):
    """Listing 60 tickets (a full page) takes exactly as many queries as listing 5."""
    open_tickets(locmem_channel, 5)
    few = queries_for(api, reverse("api:ticket-list"))
    open_tickets(locmem_channel, 55, first=100)
    assert queries_for(api, reverse("api:ticket-list")) == few


def test_detail_shape(api, agent, locmem_channel):
    """A ticket's detail adds its messages in timeline order, with author names and delivery state."""
    ticket = conversation(locmem_channel, agent, 3)
    body = api.get(api_detail_url(ticket)).json()
    assert set(body) == TICKET_FIELDS | {"messages", "priority_overridden", "problem"}
    assert [set(m) for m in body["messages"]] == [MESSAGE_FIELDS] * 3
    assert [(m["direction"], m["author"], m["delivery_status"]) for m in body["messages"]] == [
        ("inbound", "Person 0", ""),
        ("inbound", "Person 1", ""),
        ("outbound", "Alex Agent", "queued"),
    ]


def test_detail_query_count_does_not_grow(api, agent, locmem_channel):
    """A ticket's detail takes exactly as many queries with 40 messages as with 3."""
    small = conversation(locmem_channel, agent, 3)
    few = queries_for(api, api_detail_url(small))
    Ticket.objects.all().delete()
    large = conversation(locmem_channel, agent, 40)
    assert queries_for(api, api_detail_url(large)) == few


def test_reply_is_created_and_delivered(api, ticket, django_capture_on_commit_callbacks):
    """A reply answers 201 with the queued message, which is sent through the channel once committed."""
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(api_reply_url(ticket), {"body": "  On it.  "}, format="json")
    assert response.status_code == 201
    message = response.json()
    assert set(message) == MESSAGE_FIELDS
    assert (message["direction"], message["author"], message["body"]) == ("outbound", "Alex Agent", "On it.")
    assert message["delivery_status"] == "queued"
    assert Message.objects.get(pk=message["id"]).delivery_status == Message.DeliveryStatus.SENT
    assert locmem.outbox == [{"thread_key": "m0", "text": "On it."}]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"body": "   "}, "This field may not be blank."),
        ({}, "This field is required."),
        ({"body": "x" * 1001}, "The reply is 1001 characters; this channel takes at most 1000."),
    ],
)
def test_reply_refused_with_400(api, ticket, body, error):
    """A blank, missing or too long reply answers 400 with the reason under "body", and stores nothing."""
    response = api.post(api_reply_url(ticket), body, format="json")
    assert response.status_code == 400
    assert response.json() == {"body": [error]}
    assert not ticket.messages.filter(direction=Message.Direction.OUTBOUND).exists()


def test_schema_describes_the_endpoints_to_agents(agent):
    """The OpenAPI schema is served to agents and lists the ticket endpoints."""
    response = token_client(agent).get(reverse("api:schema"))
    assert response.status_code == 200
    schema = response.content.decode()
    assert "/api/tickets/{id}/reply/:" in schema
    assert "/api/auth/token/:" in schema


def test_the_schema_needs_an_agent(employee):
    """The schema maps every endpoint and field: not for anonymous visitors, nor for employees."""
    assert APIClient().get(reverse("api:schema")).status_code == 401
    assert token_client(employee).get(reverse("api:schema")).status_code == 403


def test_an_agent_changes_a_tickets_fields_with_the_consoles_rules(api, agent, colleague, ticket):
    """Impact and urgency set the priority from the matrix; a priority of one's own needs a reason; each change is
    an event on the timeline, by the token's agent."""
    network = Category.objects.create(name="Network")
    response = api.patch(
        api_detail_url(ticket),
        {"kind": "incident", "category_id": network.pk, "impact": 1, "urgency": 1, "status": "open",
         "assignee": colleague.username},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200
    body = response.json()
    assert (body["category"], body["priority"], body["status"], body["assignee"]) == (
        "Network",
        Ticket.Priority.URGENT,
        "open",
        colleague.username,
    )
    assert set(body) >= TICKET_FIELDS
    kinds = set(TicketEvent.objects.filter(ticket=ticket, actor=agent).values_list("kind", flat=True))
    assert kinds >= {"category", "impact", "urgency", "priority", "status", "assignee"}

    refused = api.patch(api_detail_url(ticket), {"priority": Ticket.Priority.LOW}, format="json")
    assert refused.status_code == 400
    assert "Say why" in refused.json()["non_field_errors"][0]
    api.patch(api_detail_url(ticket), {"priority": Ticket.Priority.LOW, "priority_reason": "Test rig"}, format="json")
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.priority_overridden) == (Ticket.Priority.LOW, True)
    assert TicketEvent.objects.filter(ticket=ticket, kind="priority").latest("pk").reason == "Test rig"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"assignee": "nobody"}, "assignee"),
        ({"category_id": 999999}, "category_id"),
        ({"impact": 7}, "impact"),
    ],
)
def test_a_refused_change_says_why_and_changes_nothing(api, ticket, change, field):
    response = api.patch(api_detail_url(ticket), {"kind": "problem", **change}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not TicketEvent.objects.filter(ticket=ticket).exists()


def test_a_change_the_domain_refuses_changes_nothing_at_all(api, employee, ticket):
    """All or nothing: the type would change, but the assignee is no agent, so neither does."""
    response = api.patch(api_detail_url(ticket), {"kind": "problem", "assignee": employee.username}, format="json")
    assert response.status_code == 400
    assert "is not an agent" in response.json()["non_field_errors"][0]
    ticket.refresh_from_db()
    assert ticket.kind == Ticket.Kind.INCIDENT
    assert not TicketEvent.objects.filter(ticket=ticket).exists()


def test_employees_cannot_change_tickets(employee, ticket):
    response = token_client(employee).patch(api_detail_url(ticket), {"status": "closed"}, format="json")
    assert response.status_code == 403
