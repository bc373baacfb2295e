"""The live poll and the collision check when transactions commit out of id order (PostgreSQL).

Ids are handed out at INSERT but become visible at COMMIT. Here transaction A inserts a message (id N) and
stays open while transaction B inserts N+1 and commits; the page polls, then A commits. Two database
connections (A runs in a thread of its own) make the interleaving exact, not a matter of timing.
"""

import re
import threading

import pytest
from django.db import connection, transaction
from django.urls import reverse

from tests.conftest import receive
from tests.factories import message
from tests.test_live_ticket import banner_place, detail_url, poll, poll_url, reply, seen_of, text_of
from tickets.models import Message, Ticket
from tickets.replies import reply_to_ticket

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers: no such interleaving"),
]


@pytest.fixture
def ticket(locmem_channel):
    receive(locmem_channel, [message("m0", text="The printer is on fire")])
    return Ticket.objects.get()


class OpenTransaction:
    """Transaction A, on a connection of its own: inserts a requester's message and waits to be told to commit."""

    def __init__(self, ticket, body):
        self.ticket, self.body = ticket, body
        self.inserted, self.release = threading.Event(), threading.Event()
        self.message_id = None
        self.error = None
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        first = self.ticket.messages.get()
        try:
            with transaction.atomic():
                self.message_id = Message.objects.create(
                    ticket_id=self.ticket.pk,
                    thread_id=first.thread_id,
                    direction=Message.Direction.INBOUND,
                    author_identity_id=first.author_identity_id,
                    body=self.body,
                ).pk
                self.inserted.set()
                assert self.release.wait(timeout=20), "never told to commit"
        except BaseException as exc:
            self.error = exc
        finally:
            self.inserted.set()
            connection.close()

    def __enter__(self):
        self.thread.start()
        assert self.inserted.wait(timeout=20) and self.message_id, self.error
        return self

    def commit(self):
        self.release.set()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive() and self.error is None, self.error

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(timeout=20)


def entry_ids(html):
    return re.findall(r'<li id="(message-\d+)"', html)


def test_a_message_committed_after_a_newer_one_was_polled_still_shows_and_holds_a_reply_back(
    agent_client, other_agent, ticket
):
    page = agent_client.get(detail_url(ticket)).content.decode()

    with OpenTransaction(ticket, "Sent first, committed last") as late:
        newer = reply_to_ticket(ticket=ticket, author=other_agent, body="Committed first")  # B: commits at once
        assert newer.pk > late.message_id

        first = poll(agent_client, poll_url(page), **seen_of(page)).content.decode()
        assert entry_ids(first) == [f"message-{newer.pk}"]  # A's message is not visible yet
        # The agent reads the banner ("I have read these"): the composer's place moves to this poll's.
        composer = banner_place(first)
        late.commit()

    second = poll(agent_client, poll_url(first), **composer)
    assert second.status_code == 200
    html = second.content.decode()
    assert entry_ids(html) == [f"message-{late.message_id}"]  # shown now, and the newer one not again
    assert "Changed while you were writing: Ann Employee wrote: Sent first, committed last" in text_of(html)
    assert poll(agent_client, poll_url(html)).status_code == 204

    # Sending with the place the composer had before the late message showed is held back, listing it.
    held = reply(agent_client, ticket, composer, body="Glad it works")
    assert held.status_code == 409
    assert "Ann Employee wrote: Sent first, committed last" in text_of(held.content.decode())
    assert not Message.objects.filter(body="Glad it works").exists()


def test_the_page_itself_counts_only_what_it_could_see(agent_client, other_agent, ticket):
    """A page rendered while A is open starts after B's message; A's message comes with the first poll."""
    with OpenTransaction(ticket, "Still being stored") as late:
        reply_to_ticket(ticket=ticket, author=other_agent, body="Already stored")
        page = agent_client.get(detail_url(ticket)).content.decode()
        assert f'id="message-{late.message_id}"' not in page
        assert poll(agent_client, poll_url(page)).status_code == 204
        late.commit()

    html = poll(agent_client, poll_url(page)).content.decode()
    assert entry_ids(html) == [f"message-{late.message_id}"]
    assert reverse("console:ticket-live", args=[ticket.pk]) in poll_url(html)
