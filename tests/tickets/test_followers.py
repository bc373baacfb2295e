"""Followers: the people a message was copied to (an email's Cc) follow its ticket, receive its replies, and
their own replies join it."""

from dataclasses import replace

import pytest

from channel_adapters import locmem
from tests.factories import message, sender
from tests.helpers import merge, poll_and_ingest, receive, reply_and_deliver
from tickets.models import Message, Ticket, TicketFollower
from tickets.replies import reply_target


def copying(external_id, *people, **fields):
    return replace(message(external_id, **fields), copied=tuple(people))


def followers_of(ticket):
    return sorted(TicketFollower.objects.filter(ticket=ticket).values_list("identity__external_id", flat=True))


CAROL = sender("carol", "Carol")
DAN = sender("dan", "Dan")


@pytest.mark.django_db
def test_the_people_copied_follow_the_ticket_once_and_the_requester_never(locmem_channel):
    """Ann copies Carol, Dan and herself; the same message delivered again and a later one copying Carol again
    add nobody twice."""
    locmem.inbox["lm"] = [copying("a", CAROL, DAN, sender("u1"))]
    poll_and_ingest(locmem_channel)
    ticket = Ticket.objects.get()
    locmem.inbox["lm"] += [copying("a", CAROL, DAN), copying("a.1", CAROL, thread="a", minute=1)]
    poll_and_ingest(locmem_channel)
    assert followers_of(ticket) == ["carol", "dan"]
    assert ticket.messages.count() == 2


@pytest.mark.django_db
def test_a_reply_goes_to_the_followers_on_the_recipients_platform(locmem_channel, agent):
    receive(locmem_channel, [copying("a", CAROL, DAN, sender("200", "Xavier", namespace="x"))])
    ticket = Ticket.objects.get()
    target = reply_target(ticket.threads.get())
    assert target.recipient == "u1"
    assert sorted(target.followers) == ["carol", "dan"]


@pytest.mark.django_db
def test_a_followers_reply_joins_the_ticket_and_everyone_else_gets_the_answer(locmem_channel, agent):
    """Carol answers our reply from her own mail: her message joins Ann's ticket, Ann stays the requester, and
    the next reply goes to Carol with Ann and Dan as followers."""
    receive(locmem_channel, [copying("a", CAROL, DAN)])
    ticket = Ticket.objects.get()
    ours = reply_and_deliver(ticket, agent, "Which printer?")
    receive(
        locmem_channel, [replace(message("c1", user="carol", name="Carol", minute=5), refers_to=(ours.external_id,))]
    )
    assert Message.objects.get(external_id="c1").ticket_id == ticket.pk
    assert Ticket.objects.count() == 1
    ticket.refresh_from_db()
    assert ticket.requester.display_name == "Ann Employee"
    target = reply_target(ticket.threads.get())
    assert target.recipient == "carol"
    assert sorted(target.followers) == ["dan", "u1"]


@pytest.mark.django_db
def test_a_merge_hands_the_followers_to_the_kept_ticket(locmem_channel, agent):
    receive(
        locmem_channel,
        [
            copying("a", CAROL, minute=0),
            copying("b", CAROL, DAN, sender("u1"), user="bob", name="Bob", minute=1),
        ],
    )
    ann, bob = Ticket.objects.order_by("pk")
    merge(agent, ann, bob)
    assert followers_of(ann) == ["carol", "dan"]
    assert not TicketFollower.objects.filter(ticket=bob).exists()
