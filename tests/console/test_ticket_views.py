"""The ticket page: the conversation, its actions, earlier messages, delivery badges."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from channel_adapters import locmem
from channel_adapters.base import InboundAttachment, PermanentError
from channels_ingest import downloads
from console.timeline import TIMELINE_PAGE
from tests.factories import BASE_TIME, deletion, edit, message, message_with
from tests.helpers import (
    detail_url,
    merge,
    outbound,
    post_reply,
    queries_for,
    receive,
    reply_url,
    requester_writes,
    seen_of,
    text_of,
    thread_with_key,
)
from tickets.merging import merge_tickets
from tickets.models import Attachment, Contact, Identity, Message, Queue, Ticket, TicketEvent
from tickets.replies import add_note, reply_to_ticket
from tickets.updates import TicketUpdateError, update_ticket


def conversation(channel, agent, size):
    """A ticket with ``size`` messages: inbound from two people, agent replies and notes, one failed reply."""
    inbound = range(size - size // 3)
    receive(
        channel,
        [message(f"m{n}", thread="m0", user=f"u{n % 2}", name=f"Person {n % 2}", minute=n) for n in inbound],
    )
    ticket = Ticket.objects.get()
    for n in range(size // 3):
        if n % 2:
            Message.objects.create(ticket=ticket, direction=Message.Direction.NOTE, author_user=agent, body=f"note {n}")
        else:
            reply_to_ticket(ticket=ticket, author=agent, body=f"reply {n}")
    first_reply = ticket.messages.filter(direction=Message.Direction.OUTBOUND).order_by("id").first()
    Message.objects.filter(pk=first_reply.pk).update(
        delivery_status=Message.DeliveryStatus.FAILED, delivery_error="boom"
    )
    assert ticket.messages.count() == size
    return ticket


def status_badge(client, message):
    return text_of(client.get(reverse("console:message-status", args=[message.pk])).content.decode())


def update_url(ticket):
    return reverse("console:ticket-update", args=[ticket.pk])


def form_data(ticket, **changes):
    data = {
        "status": ticket.status,
        "priority": ticket.priority,
        "assignee": ticket.assignee_id or "",
        "queue": ticket.queue_id or "",
    }
    return {**data, **changes}


def earlier_url(ticket, before):
    return f"{reverse('console:ticket-earlier', args=[ticket.pk])}?before={before}"


def add_messages(ticket, count, *, start=BASE_TIME, body="message {n}"):
    """``count`` inbound messages a minute apart from ``start``; returns them oldest first."""
    rows = [
        Message(
            ticket=ticket,
            direction=Message.Direction.INBOUND,
            body=body.format(n=n),
            created_at=start + timedelta(minutes=n),
        )
        for n in range(count)
    ]
    return Message.objects.bulk_create(rows)


def ids_in(html, prefix):
    return [int(n) for n in re.findall(rf'<li id="{prefix}-(\d+)"', html)]


def conversation_labels(html):
    """Each timeline message's conversation label, by message id ("" when it has none)."""
    labels = {}
    for pk, item in re.findall(r'<li id="message-(\d+)"(.*?)</li>', html, re.S):
        found = re.search(r'<span class="message-conversation">(.*?)</span>\s*</div>', item, re.S)
        labels[int(pk)] = text_of(found.group(1)) if found else ""
    return labels


@pytest.mark.django_db
def test_ticket_page_queries_do_not_grow_with_attachments(agent_client, locmem_channel):
    def add(count, start):
        for n in range(start, start + count):
            ref = f"r{n}"
            locmem.files[ref] = b"data"
            files = [
                InboundAttachment(name=f"f{n}-{i}.png", content_type="image/png", size=4, ref=ref) for i in range(2)
            ]
            receive(locmem_channel, [message_with(*files, external_id=f"m{n}")])

    add(1, 0)
    ticket = Ticket.objects.get()
    Message.objects.update(ticket=ticket)
    few = queries_for(agent_client, detail_url(ticket))
    add(8, 1)
    Message.objects.update(ticket=ticket)
    assert Attachment.objects.count() == 18
    assert queries_for(agent_client, detail_url(ticket)) == few


def test_ticket_page_shows_the_conversation(agent_client, agent, locmem_channel):
    """The timeline labels inbound, outbound and note messages, authors, edits, deletions and delivery status."""
    ticket = conversation(locmem_channel, agent, 6)
    receive(locmem_channel, [edit("m0", "The printer is on fire (edited)", minute=60), deletion("m1", minute=61)])
    failed = ticket.messages.get(delivery_status=Message.DeliveryStatus.FAILED)
    html = agent_client.get(detail_url(ticket)).content.decode()
    for text in [
        "Inbound",
        "Outbound",
        "Internal note",
        "Person 0",
        "Person 1",
        "Alex Agent",
        ">edited<",
        ">deleted<",
        "Delivery: </span>Failed",
        "boom",
        reverse("console:message-retry", args=[failed.pk]),
    ]:
        assert text in html
    assert 'dir="auto">The printer is on fire (edited)</div>' in html
    assert 'maxlength="1000"' in html  # the locmem adapter's reply limit


def test_detail_query_count_does_not_grow(agent_client, agent, locmem_channel):
    """The ticket page takes exactly as many queries with 40 messages as with 3."""
    small = conversation(locmem_channel, agent, 3)
    few = queries_for(agent_client, detail_url(small))
    Ticket.objects.all().delete()
    large = conversation(locmem_channel, agent, 40)
    assert queries_for(agent_client, detail_url(large)) == few


def test_message_text_is_escaped(agent_client, locmem_channel):
    """Markup in message text or names is shown as text on the list and the ticket page, never run."""
    script, image = "<script>alert(1)</script>", "<img src=x onerror=alert(1)>"
    receive(locmem_channel, [message("m0", text=f"{script}\n{image}", name="<b>Mallory</b>")])
    ticket = Ticket.objects.get()
    for url in [reverse("console:ticket-list"), detail_url(ticket)]:
        html = agent_client.get(url).content.decode()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<script>alert" not in html
        assert "&lt;b&gt;Mallory&lt;/b&gt;" in html
        assert "<b>Mallory" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img src=x" not in html


def test_failed_delivery_shows_error_and_retry_sends(agent_client, ticket, django_capture_on_commit_callbacks):
    """A reply the platform refuses shows its error and a Retry button; Retry sends it again."""
    locmem.failures.append(PermanentError("channel_not_found"))
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(reply_url(ticket), {"body": "Hello?"})
    reply = outbound(ticket).get()
    assert reply.delivery_status == Message.DeliveryStatus.FAILED
    retry_url = reverse("console:message-retry", args=[reply.pk])
    html = agent_client.get(detail_url(ticket)).content.decode()
    assert "channel_not_found" in html
    assert f'action="{retry_url}"' in html

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(retry_url)
    assert response.status_code == 302
    assert response.url == detail_url(ticket)
    reply.refresh_from_db()
    assert reply.delivery_status == Message.DeliveryStatus.SENT
    assert reply.delivery_error == ""
    assert locmem.outbox == [{"thread_key": "m0", "text": "Hello?"}]
    html = agent_client.get(detail_url(ticket)).content.decode()
    assert "channel_not_found" not in html
    assert "Retry</button>" not in html


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


def test_merged_ticket_shows_a_banner_and_both_timelines_say_so(agent_client, agent, duplicates):
    alice, bob, _ = duplicates
    merge(agent, alice, bob)
    html = agent_client.get(detail_url(bob)).content.decode()
    assert f'<strong>Merged into <a href="{detail_url(alice)}">#{alice.pk}</a></strong>' in html
    assert f'merged this ticket into <a href="{detail_url(alice)}">#{alice.pk}</a>' in html
    kept = agent_client.get(detail_url(alice)).content.decode()
    assert "Merged into" not in kept
    assert f'merged <a href="{detail_url(bob)}">#{bob.pk}</a> into this ticket' in kept
    assert "VPN down for me too" in kept  # Bob's message is in the kept ticket's timeline


def test_status_change_writes_events_and_shows_in_timeline(agent_client, agent, ticket):
    """The actions form changes status, priority, assignee and queue; each change is an event in the timeline."""
    queue = Queue.objects.create(name="Network")
    data = form_data(ticket, status="open", priority=3, assignee=agent.pk, queue=queue.pk)
    response = agent_client.post(update_url(ticket), {**data, "priority_reason": "whole floor affected"})
    assert response.status_code == 302
    assert response.url == detail_url(ticket)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.assignee, ticket.queue) == ("open", 3, agent, queue)
    assert ticket.priority_overridden
    events = {e.kind: (e.old_value, e.new_value, e.actor) for e in TicketEvent.objects.filter(ticket=ticket)}
    assert events == {
        "status": ("new", "open", agent),
        "priority": ("normal", "high", agent),
        "assignee": ("", "Alex Agent", agent),
        "queue": ("", "Network", agent),
    }
    html = agent_client.get(detail_url(ticket)).content.decode()
    text = text_of(html)
    assert "Status: New → Open. Priority: P3 · Normal → P2 · High. Assigned to you. Queue: no queue → Network." in text
    assert "Change: Status New → Open · Alex Agent · just now" in text
    assert "Change: Priority P3 · Normal → P2 · High · Alex Agent (whole floor affected) · just now" in text
    assert "Change: Assignee nobody → Alex Agent · Alex Agent · just now" in text
    assert "Change: Queue no queue → Network · Alex Agent · just now" in text
    # Events are list items of their own, told apart from messages.
    assert html.count('class="event event-') == 4
    assert html.count('class="message message-') == 1


def test_a_reply_shows_the_status_change_it_made_in_the_timeline(agent_client, ticket):
    """Answering a new ticket opens it: the timeline says so, who did it and why, right after the reply."""
    page = agent_client.get(detail_url(ticket)).content.decode()
    assert post_reply(agent_client, ticket, seen_of(page), body="On my way").status_code == 302
    html = agent_client.get(detail_url(ticket)).content.decode()
    text = text_of(html)
    assert "Change: Status New → Open · Alex Agent (replied) · just now" in text
    assert text.index("On my way") < text.index("Status New → Open")
    assert html.count('class="event event-status"') == 1


def test_a_ticket_reopened_by_the_requester_says_so_in_the_timeline(agent_client, locmem_channel, ticket):
    update_ticket(ticket=ticket, actor=None, status="resolved")
    requester_writes(locmem_channel, "m1", "It is on fire again")
    text = text_of(agent_client.get(detail_url(ticket)).content.decode())
    assert "Status Resolved → Open · Locmem lm (new message from Ann Employee)" in text


def test_no_event_for_a_no_op_change(agent_client, agent, ticket):
    """Posting the ticket's current values writes no event and leaves its activity time alone."""
    before = ticket.last_activity_at
    response = agent_client.post(update_url(ticket), form_data(ticket), follow=True)
    assert "Nothing to change." in response.content.decode()
    assert update_ticket(ticket=ticket, actor=agent, status=ticket.status, priority=ticket.priority) == []
    assert not TicketEvent.objects.exists()
    ticket.refresh_from_db()
    assert ticket.last_activity_at == before


def test_resolve_sets_resolved_at_and_reopen_clears_it(agent_client, agent, ticket):
    """ "Resolve" stamps resolved_at (and bumps activity); reopening clears it; each move is one event."""
    started = timezone.now()
    agent_client.post(update_url(ticket), {"action": "resolve"})
    ticket.refresh_from_db()
    assert ticket.status == "resolved"
    assert ticket.resolved_at >= started
    assert ticket.last_activity_at >= started
    html = agent_client.get(detail_url(ticket)).content.decode()
    assert 'value="resolve"' not in html  # already resolved: no Resolve button

    agent_client.post(update_url(ticket), form_data(ticket, status="open"))
    ticket.refresh_from_db()
    assert ticket.status == "open"
    assert ticket.resolved_at is None
    assert list(TicketEvent.objects.order_by("id").values_list("old_value", "new_value")) == [
        ("new", "resolved"),
        ("resolved", "open"),
    ]


def test_assign_to_me_and_only_agents_can_be_assigned(agent_client, agent, employee, ticket):
    """ "Assign to me" assigns the signed-in agent; an employee is neither offered nor accepted as assignee."""
    html = agent_client.get(detail_url(ticket)).content.decode()
    assignees = html[html.index('name="assignee"') : html.index("</select>", html.index('name="assignee"'))]
    assert f'<option value="{agent.pk}">Alex Agent</option>' in assignees
    assert f'<option value="{employee.pk}"' not in assignees
    agent_client.post(update_url(ticket), {"action": "assign-to-me"})
    ticket.refresh_from_db()
    assert ticket.assignee == agent

    response = agent_client.post(update_url(ticket), form_data(ticket, assignee=employee.pk), follow=True)
    assert "Select a valid choice" in response.content.decode()
    with pytest.raises(TicketUpdateError):
        update_ticket(ticket=ticket, actor=agent, assignee=employee)
    ticket.refresh_from_db()
    assert ticket.assignee == agent
    assert TicketEvent.objects.count() == 1


def test_employee_cannot_post_updates(client, employee, ticket):
    """Signed-in non-agents get 403 on the actions and on the earlier-messages partial; nothing changes."""
    client.force_login(employee)
    assert client.post(update_url(ticket), {"action": "resolve"}).status_code == 403
    assert client.post(update_url(ticket), form_data(ticket, status="closed")).status_code == 403
    assert client.get(earlier_url(ticket, ticket.messages.get().pk)).status_code == 403
    ticket.refresh_from_db()
    assert ticket.status == "new"
    assert not TicketEvent.objects.exists()


def test_update_requires_csrf_token(agent, ticket):
    """An update POST without the CSRF token is refused; with it, it goes through."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.post(update_url(ticket), {"action": "resolve"}).status_code == 403
    assert not TicketEvent.objects.exists()

    client.get(detail_url(ticket))  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    assert client.post(update_url(ticket), {"action": "resolve", "csrfmiddlewaretoken": token}).status_code == 302
    assert TicketEvent.objects.filter(kind="status", new_value="resolved").exists()


def test_requester_panel_lists_identities_and_other_tickets(agent_client):
    """The panel names the requester, every identity on every channel, and their 10 most recent other tickets."""
    ann = Contact.objects.create(display_name="Ann <Employee>", email="ann@example.com")
    Identity.objects.create(
        contact=ann, namespace="slack:T0EMU", external_id="U0ANN", handle="ann", display_name="Ann Employee"
    )
    Identity.objects.create(contact=ann, namespace="x", external_id="42", handle="@maya_dev", display_name="Maya")
    Identity.objects.create(
        contact=ann, namespace="whatsapp:1065", external_id="15550001", handle="+15550001", display_name="Ann"
    )
    Identity.objects.create(
        contact=ann, namespace="email", external_id="ann@example.com", email="ann@example.com", display_name="Ann E."
    )
    Identity.objects.create(contact=ann, namespace="instagram:1784", external_id="99", handle="@ann.ig")
    Identity.objects.create(contact=ann, namespace="facebook:1000", external_id="2468", display_name="Ann Fb")
    someone_else = Contact.objects.create(display_name="Bo")
    Ticket.objects.create(subject="Not Ann's", requester=someone_else)
    now = timezone.now()
    others = [
        Ticket.objects.create(
            subject=f"Old problem {n}", requester=ann, status="resolved", last_activity_at=now - timedelta(days=n + 1)
        )
        for n in range(12)
    ]
    current = Ticket.objects.create(subject="Current", requester=ann, last_activity_at=now)
    html = agent_client.get(detail_url(current)).content.decode()
    panel = html[html.index('class="requester-panel"') :]
    text = text_of(panel)
    assert "Ann &lt;Employee&gt;" in panel
    assert "ann@example.com" in text
    # Each account by its platform's name and the handle a person knows it by, never the internal namespace.
    assert "Slack · @ann (Ann Employee)" in text
    assert "X · @maya_dev (Maya)" in text
    assert "WhatsApp · +15550001 (Ann)" in text
    assert "Email · ann@example.com (Ann E.)" in text
    assert "Instagram · @ann.ig" in text
    assert "Facebook · Ann Fb" in text
    for internal in ("slack:", "T0EMU", "whatsapp:", "1065", "instagram:", "facebook:", "2468"):
        assert internal not in text
    for other in others[:10]:
        assert f'href="{detail_url(other)}"' in panel
        assert f"{other.subject} Resolved" in text
    for other in others[10:]:
        assert f"{other.subject} " not in text
    assert "Not Ann" not in text
    assert f'href="{detail_url(current)}"' not in panel


def test_earlier_messages_pages_have_no_overlap_or_gaps(agent_client, agent, ticket):
    """The page shows the newest 50 messages; "Show earlier messages" walks back by (created_at, id) through
    every message and event exactly once, in order, with message text escaped."""
    ticket.messages.all().delete()
    start = BASE_TIME
    msgs = add_messages(ticket, 130, start=start, body="<script>alert({n})</script>")
    # Same instant as a neighbour: the keyset must break the tie on id.
    twins = add_messages(ticket, 3, start=msgs[79].created_at, body="twin {n}")
    events = [
        TicketEvent.objects.create(
            ticket=ticket, actor=agent, kind="priority", old_value="normal", new_value="high", created_at=at
        )
        for at in [
            start - timedelta(minutes=5),
            msgs[0].created_at,
            msgs[79].created_at,
            msgs[80].created_at + timedelta(seconds=1),
            msgs[-1].created_at + timedelta(minutes=1),
        ]
    ]
    everything = sorted(msgs + twins, key=lambda m: (m.created_at, m.pk))

    html = agent_client.get(detail_url(ticket)).content.decode()
    pages = [html]
    while "Show earlier messages" in pages[-1]:
        before = re.search(r"\?before=(\d+)", pages[-1]).group(1)
        response = agent_client.get(earlier_url(ticket, before), headers={"HX-Request": "true"})
        assert response.status_code == 200
        pages.append(response.content.decode())
    assert len(pages) == 3  # 133 messages: 50 + 50 + 33

    seen_messages = [pk for page in reversed(pages) for pk in ids_in(page, "message")]
    seen_events = [pk for page in reversed(pages) for pk in ids_in(page, "event")]
    assert [len(ids_in(page, "message")) for page in pages] == [TIMELINE_PAGE, TIMELINE_PAGE, 33]
    assert seen_messages == [m.pk for m in everything]
    assert seen_events == [e.pk for e in events]
    for page in pages:
        assert "<script>alert" not in page
    assert "&lt;script&gt;alert(0)&lt;/script&gt;" in pages[-1]
    assert "<html" not in pages[1]  # a fragment, not a page


def test_earlier_rejects_a_message_of_another_ticket(agent_client, locmem_channel, ticket):
    """The cursor must be a message of this ticket."""
    receive(locmem_channel, [message("other", user="u9", text="Other ticket", minute=5)])
    other = Ticket.objects.exclude(pk=ticket.pk).get()
    assert agent_client.get(earlier_url(ticket, other.messages.get().pk)).status_code == 404
    assert agent_client.get(earlier_url(ticket, "x")).status_code == 400


def test_ticket_page_query_count_is_constant(agent_client, agent, locmem_channel):
    """The page takes the same number of queries for 3 or 40 messages, 1 or 8 events, 1 or 8 other tickets;
    so does the earlier-messages partial."""
    receive(locmem_channel, [message("m0", text="First")])
    ticket = Ticket.objects.get()
    add_messages(ticket, 2)
    Ticket.objects.create(subject="Another", requester=ticket.requester)
    update_ticket(ticket=ticket, actor=agent, status="open")
    few = queries_for(agent_client, detail_url(ticket))
    oldest = ticket.messages.order_by("created_at", "id").last().pk
    few_earlier = queries_for(agent_client, earlier_url(ticket, oldest))

    add_messages(ticket, 37, start=BASE_TIME + timedelta(hours=1))
    for n in range(7):
        Ticket.objects.create(subject=f"Another {n}", requester=ticket.requester)
        update_ticket(ticket=ticket, actor=agent, priority=3 if n % 2 == 0 else 1)
    assert ticket.messages.count() == 40
    assert ticket.events.count() == 8
    assert Ticket.objects.filter(requester=ticket.requester).count() == 9
    assert queries_for(agent_client, detail_url(ticket)) == few
    newest = ticket.messages.order_by("created_at", "id").last().pk
    assert queries_for(agent_client, earlier_url(ticket, newest)) == few_earlier
    print(f"ticket page: {few} queries; earlier partial: {few_earlier} queries")


def test_the_timeline_says_which_conversation_each_message_is_in(agent_client, agent, merged):
    single = Ticket.objects.create(subject="alone", requester=merged.requester)
    receive_one = Message.objects.create(ticket=single, direction="inbound", body="hi")
    assert conversation_labels(agent_client.get(detail_url(single)).content.decode()) == {receive_one.pk: ""}

    to_bob = reply_to_ticket(ticket=merged, author=agent, body="Bob: on it", thread=thread_with_key("b1"))
    note = add_note(ticket=merged, author=agent, body="Both about the VPN")
    labels = conversation_labels(agent_client.get(detail_url(merged)).content.decode())
    by_id = {m.external_id or m.body: m.pk for m in merged.messages.all()}
    assert labels == {
        by_id["a1"]: "Conversation: Locmem lm — Alice",
        by_id["a2"]: "Conversation: Locmem lm — Alice",
        by_id["b1"]: "Conversation: Locmem lm — Bob",
        to_bob.pk: "Conversation: Locmem lm — Bob",
        note.pk: "",  # a note is in no conversation
    }


def test_live_and_earlier_entries_are_labelled_too(agent_client, agent, merged, locmem_channel):
    page = agent_client.get(detail_url(merged)).content.decode()
    poll = re.search(r'id="live-poller" hidden\s+hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
    receive(locmem_channel, [message("b2", thread="b1", user="bob", name="Bob", text="Any news?", minute=30)])
    html = agent_client.get(poll, headers={"HX-Request": "true"}).content.decode()
    assert conversation_labels(html) == {Message.objects.get(external_id="b2").pk: "Conversation: Locmem lm — Bob"}

    newest = merged.messages.order_by("created_at", "id").last()
    earlier = reverse("console:ticket-earlier", args=[merged.pk]) + f"?before={newest.pk}"
    labels = conversation_labels(agent_client.get(earlier).content.decode())
    assert set(labels.values()) == {"Conversation: Locmem lm — Alice", "Conversation: Locmem lm — Bob"}


def test_the_requester_panel_lists_everyone_who_wrote(agent_client, agent, merged, locmem_channel):
    bob = Identity.objects.get(external_id="bob").contact
    Identity.objects.create(contact=bob, namespace="x", external_id="200", handle="@bob_x", display_name="Bob X")
    html = agent_client.get(detail_url(merged)).content.decode()
    panel = text_of(html[html.index('<aside class="requester-panel"') :])
    assert panel.startswith("People Alice (requester)")
    assert "Bob Accounts of Bob Locmem · bob (Bob) X · @bob_x (Bob X)" in panel
    assert "Alice (requester) Accounts of Alice Locmem · alice (Alice)" in panel
    assert html.count('class="requester-name"') == 2


def test_the_page_costs_the_same_queries_for_one_or_many_conversations(agent_client, agent, locmem_channel):
    receive(locmem_channel, [message("s1", user="solo", name="Solo", text="Printer")])
    single = Ticket.objects.get()
    one = queries_for(agent_client, detail_url(single))

    receive(locmem_channel, [message(f"d{n}", user=f"u{n}", name=f"Person {n}", minute=n) for n in range(2)])
    merge_tickets(ticket_ids=list(Ticket.objects.values_list("pk", flat=True)), actor=agent, keep_id=single.pk)
    two = queries_for(agent_client, detail_url(single))

    receive(locmem_channel, [message(f"e{n}", user=f"v{n}", name=f"Other {n}", minute=n) for n in range(6)])
    receive(locmem_channel, [message(f"f{n}", thread="e0", user="v0", minute=10 + n) for n in range(20)])
    ids = list(Ticket.objects.filter(merged_into=None).values_list("pk", flat=True))
    merge_tickets(ticket_ids=ids, actor=agent, keep_id=single.pk)
    many = queries_for(agent_client, detail_url(single))
    assert single.threads.count() == 9
    assert single.messages.count() == 29
    assert one == two == many


#: A few bytes standing for a voice note (an Ogg page's signature) and a video (an MP4 ``ftyp`` box).
OGG, MP4 = b"OggS\x00\x02" + bytes(64), b"\x00\x00\x00\x18ftypmp42" + bytes(64)


def media_message(channel, external_id, *files):
    """A message carrying ``files`` ((name, content type, bytes)), downloaded as the worker would."""
    for name, _, data in files:
        locmem.files[name] = data
    attachments = [InboundAttachment(name=n, content_type=t, size=len(d), ref=n) for n, t, d in files]
    receive(channel, [message_with(*attachments, external_id=external_id)])
    for attachment in Attachment.objects.filter(message__external_id=external_id):
        downloads.download_attachment(attachment.pk)
    return Attachment.objects.filter(message__external_id=external_id).order_by("id")


def test_a_voice_note_and_a_video_play_in_the_page_and_can_still_be_downloaded(agent_client, locmem_channel):
    voice, video = media_message(
        locmem_channel,
        "m0",
        ("voice-note.ogg", "audio/ogg; codecs=opus", OGG),
        ("clip.mp4", "video/mp4", MP4),
    )
    html = agent_client.get(detail_url(voice.message.ticket)).content.decode()
    url = reverse("console:attachment", args=[voice.pk])
    assert re.search(
        rf'<audio class="attachment-player" controls preload="none" src="{url}"\s+'
        r'data-type="audio/ogg[^"]*" aria-label="Play voice-note.ogg"></audio>',
        html,
    )
    assert f'<a href="{url}" class="attachment-name" download>' in html
    video_url = reverse("console:attachment", args=[video.pk])
    assert re.search(
        rf'<video class="attachment-player attachment-video" controls preload="none" src="{video_url}"', html
    )
    assert f'<a href="{video_url}" class="attachment-name" download>' in html


@pytest.mark.parametrize("content_type", ["audio/mpeg", "audio/mp4", "audio/aac", "audio/amr"])
def test_every_voice_note_type_gets_a_player(agent_client, locmem_channel, content_type):
    (note,) = media_message(locmem_channel, "m0", ("note", content_type, OGG))
    assert "<audio " in agent_client.get(detail_url(note.message.ticket)).content.decode()


def test_no_player_for_a_file_not_downloaded_yet_or_of_another_type(agent_client, locmem_channel):
    receive(
        locmem_channel,
        [message_with(InboundAttachment(name="v.ogg", content_type="audio/ogg", size=4, ref="gone"), external_id="m0")],
    )
    media_message(locmem_channel, "m1", ("page.html", "text/html", b"<p>hi</p>"), ("x.webm", "video/webm", MP4))
    Message.objects.update(ticket=Ticket.objects.order_by("id").first())
    html = agent_client.get(detail_url(Ticket.objects.order_by("id").first())).content.decode()
    assert "<audio" not in html
    assert "<video" not in html
    assert "Downloading" in html  # the voice note still being fetched says so instead


def test_the_page_costs_the_same_with_reports_reactions_and_players(agent_client, agent, ticket, locmem_channel):
    """Delivery reports, reactions and voice notes are read with the messages: no query per message."""

    def add(numbers):
        for n in numbers:
            media_message(locmem_channel, f"v{n}", (f"v{n}.ogg", "audio/ogg", OGG))
            Message.objects.filter(external_id=f"v{n}").update(ticket=ticket, reactions={"locmem:u1": "👍"})
            reply = reply_to_ticket(ticket=ticket, author=agent, body=f"reply {n}")
            Message.objects.filter(pk=reply.pk).update(
                delivery_status=Message.DeliveryStatus.READ, delivery_reported_at=BASE_TIME
            )

    add(range(1))
    few = queries_for(agent_client, detail_url(ticket))
    add(range(1, 10))
    html = agent_client.get(detail_url(ticket)).content.decode()
    assert html.count("<audio ") == 10
    assert html.count("1 person reacted with 👍") == 10
    assert html.count("Delivery: </span>Read") == 10
    assert queries_for(agent_client, detail_url(ticket)) == few
