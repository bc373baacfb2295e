"""The ticket page: actions with their audit trail, the requester panel and long timelines by pages.

Uses ``agent``, ``employee`` and ``locmem_channel`` from conftest.
"""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from console.timeline import TIMELINE_PAGE
from tests.conftest import queries_for, receive
from tests.factories import BASE_TIME, message
from tickets.models import Contact, Identity, Message, Queue, Ticket, TicketEvent
from tickets.updates import TicketUpdateError, update_ticket


@pytest.fixture
def ticket(locmem_channel):
    receive(locmem_channel, [message("m0", text="The printer is on fire")])
    return Ticket.objects.get()


def detail_url(ticket):
    return reverse("console:ticket-detail", args=[ticket.pk])


def update_url(ticket):
    return reverse("console:ticket-update", args=[ticket.pk])


def earlier_url(ticket, before):
    return f"{reverse('console:ticket-earlier', args=[ticket.pk])}?before={before}"


def text_of(html):
    """The page's text with tags dropped and whitespace collapsed, as a reader hears it."""
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


def form_data(ticket, **changes):
    data = {
        "status": ticket.status,
        "priority": ticket.priority,
        "assignee": ticket.assignee_id or "",
        "queue": ticket.queue_id or "",
    }
    return {**data, **changes}


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


# Actions and the audit trail --------------------------------------------------


def test_status_change_writes_events_and_shows_in_timeline(agent_client, agent, ticket):
    """The actions form changes status, priority, assignee and queue; each change is an event in the timeline."""
    queue = Queue.objects.create(name="Network")
    response = agent_client.post(
        update_url(ticket), form_data(ticket, status="open", priority=3, assignee=agent.pk, queue=queue.pk)
    )
    assert response.status_code == 302
    assert response.url == detail_url(ticket)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.assignee, ticket.queue) == ("open", 3, agent, queue)
    events = {e.kind: (e.old_value, e.new_value, e.actor) for e in TicketEvent.objects.filter(ticket=ticket)}
    assert events == {
        "status": ("new", "open", agent),
        "priority": ("normal", "high", agent),
        "assignee": ("", "Alex Agent", agent),
        "queue": ("", "Network", agent),
    }
    html = agent_client.get(detail_url(ticket)).content.decode()
    text = text_of(html)
    assert "Ticket updated." in text
    assert "Alex Agent changed status from new to open · just now" in text
    assert "Alex Agent changed priority from normal to high" in text
    assert "Alex Agent changed assignee from nobody to Alex Agent" in text
    assert "Alex Agent changed queue from no queue to Network" in text
    # Events are list items of their own, told apart from messages.
    assert html.count('class="event event-') == 4
    assert html.count('class="message message-') == 1


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


# Requester panel --------------------------------------------------------------


def test_requester_panel_lists_identities_and_other_tickets(agent_client):
    """The panel names the requester, every identity on every channel, and their 10 most recent other tickets."""
    ann = Contact.objects.create(display_name="Ann <Employee>", email="ann@example.com")
    Identity.objects.create(
        contact=ann, namespace="slack:T0EMU", external_id="U0ANN", handle="ann", display_name="Ann Employee"
    )
    Identity.objects.create(contact=ann, namespace="x", external_id="42", handle="@maya_dev", display_name="Maya")
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
    assert "slack:T0EMU · ann (Ann Employee)" in text
    assert "x · @maya_dev (Maya)" in text
    for other in others[:10]:
        assert f'href="{detail_url(other)}"' in panel
        assert f"{other.subject} Resolved" in text
    for other in others[10:]:
        assert f"{other.subject} " not in text
    assert "Not Ann" not in text
    assert f'href="{detail_url(current)}"' not in panel


# Long timelines ---------------------------------------------------------------


def ids_in(html, prefix):
    return [int(n) for n in re.findall(rf'<li id="{prefix}-(\d+)"', html)]


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
