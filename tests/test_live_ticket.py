"""The live ticket page: the timeline poll, presence, the collision check, and stalled deliveries.

Uses ``agent`` (Alex Agent), ``other_agent`` (Dana Desk), ``locmem_channel`` and ``queries_for`` from conftest.
"""

import html as html_lib
import re
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.conftest import queries_for, receive
from tests.factories import deletion, edit, message
from tickets.changes import Place, Seen, changes_since
from tickets.models import Message, Ticket, TicketEvent
from tickets.replies import add_note, reply_to_ticket
from tickets.updates import update_ticket


@pytest.fixture
def ticket(locmem_channel):
    receive(locmem_channel, [message("m0", text="The printer is on fire")])
    return Ticket.objects.get()


@pytest.fixture
def dana_client(other_agent):
    client = Client()
    client.force_login(other_agent)
    return client


def detail_url(ticket):
    return reverse("console:ticket-detail", args=[ticket.pk])


def text_of(html):
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


def poll_url(html):
    """The live poller's URL in a page or a poll answer: it carries the place the page has reached."""
    found = re.search(r'id="live-poller" hidden\s+hx-get="([^"]+)"', html)
    assert found, "no live poller"
    return html_lib.unescape(found.group(1))


def seen_of(html):
    """The composer's hidden place (what the agent had seen), as the form would post it."""
    place = dict(re.findall(r'<input type="hidden" name="(seen_\w+)" value="([^"]*)"', html))
    assert place, "no composer place"
    return place


def banner_place(html):
    """The place the live banner's "I have read these" gives the composer (console.js copies data-seen-X to seen_X)."""
    place = {f"seen_{name}": value for name, value in re.findall(r'data-seen-(\w+)="([^"]*)"', html)}
    assert place, "no live banner"
    return place


def poll(client, url, **params):
    """The poller's GET; ``params`` (the composer's place, which htmx includes) are added to its query."""
    query = "&".join(f"{name}={value}" for name, value in params.items())
    separator = "&" if "?" in url else "?"
    return client.get(url + (separator + query if query else ""), headers={"HX-Request": "true"})


def inbound(locmem_channel, external_id, text, minute=1):
    receive(locmem_channel, [message(external_id, thread="m0", text=text, minute=minute)])
    return Message.objects.get(external_id=external_id)


# The timeline poll -------------------------------------------------------------------------------


def test_poll_returns_only_entries_stored_after_the_page(agent_client, other_agent, ticket, locmem_channel):
    """New messages (inbound, another agent's reply and note) and events come back once, with the header facts."""
    page = agent_client.get(detail_url(ticket)).content.decode()
    url = poll_url(page)
    first = ticket.messages.get()
    assert poll(agent_client, url).status_code == 204

    new_inbound = inbound(locmem_channel, "m1", "Now it smells of smoke")
    dana_reply = reply_to_ticket(ticket=ticket, author=other_agent, body="Evacuate, please")
    dana_note = add_note(ticket=ticket, author=other_agent, body="Called facilities")
    update_ticket(ticket=ticket, actor=other_agent, status="pending", assignee=other_agent)

    response = poll(agent_client, url)
    assert response.status_code == 200
    html = response.content.decode()
    ids = re.findall(r'<li id="((?:message|event)-\d+)"', html)
    events = list(TicketEvent.objects.order_by("id"))
    assert len(events) == 2
    assert sorted(ids) == sorted(
        [f"message-{m.pk}" for m in (new_inbound, dana_reply, dana_note)] + [f"event-{e.pk}" for e in events]
    )
    assert f"message-{first.pk}" not in html
    text = text_of(html)
    assert "Now it smells of smoke" in text
    assert "Evacuate, please" in text
    assert "Called facilities" in text
    assert "Dana Desk changed status from open to pending" in text  # her reply opened it
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
    inbound(locmem_channel, "m1", "Any news?")
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
    inbound(locmem_channel, "m1", "one")
    update_ticket(ticket=ticket, actor=other_agent, priority=4)
    one = queries_for(agent_client, url)
    # ... cost the same as many.
    for n in range(2, 30):
        inbound(locmem_channel, f"m{n}", f"message {n}", minute=n)
        update_ticket(ticket=ticket, actor=other_agent, priority=3 if n % 2 else 1)
    assert queries_for(agent_client, url) == one


def test_poll_with_many_new_entries_brings_them_in_batches(agent_client, ticket):
    from console.timeline import LIVE_BATCH

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


def test_a_place_reads_back_as_written():
    place = Place(4711, ((301, 4712), (302, 4712), (17, 4720)))
    assert str(place) == "4711-4712.301.302-4720.17"
    assert Place.parse(str(place)) == Place(4711, ((17, 4720), (301, 4712), (302, 4712)))
    assert Place.parse("0") == Place()


def test_page_escapes_changes_and_message_text_in_the_poll(agent_client, ticket, locmem_channel):
    page = agent_client.get(detail_url(ticket)).content.decode()
    inbound(locmem_channel, "m1", "<script>alert(1)</script>")
    html = poll(agent_client, poll_url(page), **seen_of(page)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # the timeline entry and the banner


def oob_entry(html, message):
    """The message's timeline entry sent out of band (swapped in place by its id), or None."""
    found = re.search(rf'<li id="message-{message.pk}"[^>]*hx-swap-oob="true"[^>]*>(.*?)</li>', html, re.S)
    return found and found.group(0)


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
    new = inbound(locmem_channel, "m1", "Typo hre")
    receive(locmem_channel, [edit("m1", "Typo here", minute=5)])
    html = poll(agent_client, url).content.decode()
    assert html.count(f'id="message-{new.pk}"') == 1
    assert not oob_entry(html, new)
    assert "Typo here" in html
    assert "Typo hre" not in html


def test_a_failed_reply_retried_by_another_agent_shows_its_new_state(agent_client, agent, other_agent, ticket):
    from channels_ingest.delivery import retry_delivery

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
    from channels_ingest.delivery import retry_delivery

    page = agent_client.get(detail_url(ticket)).content.decode()
    url = poll_url(page) + "".join(f"&{name}={value}" for name, value in seen_of(page).items())

    def news(n):
        """A new message, an edit, and another agent's reply that failed and was retried."""
        inbound(locmem_channel, f"m{n}", f"message {n}", minute=n)
        receive(locmem_channel, [edit(f"m{n - 1}", f"message {n - 1}, edited", minute=n)])
        reply = reply_to_ticket(ticket=ticket, author=other_agent, body=f"reply {n}")
        Message.objects.filter(pk=reply.pk).update(delivery_status="failed")
        retry_delivery(Message.objects.get(pk=reply.pk))

    news(1)
    one = queries_for(agent_client, url)
    for n in range(2, 12):
        news(n)
    assert queries_for(agent_client, url) == one


# Presence ----------------------------------------------------------------------------------------


def beat(client, ticket, **data):
    return client.post(reverse("console:ticket-presence", args=[ticket.pk]), data)


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


def test_the_embedded_default_cache_is_shared_between_processes():
    """Presence lives in the cache, so the embedded default must not use a per-process (locmem) cache."""
    import subprocess
    import sys

    code = "from django.conf import settings; print(settings.CACHES['default']['BACKEND'])"
    env = {"DJANGO_SETTINGS_MODULE": "helpdesk.settings", "DJANGO_DEBUG": "1", "PATH": "/usr/bin:/bin"}
    backend = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert backend == "django.core.cache.backends.filebased.FileBasedCache"


# Collisions --------------------------------------------------------------------------------------


def reply(client, ticket, seen, body="Have you tried turning it off?", **extra):
    return client.post(reverse("console:ticket-reply", args=[ticket.pk]), {"body": body, **seen, **extra})


def note(client, ticket, seen, body="Probably the fuser", **extra):
    return client.post(reverse("console:ticket-note", args=[ticket.pk]), {"body": body, **seen, **extra})


def outbound_count(ticket):
    return ticket.messages.filter(direction=Message.Direction.OUTBOUND).count()


CHANGES = {
    "a new customer message": (
        lambda ticket, dana, channel: inbound(channel, "m1", "It is out now, never mind"),
        "Ann Employee wrote: It is out now, never mind",
    ),
    "another agent's reply": (
        lambda ticket, dana, channel: reply_to_ticket(ticket=ticket, author=dana, body="Facilities are on it"),
        "Dana Desk replied: Facilities are on it",
    ),
    "another agent's note": (
        lambda ticket, dana, channel: add_note(ticket=ticket, author=dana, body="I am handling this"),
        "Dana Desk added an internal note: I am handling this",
    ),
    "a status change": (
        lambda ticket, dana, channel: update_ticket(ticket=ticket, actor=dana, status="resolved"),
        "Dana Desk changed status from new to resolved",
    ),
    "an assignee change": (
        lambda ticket, dana, channel: update_ticket(ticket=ticket, actor=dana, assignee=dana),
        "Dana Desk changed assignee from nobody to Dana Desk",
    ),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_reply_is_held_back_when_the_ticket_changed(agent_client, other_agent, ticket, locmem_channel, change):
    """The reply is not sent; the page comes back with the draft, what changed, and "Send anyway"."""
    make, listed = CHANGES[change]
    seen = seen_of(agent_client.get(detail_url(ticket)).content.decode())
    make(ticket, other_agent, locmem_channel)
    before = outbound_count(ticket)

    response = reply(agent_client, ticket, seen, body="Have you tried <b>turning it off</b>?")
    assert response.status_code == 409
    html = response.content.decode()
    assert outbound_count(ticket) == before
    assert ">Have you tried &lt;b&gt;turning it off&lt;/b&gt;?</textarea>" in html  # the draft, escaped
    text = text_of(html)
    assert "Not sent: this ticket changed since you opened it." in text
    assert listed in text
    assert 'name="confirm" value="1"' in html
    # The page shows the change itself, and the composer now counts it as seen.
    assert seen_of(html) != seen

    sent = reply(agent_client, ticket, seen, body="Have you tried turning it off?", confirm="1")
    assert sent.status_code == 302
    assert outbound_count(ticket) == before + 1
    assert ticket.messages.filter(body="Have you tried turning it off?", author_user__username="agent").exists()


def test_reply_after_seeing_the_warning_goes_through(agent_client, other_agent, ticket):
    """Posting again from the warning page (which shows the changes) sends: nothing new since."""
    page = agent_client.get(detail_url(ticket)).content.decode()
    add_note(ticket=ticket, author=other_agent, body="Mine")
    warning = reply(agent_client, ticket, seen_of(page)).content.decode()
    assert reply(agent_client, ticket, seen_of(warning)).status_code == 302
    assert outbound_count(ticket) == 1


def test_note_is_held_back_too_and_keeps_its_kind(agent_client, other_agent, ticket):
    seen = seen_of(agent_client.get(detail_url(ticket)).content.decode())
    update_ticket(ticket=ticket, actor=other_agent, assignee=other_agent)
    response = note(agent_client, ticket, seen, body="Check the warranty")
    assert response.status_code == 409
    html = response.content.decode()
    assert 'id="composer-kind-note" checked' in html
    assert ">Check the warranty</textarea>" in html
    assert "Add note anyway" in html
    assert not ticket.messages.filter(direction=Message.Direction.NOTE).exists()
    assert note(agent_client, ticket, seen, body="Check the warranty", confirm="1").status_code == 302
    assert ticket.messages.filter(direction=Message.Direction.NOTE, body="Check the warranty").exists()


def test_own_changes_and_other_fields_do_not_hold_a_reply_back(agent_client, agent, other_agent, ticket):
    """What the agent did themselves, and priority or queue changes, do not change what a reply should say."""
    seen = seen_of(agent_client.get(detail_url(ticket)).content.decode())
    add_note(ticket=ticket, author=agent, body="My own note")
    update_ticket(ticket=ticket, actor=agent, status="open")
    update_ticket(ticket=ticket, actor=other_agent, priority=4)
    assert reply(agent_client, ticket, seen).status_code == 302
    assert outbound_count(ticket) == 1


def test_a_post_without_a_place_is_not_checked(agent_client, other_agent, ticket):
    add_note(ticket=ticket, author=other_agent, body="Changed")
    assert reply(agent_client, ticket, {}).status_code == 302
    assert reply(agent_client, ticket, {"seen_message": "x", "seen_event": "0"}).status_code == 302


def test_changes_since_lists_what_others_did(ticket, agent, other_agent, locmem_channel):
    first = ticket.messages.get()
    opened = Seen.of_page([("message", first)], settled=None)  # what a page showing only the first message has
    assert not changes_since(ticket.pk, opened, viewer=agent)
    new = inbound(locmem_channel, "m1", "Hello again")
    add_note(ticket=ticket, author=agent, body="mine")
    update_ticket(ticket=ticket, actor=other_agent, status="pending")
    event = TicketEvent.objects.get(kind="status")
    changes = changes_since(ticket.pk, opened, viewer=agent)
    assert [(kind, item.pk) for kind, item in changes.entries] == [("message", new.pk), ("event", event.pk)]
    assert not changes.more
    # Dana sees the agent's note as a change, not her own status change.
    assert [item.body for _, item in changes_since(ticket.pk, opened, viewer=other_agent).entries] == [
        "Hello again",
        "mine",
    ]


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


# Stalled deliveries ------------------------------------------------------------------------------


def status_badge(client, message):
    return text_of(client.get(reverse("console:message-status", args=[message.pk])).content.decode())


def test_reply_queued_past_the_threshold_is_flagged(agent_client, agent, ticket, settings):
    settings.DELIVERY_STALE_SECONDS = 60
    queued = reply_to_ticket(ticket=ticket, author=agent, body="Still there?")  # on_commit never runs: stays queued
    assert "Still" not in status_badge(agent_client, queued)

    three_minutes_ago = timezone.now() - timedelta(minutes=3)
    Message.objects.filter(pk=queued.pk).update(
        created_at=three_minutes_ago, delivery_next_attempt_at=three_minutes_ago
    )
    text = status_badge(agent_client, queued)
    assert "Still queued after 3 minutes — the channel may be slow or the worker down" in text
    html = agent_client.get(reverse("console:message-status", args=[queued.pk])).content.decode()
    assert "delivery-stalled" in html
    assert 'hx-trigger="every 2s"' in html

    settings.DELIVERY_STALE_SECONDS = 600
    assert "Still" not in status_badge(agent_client, queued)


def test_sending_for_too_long_is_flagged_and_a_retry_starts_the_clock_again(agent_client, agent, ticket, settings):
    settings.DELIVERY_STALE_SECONDS = 60
    now = timezone.now()
    reply = reply_to_ticket(ticket=ticket, author=agent, body="Hello")
    Message.objects.filter(pk=reply.pk).update(
        created_at=now - timedelta(minutes=10),
        delivery_status="sending",
        delivery_started_at=now - timedelta(minutes=2),
    )
    assert "Still sending after 2 minutes" in status_badge(agent_client, reply)

    # The agent's Retry (attempts reset, an attempt scheduled now): an old reply is not flagged at once.
    Message.objects.filter(pk=reply.pk).update(
        delivery_status="queued", delivery_attempts=0, delivery_next_attempt_at=now
    )
    assert "Still" not in status_badge(agent_client, reply)
    # A retry after a transient error counts from creation: the reply has waited that long.
    Message.objects.filter(pk=reply.pk).update(
        delivery_attempts=2, delivery_next_attempt_at=now + timedelta(seconds=30)
    )
    assert "Still queued after 10 minutes" in status_badge(agent_client, reply)


def test_sent_and_failed_replies_are_never_flagged(agent_client, agent, ticket):
    reply = reply_to_ticket(ticket=ticket, author=agent, body="Hello")
    old = timezone.now() - timedelta(hours=1)
    for status in ("sent", "failed"):
        Message.objects.filter(pk=reply.pk).update(created_at=old, delivery_status=status)
        assert "Still" not in status_badge(agent_client, reply)
