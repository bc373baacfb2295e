"""Threading by the ticket a message names (an email subject's ``[#123]``): first, before what it answers, and
only for people who take part in the ticket."""

from dataclasses import replace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels_ingest.models import Channel
from tests.factories import message, sender
from tests.helpers import merge, receive
from tickets.models import Message, Ticket, TicketFollower, TicketThread


def naming(ticket, external_id, *, user="u1", name="Ann Employee", minute=1, **fields):
    """A message of its own conversation (as a new email is) that names ``ticket``."""
    return replace(
        message(external_id, user=user, name=name, minute=minute, text=f"about #{ticket.pk}"),
        ticket_number=ticket.pk,
        **fields,
    )


def conversation_of(external_id):
    return Message.objects.select_related("thread").get(external_id=external_id).thread


@pytest.mark.django_db
def test_the_requester_naming_their_ticket_joins_its_conversation(locmem_channel, ticket):
    receive(locmem_channel, [naming(ticket, "r1")])
    assert Ticket.objects.count() == 1
    assert conversation_of("r1").key == "m0"
    ticket.refresh_from_db()
    assert ticket.message_count == 2


@pytest.mark.django_db
def test_a_stranger_guessing_a_number_opens_a_ticket_of_their_own(locmem_channel, ticket):
    receive(locmem_channel, [naming(ticket, "guess", user="mallory", name="Mallory")])
    assert list(ticket.messages.values_list("external_id", flat=True)) == ["m0"]
    theirs = Ticket.objects.exclude(pk=ticket.pk).get()
    assert theirs.requester.display_name == "Mallory"
    assert conversation_of("guess").key == "guess"


@pytest.mark.django_db
def test_a_follower_naming_the_ticket_joins_it(locmem_channel, ticket):
    receive(locmem_channel, [replace(message("cc", thread="m0", minute=1), copied=(sender("carol", "Carol"),))])
    receive(locmem_channel, [naming(ticket, "c1", user="carol", name="Carol", minute=2)])
    assert Ticket.objects.count() == 1
    assert conversation_of("c1").key == "m0"
    ticket.refresh_from_db()
    assert ticket.requester.display_name == "Ann Employee"


@pytest.mark.django_db
def test_a_number_that_names_no_ticket_is_ignored(locmem_channel, ticket):
    receive(locmem_channel, [replace(message("x1", minute=1), ticket_number=ticket.pk + 1000)])
    assert Ticket.objects.count() == 2


@pytest.mark.django_db
def test_the_number_of_a_merged_ticket_leads_to_the_ticket_it_was_merged_into(locmem_channel, agent, duplicates):
    """Bob names his old ticket, merged into Alice's: his message joins his own conversation there. Alice
    naming Bob's old ticket joins hers. Carol (a stranger to both) opens a ticket of her own."""
    alice, bob, carol = duplicates
    merge(agent, alice, bob)
    receive(
        locmem_channel,
        [
            naming(bob, "b2", user="bob", name="Bob", minute=10),
            naming(bob, "a3", user="alice", name="Alice", minute=11),
            naming(bob, "c2", user="carol", name="Carol", minute=12),
        ],
    )
    assert Message.objects.get(external_id="b2").ticket_id == alice.pk
    assert conversation_of("b2").key == "b1"
    assert Message.objects.get(external_id="a3").ticket_id == alice.pk
    assert conversation_of("a3").key == "a1"
    assert Message.objects.get(external_id="c2").ticket.requester.display_name == "Carol"
    assert Message.objects.get(external_id="c2").ticket_id not in (alice.pk, bob.pk, carol.pk)


@pytest.mark.django_db
def test_a_chain_of_merges_is_followed_to_its_end(locmem_channel, agent, duplicates):
    alice, bob, carol = duplicates
    merge(agent, bob, carol, keep=bob)
    merge(agent, alice, bob, keep=alice)
    receive(locmem_channel, [naming(carol, "c2", user="carol", name="Carol", minute=10)])
    assert Message.objects.get(external_id="c2").ticket_id == alice.pk
    assert conversation_of("c2").key == "c1"


@pytest.mark.django_db
def test_a_ticket_without_a_conversation_on_the_channel_gets_the_messages_own(locmem_channel, ticket):
    """Ann writes on another channel naming her ticket: that conversation joins the ticket, and a second
    message naming it in the same batch joins the same conversation."""
    other = Channel.objects.create(kind="locmem", name="lm2", config={"inbox": "lm2"})
    receive(other, [naming(ticket, "e1", minute=1), naming(ticket, "e2", minute=2)])
    assert Ticket.objects.count() == 1
    thread = TicketThread.objects.get(channel=other)
    assert (thread.ticket_id, thread.key) == (ticket.pk, "e1")
    assert list(thread.messages.order_by("created_at").values_list("external_id", flat=True)) == ["e1", "e2"]
    ticket.refresh_from_db()
    assert ticket.message_count == 3


@pytest.mark.django_db
def test_the_named_ticket_comes_before_the_message_answered(locmem_channel):
    """Ann answers a message of her first ticket but names her second: the number wins. A stranger's number is
    ignored, but what they answer still counts."""
    receive(locmem_channel, [message("one", text="First"), message("two", text="Second", minute=1)])
    first, second = Ticket.objects.order_by("pk")
    receive(
        locmem_channel,
        [
            naming(second, "r1", minute=2, refers_to=("one",)),
            naming(second, "r2", user="mallory", name="Mallory", minute=3, refers_to=("one",)),
        ],
    )
    assert Message.objects.get(external_id="r1").ticket_id == second.pk
    assert Message.objects.get(external_id="r2").ticket_id == first.pk
    assert Ticket.objects.count() == 2


@pytest.mark.django_db
def test_a_batch_of_numbers_answers_and_copies_costs_the_same_queries_for_any_size(locmem_channel):
    """Tickets named, messages answered and people copied: 2 or 12 of each, the same queries."""
    receive(
        locmem_channel,
        [message(f"m{n}", user=f"u{n}", name=f"Person {n}", text=f"Problem {n}", minute=n) for n in range(30)],
    )
    tickets = list(Ticket.objects.order_by("pk"))

    def queries_for(numbers, minute):
        batch = []
        for n in numbers:
            person = {"user": f"u{n}", "name": f"Person {n}", "minute": minute + n}
            batch += [
                naming(tickets[n], f"named{n}", copied=(sender(f"cc{n}", f"Copied {n}"),), **person),
                replace(message(f"answer{n}", **person), refers_to=(f"m{n}",), copied=(sender(f"cc{n}b"),)),
            ]
        with CaptureQueriesContext(connection) as queries:
            receive(locmem_channel, batch)
        return len(queries)

    few = queries_for(range(2), 100)
    assert queries_for(range(2, 14), 200) == few
    assert Ticket.objects.count() == 30
    assert TicketFollower.objects.count() == 28
