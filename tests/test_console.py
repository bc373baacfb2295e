"""The agent console: access, the ticket list, the ticket page, replies and their delivery.

Uses ``agent``, ``employee`` and ``locmem_channel`` from conftest, where Celery runs eagerly and the
locmem adapter is reset for every test.
"""

from datetime import timedelta
from urllib.parse import quote

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from channel_adapters import locmem
from channel_adapters.base import PermanentError
from tests.conftest import queries_for, receive
from tests.factories import BASE_TIME, deletion, edit, message
from tickets.models import Macro, Message, Ticket
from tickets.replies import reply_to_ticket


def open_tickets(channel, count, *, first=0):
    """``count`` more tickets, each opened by a different requester."""
    numbers = range(first, first + count)
    receive(
        channel,
        [message(f"m{n}", user=f"u{n}", name=f"Person {n}", text=f"Problem {n}", minute=n) for n in numbers],
    )
    return list(Ticket.objects.order_by("id"))


@pytest.fixture
def ticket(locmem_channel):
    receive(locmem_channel, [message("m0", text="The printer is on fire")])
    return Ticket.objects.get()


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


def detail_url(ticket):
    return reverse("console:ticket-detail", args=[ticket.pk])


def reply_url(ticket):
    return reverse("console:ticket-reply", args=[ticket.pk])


def outbound(ticket):
    return ticket.messages.filter(direction=Message.Direction.OUTBOUND)


# Access ---------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_user_is_sent_to_login(client):
    """Anonymous visitors of a console page are redirected to the login page, keeping where they were going."""
    response = client.get(reverse("console:ticket-list"))
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={reverse('console:ticket-list')}"


@pytest.mark.django_db
def test_anonymous_poll_reloads_the_page(client):
    """An htmx poll after the session expired asks for a full reload instead of swapping in the login form."""
    response = client.get(reverse("console:ticket-rows"), headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response["HX-Refresh"] == "true"


def test_employee_gets_403(client, employee, ticket):
    """Signed-in users who are not agents get the 403 page, on pages and on actions."""
    client.force_login(employee)
    response = client.get(reverse("console:ticket-list"))
    assert response.status_code == 403
    assert "for helpdesk agents" in response.content.decode()
    assert client.post(reply_url(ticket), {"body": "hi"}).status_code == 403
    assert not outbound(ticket).exists()


@pytest.mark.django_db
def group_queries(client, url):
    """How many times a GET of ``url`` reads the user's groups (not the assignee list's JOIN of them)."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return sum('FROM "auth_group"' in query["sql"] for query in queries)


def test_the_role_is_looked_up_once_per_request_and_never_kept(client, admin_user, agent):
    """Pages that ask for the role again (macros) reuse the request's; a demoted agent is out at once."""
    client.force_login(admin_user)
    shared = Macro.objects.create(name="Shared", body="Hello")
    assert group_queries(client, reverse("console:macro-edit", args=[shared.pk])) == 1
    assert group_queries(client, reverse("console:macro-list")) == 1

    client.force_login(agent)
    assert client.get(reverse("console:ticket-list")).status_code == 200
    agent.groups.clear()
    assert client.get(reverse("console:ticket-list")).status_code == 403


def test_login_page_signs_in(client, agent):
    """The login page has labelled fields and signs an agent in to the console."""
    html = client.get(reverse("login")).content.decode()
    assert '<label for="id_username">' in html
    assert '<label for="id_password">' in html
    response = client.post(reverse("login"), {"username": "agent", "password": "agent-pass-123"})
    assert response.status_code == 302
    assert response.url == reverse("console:ticket-list")


# Ticket list ----------------------------------------------------------------


def test_agent_sees_open_tickets_newest_activity_first(agent_client, locmem_channel):
    """The list shows channel, requester, subject, status and priority of open tickets, most recent activity first."""
    first, second = open_tickets(locmem_channel, 2)
    Ticket.objects.filter(pk=first.pk).update(last_activity_at=BASE_TIME + timedelta(hours=1))
    response = agent_client.get(reverse("console:ticket-list"))
    html = response.content.decode()
    assert [t.pk for t in response.context["tickets"]] == [first.pk, second.pk]
    assert "Problem 0" in html
    assert "Person 0" in html
    assert "Locmem</span> lm" in html
    assert "Alex Agent" in html  # the top bar names the user
    assert 'hx-trigger="every 5s"' in html


def test_status_filter(agent_client, locmem_channel):
    """Resolved and closed tickets are hidden by default and shown with ?status=all or their own status."""
    resolved, waiting = open_tickets(locmem_channel, 2)
    Ticket.objects.filter(pk=resolved.pk).update(status=Ticket.Status.RESOLVED)
    Ticket.objects.filter(pk=waiting.pk).update(status=Ticket.Status.PENDING)

    def listed(query):
        return {t.pk for t in agent_client.get(reverse("console:ticket-list") + query).context["tickets"]}

    assert listed("") == {waiting.pk}
    assert listed("?status=all") == {resolved.pk, waiting.pk}
    assert listed("?status=resolved") == {resolved.pk}
    assert listed("?status=nonsense") == {waiting.pk}


def paging_count(sql):
    """A COUNT other than the view tabs' (``console.view_counts``: aliased "mine", "unassigned", ...)."""
    sql = sql.upper()
    return "COUNT(" in sql and 'AS "MINE"' not in sql and 'AS "UNASSIGNED"' not in sql


def test_pagination_without_count(agent_client, locmem_channel):
    """Pages hold 50 tickets; a next link appears only when there is another page, and no COUNT query runs."""
    open_tickets(locmem_channel, 60)
    with CaptureQueriesContext(connection) as queries:
        first = agent_client.get(reverse("console:ticket-list"))
    assert len(first.context["tickets"]) == 50
    assert first.context["has_next"]
    older = first.context["next_cursor"]
    assert f'href="?after={quote(older)}" rel="next"' in first.content.decode()
    assert not any(paging_count(query["sql"]) for query in queries)
    with CaptureQueriesContext(connection) as queries:
        second = agent_client.get(reverse("console:ticket-list"), {"after": older})
    assert len(second.context["tickets"]) == 10
    assert not second.context["has_next"]
    assert not any(paging_count(query["sql"]) for query in queries)
    newer = second.context["prev_cursor"]
    assert f'href="?before={quote(newer)}" rel="prev"' in second.content.decode()
    back = agent_client.get(reverse("console:ticket-list"), {"before": newer})
    assert back.context["tickets"] == first.context["tickets"]
    assert 'rel="prev"' not in back.content.decode()
    # Old ?page= links still work.
    paged = agent_client.get(reverse("console:ticket-list") + "?page=2")
    assert paged.context["tickets"] == second.context["tickets"]
    assert not paged.context["has_next"]
    assert 'href="?page=1" rel="prev"' in paged.content.decode()


def test_keyset_pages_do_not_overlap(agent_client, locmem_channel):
    """Following "Older" then "Newer" walks the list without repeating or skipping a ticket, even when many
    tickets share one last-activity time (the id breaks the tie), and the status filter is kept."""
    open_tickets(locmem_channel, 130)
    Ticket.objects.filter(pk__lte=Ticket.objects.order_by("id")[60].pk).update(last_activity_at=BASE_TIME)
    expected = list(Ticket.objects.order_by("-last_activity_at", "-id").values_list("pk", flat=True))
    url, seen, cursors = reverse("console:ticket-list"), [], []
    response = agent_client.get(url, {"status": "all"})
    while True:
        seen += [t.pk for t in response.context["tickets"]]
        if not response.context["has_next"]:
            break
        cursors.append(response.context["next_cursor"])
        assert f'href="?status=all&amp;after={quote(cursors[-1])}" rel="next"' in response.content.decode()
        response = agent_client.get(url, {"status": "all", "after": cursors[-1]})
        assert f'href="?status=all&amp;after={quote(cursors[-1])}" rel="next"' not in response.content.decode()
    assert seen == expected
    assert len(cursors) == 2
    middle = agent_client.get(url, {"status": "all", "after": cursors[0]})
    newer = agent_client.get(url, {"status": "all", "before": middle.context["prev_cursor"]})
    assert [t.pk for t in newer.context["tickets"]] == expected[:50]
    rows = agent_client.get(reverse("console:ticket-rows"), {"status": "all", "after": cursors[1]}).content.decode()
    assert f"#{expected[100]}<" in rows
    assert f"#{expected[99]}<" not in rows
    # A malformed cursor is ignored: the first page.
    for bad in ["nonsense", "2026-01-01T00:00:00,x", "2026-01-01T00:00:00,5", "9999-12-31T23:59:59-23:59,1"]:
        assert [t.pk for t in agent_client.get(url, {"status": "all", "after": bad}).context["tickets"]] == expected[
            :50
        ]


def test_rows_partial_shows_new_tickets(agent_client, locmem_channel):
    """The polled partial is just the table rows, and includes tickets that arrived since the page loaded."""
    agent_client.get(reverse("console:ticket-list"))
    open_tickets(locmem_channel, 1)
    html = agent_client.get(reverse("console:ticket-rows"), headers={"HX-Request": "true"}).content.decode()
    assert html.lstrip().startswith("<tr>")
    assert "Problem 0" in html
    assert "<html" not in html


def test_list_query_count_does_not_grow(agent_client, locmem_channel):
    """Listing 60 tickets (a full page) takes exactly as many queries as listing 5, and so does the polled
    partial, which also skips the filter dropdowns' and saved views' queries (it does not render them)."""
    list_url, rows_url = reverse("console:ticket-list"), reverse("console:ticket-rows")
    open_tickets(locmem_channel, 5)
    few = queries_for(agent_client, list_url, cold_cache=True)
    few_rows = queries_for(agent_client, rows_url, cold_cache=True)
    open_tickets(locmem_channel, 55, first=100)
    assert Ticket.objects.count() == 60
    assert queries_for(agent_client, list_url, cold_cache=True) == few
    assert queries_for(agent_client, rows_url, cold_cache=True) == few_rows == few - 4
    # With the shared view counts cached (the usual case), one query fewer.
    assert queries_for(agent_client, rows_url) == few_rows - 1


# Ticket page ----------------------------------------------------------------


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


def test_queue_rows_escape_markup(agent_client, locmem_channel):
    """The queue's rows (rendered in Python by the console_rows tag) escape the subject, the requester's
    name and the channel's name, on the page and in the polled partial; a ticket without a channel says so."""
    script = "<script>alert(1)</script>"
    receive(locmem_channel, [message("m0", text=script, name=f'"><b>Mallory</b>{script}')])
    Ticket.objects.create(subject="No channel", requester=Ticket.objects.get().requester)
    for url in [reverse("console:ticket-list"), reverse("console:ticket-rows")]:
        html = agent_client.get(url).content.decode()
        assert 'dir="auto">&lt;script&gt;alert(1)&lt;/script&gt;</a>' in html
        assert "<script>" not in html
        assert "<bdi>&quot;&gt;&lt;b&gt;Mallory&lt;/b&gt;&lt;script&gt;" in html
        assert "<b>Mallory" not in html
        assert '<td data-label="Channel"><span class="muted">none</span></td>' in html
        assert '<span class="channel-kind" data-kind="locmem">Locmem</span> lm</td>' in html


# Replies --------------------------------------------------------------------


def test_reply_is_queued_then_sent(agent_client, ticket, django_capture_on_commit_callbacks):
    """A reply is stored as queued (its badge polls), then sent through the channel (the badge stops polling)."""
    with django_capture_on_commit_callbacks() as callbacks:
        response = agent_client.post(reply_url(ticket), {"body": "On it.\r\nHang tight."})
    assert response.status_code == 302
    assert response.url == detail_url(ticket)
    reply = outbound(ticket).get()
    assert reply.delivery_status == Message.DeliveryStatus.QUEUED
    assert reply.body == "On it.\nHang tight."
    status_url = reverse("console:message-status", args=[reply.pk])
    html = agent_client.get(detail_url(ticket)).content.decode()
    assert "Reply queued for delivery." in html
    assert f'hx-get="{status_url}" hx-trigger="every 2s"' in html

    for callback in callbacks:  # the commit: hands the reply to (eager) Celery
        callback()
    assert locmem.outbox == [{"thread_key": "m0", "text": "On it.\nHang tight."}]
    fragment = agent_client.get(status_url, headers={"HX-Request": "true"}).content.decode()
    assert "Delivery: </span>Sent" in fragment
    assert "hx-trigger" not in fragment


def test_reply_errors_are_shown(agent_client, ticket):
    """A reply the service refuses (blank, too long for the channel) is not stored and its reason is shown."""
    response = agent_client.post(reply_url(ticket), {"body": "   "}, follow=True)
    assert "A reply needs some text." in response.content.decode()
    response = agent_client.post(reply_url(ticket), {"body": "x" * 1001}, follow=True)
    assert "this channel takes at most 1000" in response.content.decode()
    assert not outbound(ticket).exists()


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


def test_reply_requires_csrf_token(agent, ticket):
    """A reply POST without the CSRF token is refused; with it, it goes through."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.post(reply_url(ticket), {"body": "Forged"}).status_code == 403
    assert not outbound(ticket).exists()

    client.get(detail_url(ticket))  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    assert client.post(reply_url(ticket), {"body": "Real", "csrfmiddlewaretoken": token}).status_code == 302
    assert outbound(ticket).filter(body="Real").exists()
