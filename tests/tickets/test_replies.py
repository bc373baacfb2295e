"""Replies and internal notes as the domain stores them."""

import pytest

from channel_adapters import locmem
from tickets.models import Message, Ticket, TicketEvent
from tickets.replies import ReplyError, add_note, reply_to_ticket


@pytest.mark.django_db
def test_blank_or_overlong_reply_is_refused(ticket, agent):
    """Replies are validated against the channel's limit before anything is stored."""
    with pytest.raises(ReplyError):
        reply_to_ticket(ticket=ticket, author=agent, body="   ")
    with pytest.raises(ReplyError, match="at most 1000"):
        reply_to_ticket(ticket=ticket, author=agent, body="x" * 1001)
    assert not Message.objects.filter(direction=Message.Direction.OUTBOUND).exists()


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


def test_the_first_reply_opens_a_new_ticket_on_the_timeline(ticket, agent):
    """New → open is a status change like any other: the timeline says who made it, and why."""
    reply_to_ticket(ticket=ticket, author=agent, body="On my way")
    reply_to_ticket(ticket=ticket, author=agent, body="Is it out now?")
    [event] = TicketEvent.objects.filter(ticket=ticket)
    assert (event.kind, event.old_value, event.new_value) == ("status", "new", "open")
    assert (event.actor, event.actor_name, event.reason) == (agent, "Alex Agent", "replied")
    assert Ticket.objects.get(pk=ticket.pk).status == "open"


def test_an_automatic_acknowledgement_opens_the_ticket_as_the_system(ticket):
    reply_to_ticket(ticket=ticket, author=None, body=f"Thanks, this is ticket #{ticket.pk}")
    [event] = TicketEvent.objects.filter(ticket=ticket)
    assert (event.old_value, event.new_value) == ("new", "open")
    assert (event.actor, event.actor_name, event.reason) == (None, "System", "automatic acknowledgement")


@pytest.mark.django_db
def test_a_reply_without_a_mode_where_none_is_allowed_says_why(ticket, agent, locmem_channel):
    """The requester wrote two days ago; a 24-hour window is closed: the refusal names the rule, not "no way"."""
    locmem_channel.config["window_hours"] = 24
    locmem_channel.save(update_fields=["config"])
    with pytest.raises(ReplyError, match=r"^Reply is not possible here: .*24"):
        reply_to_ticket(ticket=ticket, author=agent, body="Hello again")


def test_the_first_answer_by_a_person_is_the_tickets_first_response(ticket, agent):
    assert ticket.first_responded_at is None
    first = reply_to_ticket(ticket=ticket, author=agent, body="Looking into it")
    reply_to_ticket(ticket=ticket, author=agent, body="Fixed?")
    ticket.refresh_from_db()
    assert ticket.first_responded_at == first.created_at


def test_an_automatic_acknowledgement_is_not_a_first_response(ticket):
    reply_to_ticket(ticket=ticket, author=None, body="We got your message")
    ticket.refresh_from_db()
    assert ticket.first_responded_at is None
    assert ticket.status == Ticket.Status.OPEN
