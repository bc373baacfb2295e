"""Internal notes: agents write them on the ticket page; they stay in the timeline and are never delivered.

Uses ``agent``, ``employee`` and ``locmem_channel`` from conftest.
"""

import pytest
from django.db import transaction
from django.urls import reverse

from channel_adapters import locmem
from tests.factories import message
from tickets.inbound import receive_batch
from tickets.models import Message, Ticket
from tickets.replies import ReplyError, add_note


@pytest.fixture
def ticket(locmem_channel):
    with transaction.atomic():
        receive_batch(channel=locmem_channel, envelopes=[message("m0", text="The printer is on fire")])
    return Ticket.objects.get()


def note_url(ticket):
    return reverse("console:ticket-note", args=[ticket.pk])


def detail_url(ticket):
    return reverse("console:ticket-detail", args=[ticket.pk])


def test_add_note_stores_a_note_without_delivery(ticket, agent):
    before = Ticket.objects.get(pk=ticket.pk)
    note = add_note(ticket=ticket, author=agent, body="  Printer is under warranty  ")

    assert note.direction == Message.Direction.NOTE
    assert note.body == "Printer is under warranty"
    assert note.thread is None
    assert note.delivery_status == ""
    assert note.author_user == agent
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.message_count == before.message_count + 1
    assert ticket.last_activity_at >= before.last_activity_at
    assert ticket.status == before.status  # a note answers nobody: a new ticket stays new
    assert locmem.outbox == []


@pytest.mark.parametrize("body", ["", "   \n "])
def test_an_empty_note_is_refused(ticket, agent, body):
    with pytest.raises(ReplyError):
        add_note(ticket=ticket, author=agent, body=body)
    assert not Message.objects.filter(direction=Message.Direction.NOTE).exists()


def test_agent_posts_a_note_shown_as_internal_and_never_sent(client, agent, ticket):
    client.force_login(agent)
    response = client.post(note_url(ticket), {"body": "Ordered a new one\r\nfrom IT"}, follow=True)

    assert response.status_code == 200
    note = Message.objects.get(direction=Message.Direction.NOTE)
    assert note.body == "Ordered a new one\nfrom IT"
    assert locmem.outbox == []
    html = response.content.decode()
    assert "Internal note added." in html
    assert f'id="message-{note.pk}" class="message message-note' in html
    assert "Internal note" in html
    assert "Ordered a new one" in html
    assert html.count('class="delivery-status"') == 0  # no delivery badge on a note


def test_a_note_is_escaped(client, agent, ticket):
    client.force_login(agent)
    client.post(note_url(ticket), {"body": '<script>alert("x")</script><b>bold</b>'})
    html = client.get(detail_url(ticket)).content.decode()
    assert "<script>alert" not in html
    assert "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in html


def test_an_empty_note_shows_an_error(client, agent, ticket):
    client.force_login(agent)
    response = client.post(note_url(ticket), {"body": "  "}, follow=True)
    assert "A note needs some text." in response.content.decode()
    assert not Message.objects.filter(direction=Message.Direction.NOTE).exists()


def test_the_composer_offers_reply_or_internal_note(client, agent, ticket):
    client.force_login(agent)
    html = client.get(detail_url(ticket)).content.decode()
    assert 'id="composer-kind-reply"' in html
    assert 'id="composer-kind-note"' in html
    assert f'formaction="{note_url(ticket)}"' in html
    assert "Send reply" in html
    assert "Add internal note" in html


def test_employee_cannot_add_a_note(client, employee, ticket):
    client.force_login(employee)
    assert client.post(note_url(ticket), {"body": "sneaky"}).status_code == 403
    assert not Message.objects.filter(direction=Message.Direction.NOTE).exists()


def test_anonymous_is_sent_to_login_and_get_is_refused(client, agent, ticket):
    response = client.post(note_url(ticket), {"body": "hello"})
    assert response.status_code == 302
    assert "/login/" in response["Location"]
    client.force_login(agent)
    assert client.get(note_url(ticket)).status_code == 405
    assert not Message.objects.filter(direction=Message.Direction.NOTE).exists()


def test_csrf_is_required(agent, ticket):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.post(note_url(ticket), {"body": "hello"}).status_code == 403
    assert not Message.objects.filter(direction=Message.Direction.NOTE).exists()
