"""The live ticket page: the timeline poll and presence."""

import html as html_lib
import logging
import re
import threading
import time

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from channel_adapters.base import DeliveryReport
from channels_ingest.delivery import retry_delivery
from console.timeline import LIVE_BATCH
from tests.factories import deletion, delivery_report, edit, reaction
from tests.helpers import (
    detail_url,
    post_reply,
    queries_for,
    receive,
    reply_and_deliver,
    requester_writes,
    seen_of,
    text_of,
)
from tickets.models import Message, Ticket, TicketEvent
from tickets.replies import add_note, reply_to_ticket
from tickets.updates import update_ticket


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
        except BaseException as exc:  # noqa: BLE001 - whatever stopped the thread is re-raised by the test
            self.error = exc
        finally:
            self.inserted.set()
            connection.close()

    def __enter__(self):
        self.thread.start()
        assert self.inserted.wait(timeout=20), "the insert never ran"
        assert self.message_id, self.error
        return self

    def commit(self):
        self.release.set()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "the transaction never committed"
        assert self.error is None, self.error

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(timeout=20)


def entry_ids(html):
    return re.findall(r'<li id="(message-\d+)"', html)


def poll_url(html):
    """The live poller's URL in a page or a poll answer: it carries the place the page has reached."""
    found = re.search(r'id="live-poller" hidden\s+hx-get="([^"]+)"', html)
    assert found, "no live poller"
    return html_lib.unescape(found.group(1))


def poll(client, url, **params):
    """The poller's GET; ``params`` (the composer's place, which htmx includes) are added to its query."""
    query = "&".join(f"{name}={value}" for name, value in params.items())
    separator = "&" if "?" in url else "?"
    return client.get(url + (separator + query if query else ""), headers={"HX-Request": "true"})


def oob_entry(html, message):
    """The message's timeline entry sent out of band (swapped in place by its id), or None. Up to its own
    closing tag: the lists inside it (files, reactions) have items of their own."""
    start = re.search(rf'<li id="message-{message.pk}"[^>]*hx-swap-oob="true"[^>]*>', html)
    if start is None:
        return None
    depth = 1
    for tag in re.finditer(r"<(/?)li\b[^>]*>", html[start.end() :]):
        depth += -1 if tag.group(1) else 1
        if depth == 0:
            return html[start.start() : start.end() + tag.end()]
    raise AssertionError(f"message-{message.pk}'s entry is not closed")


@pytest.fixture
def dana_client(other_agent):
    client = Client()
    client.force_login(other_agent)
    return client


def beat(client, ticket, **data):
    return client.post(reverse("console:ticket-presence", args=[ticket.pk]), data)


def banner_place(html):
    """The place the live banner's "I have read these" gives the composer (console.js copies data-seen-X to seen_X)."""
    place = {f"seen_{name}": value for name, value in re.findall(r'data-seen-(\w+)="([^"]*)"', html)}
    assert place, "no live banner"
    return place


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres  # SQLite serialises writers: no such interleaving
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
    held = post_reply(agent_client, ticket, composer, body="Glad it works")
    assert held.status_code == 409
    assert "Ann Employee wrote: Sent first, committed last" in text_of(held.content.decode())
    assert not Message.objects.filter(body="Glad it works").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres  # SQLite serialises writers: no such interleaving
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


def test_poll_returns_only_entries_stored_after_the_page(agent_client, other_agent, ticket, locmem_channel):
    """New messages (inbound, another agent's reply and note) and events come back once, with the header facts."""
    page = agent_client.get(detail_url(ticket)).content.decode()
    url = poll_url(page)
    first = ticket.messages.get()
    assert poll(agent_client, url).status_code == 204

    new_inbound = requester_writes(locmem_channel, "m1", "Now it smells of smoke")
    dana_reply = reply_to_ticket(ticket=ticket, author=other_agent, body="Evacuate, please")
    dana_note = add_note(ticket=ticket, author=other_agent, body="Called facilities")
    update_ticket(ticket=ticket, actor=other_agent, status="pending", assignee=other_agent)

    response = poll(agent_client, url)
    assert response.status_code == 200
    html = response.content.decode()
    ids = re.findall(r'<li id="((?:message|event)-\d+)"', html)
    events = list(TicketEvent.objects.order_by("id"))
    assert len(events) == 3  # her reply opened the ticket, then she set its status and assignee
    assert sorted(ids) == sorted(
        [f"message-{m.pk}" for m in (new_inbound, dana_reply, dana_note)] + [f"event-{e.pk}" for e in events]
    )
    assert f"message-{first.pk}" not in html
    text = text_of(html)
    assert "Now it smells of smoke" in text
    assert "Evacuate, please" in text
    assert "Called facilities" in text
    assert "Status New → Open · Dana Desk (replied)" in text
    assert "Status Open → Pending (waiting on requester) · Dana Desk" in text
    # Out of band: the header facts and the actions form (the ticket's state changed), and the poller moved on.
    assert 'id="ticket-facts" hx-swap-oob="true"' in html
    assert "Pending (waiting on requester)" in html
    assert 'id="ticket-actions" hx-swap-oob="true"' in html
    # The reply's delivery badge keeps polling, as on the page.
    assert reverse("console:message-status", args=[dana_reply.pk]) in html
    moved = poll_url(html)
    assert moved != url
    assert poll(agent_client, moved).status_code == 204  # nothing new since: nothing sent twice


def test_actions_form_is_swapped_only_when_the_ticket_state_changed(agent_client, ticket, locmem_channel):
    url = poll_url(agent_client.get(detail_url(ticket)).content.decode())
    requester_writes(locmem_channel, "m1", "Any news?")
    html = poll(agent_client, url).content.decode()
    assert "Any news?" in html
    assert 'id="ticket-facts" hx-swap-oob="true"' in html
    assert 'id="ticket-actions"' not in html  # a half-made choice in the form is not reset by a new message


def test_poll_costs_the_same_queries_for_one_or_many_new_entries(agent_client, other_agent, ticket, locmem_channel):
    page = agent_client.get(detail_url(ticket)).content.decode()
    url = poll_url(page) + "".join(f"&{name}={value}" for name, value in seen_of(page).items())

    with CaptureQueriesContext(connection) as idle:
        assert poll(agent_client, url).status_code == 204
    # Session and user (the agent check's groups), then one query: the ticket, with an EXISTS per table.
    assert len(idle) == 4, [q["sql"] for q in idle]
    assert "EXISTS" in idle[-1]["sql"]

    # One new message and one change (which also re-renders the actions form) ...
    requester_writes(locmem_channel, "m1", "one")
    update_ticket(ticket=ticket, actor=other_agent, priority=4)
    one = queries_for(agent_client, url)
    # ... cost the same as many.
    for n in range(2, 30):
        requester_writes(locmem_channel, f"m{n}", f"message {n}", minute=n)
        update_ticket(ticket=ticket, actor=other_agent, priority=3 if n % 2 else 1)
    assert queries_for(agent_client, url) == one


def test_poll_with_many_new_entries_brings_them_in_batches(agent_client, ticket):
    url = poll_url(agent_client.get(detail_url(ticket)).content.decode())
    Message.objects.bulk_create(
        [Message(ticket=ticket, direction=Message.Direction.NOTE, body=f"note {n}") for n in range(LIVE_BATCH + 5)]
    )
    first = poll(agent_client, url).content.decode()
    assert first.count('class="message message-note') == LIVE_BATCH
    second = poll(agent_client, poll_url(first)).content.decode()
    assert second.count('class="message message-note') == 5
    assert poll(agent_client, poll_url(second)).status_code == 204


def test_poll_refuses_a_malformed_place_and_needs_an_agent(agent_client, employee, ticket):
    url = reverse("console:ticket-live", args=[ticket.pk])
    assert poll(agent_client, url, messages="9" * 18, events="9" * 18).status_code == 204  # past everything
    for malformed in ("x", "1-", "1-2", "1-2.x", "-1", "1.2", "9" * 19):
        assert poll(agent_client, url, messages=malformed, events="0").status_code == 400, malformed
    assert poll(agent_client, url, messages="1").status_code == 400
    assert poll(agent_client, url, message="0", event="0").status_code == 400  # a page from before write marks
    client = Client()
    client.force_login(employee)
    assert poll(client, url, messages="0", events="0").status_code == 403


def test_page_escapes_changes_and_message_text_in_the_poll(agent_client, ticket, locmem_channel):
    page = agent_client.get(detail_url(ticket)).content.decode()
    requester_writes(locmem_channel, "m1", "<script>alert(1)</script>")
    html = poll(agent_client, poll_url(page), **seen_of(page)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # the timeline entry and the banner


def test_an_edit_and_a_deletion_of_a_shown_message_are_swapped_in_place(agent_client, ticket, locmem_channel):
    page = agent_client.get(detail_url(ticket)).content.decode()
    first = ticket.messages.get()
    assert poll(agent_client, poll_url(page)).status_code == 204

    receive(locmem_channel, [edit("m0", "The printer is fine, sorry")])
    html = poll(agent_client, poll_url(page)).content.decode()
    entry = oob_entry(html, first)
    assert entry
    assert "The printer is fine, sorry" in entry
    assert ">edited<" in entry
    assert html.count(f'id="message-{first.pk}"') == 1  # replaced where it is, not appended again
    assert 'id="ticket-facts"' in html  # the rest of a live answer comes along as usual
    url = poll_url(html)
    assert poll(agent_client, url).status_code == 204  # sent once

    receive(locmem_channel, [deletion("m0")])
    html = poll(agent_client, url).content.decode()
    entry = oob_entry(html, first)
    assert entry
    assert "is-deleted" in entry
    assert ">deleted<" in entry
    assert poll(agent_client, poll_url(html)).status_code == 204


def test_an_edited_message_the_page_has_not_seen_yet_is_appended_once(agent_client, ticket, locmem_channel):
    url = poll_url(agent_client.get(detail_url(ticket)).content.decode())
    new = requester_writes(locmem_channel, "m1", "Typo hre")
    receive(locmem_channel, [edit("m1", "Typo here", minute=5)])
    html = poll(agent_client, url).content.decode()
    assert html.count(f'id="message-{new.pk}"') == 1
    assert not oob_entry(html, new)
    assert "Typo here" in html
    assert "Typo hre" not in html


def test_a_failed_reply_retried_by_another_agent_shows_its_new_state(agent_client, agent, other_agent, ticket):
    failed = reply_to_ticket(ticket=ticket, author=agent, body="Try a restart")
    Message.objects.filter(pk=failed.pk).update(delivery_status="failed", delivery_error="channel_not_found")
    page = agent_client.get(detail_url(ticket)).content.decode()
    status_url = reverse("console:message-status", args=[failed.pk])
    assert status_url not in page  # a failed badge does not poll
    assert poll(agent_client, poll_url(page)).status_code == 204

    assert retry_delivery(Message.objects.get(pk=failed.pk))  # Dana's Retry (on_commit never runs: stays queued)
    html = poll(agent_client, poll_url(page)).content.decode()
    entry = oob_entry(html, failed)
    assert entry
    assert "delivery-queued" in entry
    assert status_url in entry
    assert "channel_not_found" not in entry or "Retry" not in text_of(entry)
    assert poll(agent_client, poll_url(html)).status_code == 204


def test_poll_queries_stay_the_same_with_edits_and_retries(agent_client, agent, other_agent, ticket, locmem_channel):
    page = agent_client.get(detail_url(ticket)).content.decode()
    url = poll_url(page) + "".join(f"&{name}={value}" for name, value in seen_of(page).items())

    def news(n):
        """A new message, an edit, and another agent's reply that failed and was retried."""
        requester_writes(locmem_channel, f"m{n}", f"message {n}", minute=n)
        receive(locmem_channel, [edit(f"m{n - 1}", f"message {n - 1}, edited", minute=n)])
        reply = reply_to_ticket(ticket=ticket, author=other_agent, body=f"reply {n}")
        Message.objects.filter(pk=reply.pk).update(delivery_status="failed")
        retry_delivery(Message.objects.get(pk=reply.pk))

    news(1)
    one = queries_for(agent_client, url)
    for n in range(2, 12):
        news(n)
    assert queries_for(agent_client, url) == one


def test_presence_shows_the_other_agent_and_what_they_type(agent_client, dana_client, ticket):
    assert text_of(beat(agent_client, ticket).content.decode()) == ""  # alone: nobody listed, not even me

    beat(dana_client, ticket)
    assert "Dana Desk is viewing" in text_of(beat(agent_client, ticket).content.decode())
    assert "Alex Agent is viewing" in text_of(beat(dana_client, ticket).content.decode())

    beat(dana_client, ticket, state="typing", kind="reply")
    html = beat(agent_client, ticket).content.decode()
    assert "Dana Desk is typing a reply…" in text_of(html)
    assert "Alex" not in html

    beat(dana_client, ticket, state="typing", kind="note")
    assert "Dana Desk is writing an internal note…" in text_of(beat(agent_client, ticket).content.decode())

    # The page sends the digest of what it shows: no change, no body.
    digest = re.search(r'data-presence-digest="(\w+)"', html).group(1)
    beat(dana_client, ticket, state="typing", kind="reply")
    assert beat(agent_client, ticket, shown=digest).status_code == 204

    # Presence is per ticket.
    other = Ticket.objects.create(subject="Other", requester=ticket.requester)
    assert text_of(beat(agent_client, other).content.decode()) == ""


def test_leaving_removes_presence_at_once(agent_client, dana_client, ticket):
    beat(dana_client, ticket)
    assert "Dana Desk" in beat(agent_client, ticket).content.decode()
    assert dana_client.post(reverse("console:ticket-presence-leave", args=[ticket.pk])).status_code == 204
    assert "Dana Desk" not in beat(agent_client, ticket).content.decode()


def test_presence_is_off_while_the_cache_is_down(agent_client, ticket, dead_cache, caplog):
    """Defect 4: the heartbeat still answers, saying presence is unavailable; the next heartbeat that shows
    the same gets a 204, and leaving answers as usual. One warning per request, no traceback."""
    response = beat(agent_client, ticket)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Presence is unavailable" in text_of(html)
    digest = re.search(r'data-presence-digest="(\w+)"', html).group(1)
    assert beat(agent_client, ticket, shown=digest).status_code == 204
    assert agent_client.post(reverse("console:ticket-presence-leave", args=[ticket.pk])).status_code == 204
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.exc_info for r in warnings] == [None, None, None]


def test_presence_expires_without_heartbeats(agent_client, dana_client, ticket, settings):
    settings.PRESENCE_TTL_SECONDS = 1
    beat(dana_client, ticket)
    assert "Dana Desk is viewing" in text_of(beat(agent_client, ticket).content.decode())
    time.sleep(1.3)
    assert "Dana Desk" not in beat(agent_client, ticket).content.decode()


def test_heartbeat_writes_nothing_to_the_database(agent_client, dana_client, ticket):
    beat(dana_client, ticket, state="typing")
    with CaptureQueriesContext(connection) as queries:
        assert beat(agent_client, ticket, state="typing").status_code == 200
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in queries), [q["sql"] for q in queries]
    assert len(queries) <= 3  # the session, the user and their groups (the agent check)


def test_heartbeat_is_for_agents_and_needs_csrf(employee, agent, ticket):
    client = Client()
    client.force_login(employee)
    assert beat(client, ticket).status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(agent)
    assert beat(strict, ticket).status_code == 403
    assert strict.post(reverse("console:ticket-presence-leave", args=[ticket.pk])).status_code == 403


def test_live_banner_lists_changes_since_the_composer_place(agent_client, agent, other_agent, ticket):
    page = agent_client.get(detail_url(ticket)).content.decode()
    url, seen = poll_url(page), seen_of(page)
    reply_to_ticket(ticket=ticket, author=other_agent, body="Sent a technician")
    html = poll(agent_client, url, **seen).content.decode()
    assert 'id="collision-live" hx-swap-oob="innerHTML"' in html
    assert "Changed while you were writing: Dana Desk replied" in text_of(html)
    # Once the composer has seen it ("I have read these" moves its place), the banner empties.
    own = add_note(ticket=ticket, author=agent, body="mine")
    html = poll(agent_client, poll_url(html), **banner_place(html)).content.decode()
    assert f"message-{own.pk}" in html
    assert "Changed while you were writing" not in html


def test_delivery_reports_and_reactions_swap_the_message_in_place(agent_client, agent, ticket, locmem_channel):
    """A sent reply's badge no longer polls; what the platform reports afterwards (delivered, read) and the
    reactions people add reach the open page through its live poll, which swaps the message in place."""
    reply = reply_and_deliver(ticket, agent, "Turn it off and on again")
    page = agent_client.get(detail_url(ticket)).content.decode()
    status_url = reverse("console:message-status", args=[reply.pk])
    assert status_url not in page  # sent: the badge's own poll has ended
    assert poll(agent_client, poll_url(page)).status_code == 204

    receive(locmem_channel, [delivery_report(reply.external_id, DeliveryReport.DELIVERED)])
    html = poll(agent_client, poll_url(page)).content.decode()
    assert "Delivery: Delivered" in text_of(oob_entry(html, reply))
    assert status_url not in html

    receive(locmem_channel, [delivery_report(reply.external_id, DeliveryReport.READ, minute=6)])
    receive(locmem_channel, [reaction(reply.external_id, "🙏", minute=7), reaction("m0", "👍", minute=7)])
    later = poll(agent_client, poll_url(html)).content.decode()
    assert "Delivery: Read" in text_of(oob_entry(later, reply))
    assert "1 person reacted with 🙏" in oob_entry(later, reply)
    assert "1 person reacted with 👍" in oob_entry(later, Message.objects.get(external_id="m0"))
    assert poll(agent_client, poll_url(later)).status_code == 204


def test_a_failure_reported_after_sending_reaches_the_open_page_with_retry(agent_client, agent, ticket, locmem_channel):
    reply = reply_and_deliver(ticket, agent, "Turn it off and on again")
    page = agent_client.get(detail_url(ticket)).content.decode()
    words = "Message undeliverable (131026)"
    receive(locmem_channel, [delivery_report(reply.external_id, DeliveryReport.FAILED, error=words)])
    entry = oob_entry(poll(agent_client, poll_url(page)).content.decode(), reply)
    assert f"Delivery: Failed {words} Retry" in text_of(entry)
    assert reverse("console:message-retry", args=[reply.pk]) in entry
