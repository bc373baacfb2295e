"""The queue's views (tabs with counts), filters, sorting and search (issue 4).

Runs on PostgreSQL (full-text search, GIN indexes) and on SQLite (the ``icontains`` fallback).
"""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from channels_ingest.models import Channel
from console.view_counts import SHARED_COUNTS_KEY
from tests.conftest import queries_for, receive
from tests.factories import message
from tickets.models import Contact, Identity, Message, Queue, Ticket
from tickets.roles import AGENTS_GROUP

LIST = reverse("console:ticket-list")
ROWS = reverse("console:ticket-rows")


@pytest.fixture
def other_agent(db):
    user = User.objects.create_user("other", password="other-pass-123")
    user.groups.add(Group.objects.get_or_create(name=AGENTS_GROUP)[0])
    return user


def open_tickets(channel, count, *, first=0):
    numbers = range(first, first + count)
    receive(
        channel, [message(f"m{n}", user=f"u{n}", name=f"Person {n}", text=f"Problem {n}", minute=n) for n in numbers]
    )
    return list(Ticket.objects.order_by("id"))


def listed(client, url=LIST, **params):
    response = client.get(url, params)
    assert response.status_code == 200
    return {t.pk for t in response.context["tickets"]}


@pytest.fixture
def board(locmem_channel, agent, other_agent):
    """Six tickets, each differing in one thing from the first."""
    other_channel = Channel.objects.create(kind="locmem", name="other", config={"inbox": "other"})
    network = Queue.objects.create(name="Network")
    plain, mine, theirs, urgent, old, pending = open_tickets(locmem_channel, 6)
    now = timezone.now()
    Ticket.objects.update(created_at=now - timedelta(minutes=30))
    Ticket.objects.filter(pk=mine.pk).update(assignee=agent, queue=network)
    Ticket.objects.filter(pk=theirs.pk).update(assignee=other_agent, channel=other_channel)
    Ticket.objects.filter(pk=urgent.pk).update(priority=Ticket.Priority.URGENT, created_at=now - timedelta(hours=5))
    Ticket.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=10))
    Ticket.objects.filter(pk=pending.pk).update(status=Ticket.Status.PENDING, assignee=agent)
    return {
        "plain": plain.pk,
        "mine": mine.pk,
        "theirs": theirs.pk,
        "urgent": urgent.pk,
        "old": old.pk,
        "pending": pending.pk,
        "other_channel": other_channel,
        "network": network,
        "other_agent": other_agent,
    }


def test_each_filter_narrows(agent_client, board):
    """Channel, status, priority, assignee (me / unassigned / an agent), queue and age each narrow the list."""
    b = board
    everything = {b[k] for k in ("plain", "mine", "theirs", "urgent", "old", "pending")}
    assert listed(agent_client) == everything
    assert listed(agent_client, channel=b["other_channel"].pk) == {b["theirs"]}
    assert listed(agent_client, status="pending") == {b["pending"]}
    assert listed(agent_client, priority=Ticket.Priority.URGENT) == {b["urgent"]}
    assert listed(agent_client, assignee="me") == {b["mine"], b["pending"]}
    assert listed(agent_client, assignee="none") == everything - {b["mine"], b["pending"], b["theirs"]}
    assert listed(agent_client, assignee=b["other_agent"].pk) == {b["theirs"]}
    assert listed(agent_client, queue=b["network"].pk) == {b["mine"]}
    assert listed(agent_client, age="1h") == everything - {b["urgent"], b["old"]}
    assert listed(agent_client, age="24h") == everything - {b["old"]}
    assert listed(agent_client, age="gt7d") == {b["old"]}
    # Invalid values are ignored rather than failing the page.
    assert listed(agent_client, channel="x", priority="99", assignee="nobody", age="forever") == everything


def test_filters_combine_and_stay_in_the_url(agent_client, board):
    """Filters AND together, and the pager and the polled rows keep them in their query strings."""
    b = board
    assert listed(agent_client, assignee="me", status="pending") == {b["pending"]}
    assert listed(agent_client, assignee="none", age="24h", priority=Ticket.Priority.URGENT) == {b["urgent"]}
    assert listed(agent_client, assignee="me", channel=b["other_channel"].pk) == set()
    html = agent_client.get(LIST, {"assignee": "me", "age": "7d"}).content.decode()
    assert 'hx-get="/rows/?assignee=me&amp;age=7d"' in html or "rows/?assignee=me&amp;age=7d" in html
    assert listed(agent_client, ROWS, assignee="me", age="7d") == {b["mine"], b["pending"]}


def test_views_narrow_and_count_cheaply(agent_client, agent, board):
    """Each view tab lists its tickets and shows its count. The shared counts are one aggregate query,
    reused across agents for CONSOLE_VIEW_COUNTS_TTL seconds; "My open" is counted for each agent."""
    b = board
    Ticket.objects.filter(pk=b["old"]).update(status=Ticket.Status.RESOLVED)
    assert listed(agent_client, view="mine") == {b["mine"], b["pending"]}
    assert listed(agent_client, view="unassigned") == {b["plain"], b["urgent"]}
    assert listed(agent_client, view="open") == {b["plain"], b["mine"], b["theirs"], b["urgent"], b["pending"]}
    assert listed(agent_client, view="pending") == {b["pending"]}
    assert listed(agent_client, view="resolved") == {b["old"]}
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        response = agent_client.get(LIST, {"view": "mine"})
    counts = {view["key"]: view["count"] for view in response.context["views"]}
    assert counts == {"mine": 2, "unassigned": 2, "open": 5, "pending": 1, "resolved": 1}
    counting = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert len(counting) == 2
    assert all("tickets_ticket" in sql for sql in counting)
    html = response.content.decode()
    assert 'aria-current="page">My open <span class="view-count">2</span>' in html
    # The polled rows bring the tabs along out of band, so their counts stay fresh.
    rows = agent_client.get(ROWS, {"view": "mine"}).content.decode()
    assert 'id="view-tabs"' in rows
    assert 'hx-swap-oob="true"' in rows

    # Within the TTL the shared counts are reused (only "My open" is counted again) ...
    Ticket.objects.filter(pk=b["plain"]).update(assignee=agent)
    with CaptureQueriesContext(connection) as queries:
        counts = {v["key"]: v["count"] for v in agent_client.get(ROWS).context["views"]}
    assert [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()] == [
        q["sql"] for q in queries if 'AS "MINE"' in q["sql"].upper()
    ]
    assert counts["mine"] == 3
    assert counts["unassigned"] == 2
    # ... and counted again once it expires.
    cache.delete(SHARED_COUNTS_KEY)
    counts = {v["key"]: v["count"] for v in agent_client.get(ROWS).context["views"]}
    assert counts["mine"] == 3
    assert counts["unassigned"] == 1


def test_an_agents_own_change_refreshes_the_shared_counts(agent_client, board):
    """After changing a ticket, the agent's tabs agree with what they just did (no waiting for the TTL)."""
    b = board
    before = {v["key"]: v["count"] for v in agent_client.get(LIST).context["views"]}
    agent_client.post(reverse("console:ticket-update", args=[b["plain"]]), {"action": "resolve"})
    after = {v["key"]: v["count"] for v in agent_client.get(LIST).context["views"]}
    assert after["open"] == before["open"] - 1
    assert after["resolved"] == before["resolved"] + 1


def test_sorting_and_offset_paging(agent_client, locmem_channel):
    """Sort by created or priority (ties broken by id); those sorts page by ?page=, the default by keyset."""
    tickets = open_tickets(locmem_channel, 55)
    Ticket.objects.filter(pk__in=[t.pk for t in tickets[:3]]).update(priority=Ticket.Priority.HIGH)
    first = agent_client.get(LIST, {"sort": "priority"})
    pks = [t.pk for t in first.context["tickets"]]
    assert pks[:3] == sorted((t.pk for t in tickets[:3]), reverse=True)
    assert first.context["next_cursor"] is None
    assert 'href="?sort=priority&amp;page=2" rel="next"' in first.content.decode()
    second = agent_client.get(LIST, {"sort": "priority", "page": 2})
    assert len(second.context["tickets"]) == 5
    assert not set(pks) & {t.pk for t in second.context["tickets"]}
    created = [t.pk for t in agent_client.get(LIST, {"sort": "created"}).context["tickets"]]
    expected = list(Ticket.objects.order_by("-created_at", "-id").values_list("pk", flat=True)[:50])
    assert created == expected
    # A cursor with a non-default sort is ignored (offset paging), not misapplied.
    cursor = agent_client.get(LIST).context["next_cursor"]
    assert [t.pk for t in agent_client.get(LIST, {"sort": "created", "after": cursor}).context["tickets"]] == expected


@pytest.fixture
def searchable(locmem_channel):
    receive(
        locmem_channel,
        [
            message("a0", user="maya_dev", name="Maya Patel", text="The printer is on fire"),
            message("b0", user="leo", name="Leo Okafor", text="VPN drops every hour", minute=1),
            message("c0", user="zed", name="Zed Quinn", text="Laptop will not boot", minute=2),
        ],
    )
    printer, vpn, laptop = Ticket.objects.order_by("id")
    # More messages on one ticket that all match: the ticket must still be listed once.
    receive(
        locmem_channel,
        [
            message(
                f"b{n}",
                thread="b0",
                user="leo",
                name="Leo Okafor",
                text=f"still broken, kerberos error {n}",
                minute=n + 2,
            )
            for n in range(1, 4)
        ],
    )
    Identity.objects.filter(handle="zed").update(handle="zquinn_ops")
    return printer, vpn, laptop


def test_search_by_subject_message_text_and_requester(agent_client, searchable):
    """?q= finds tickets by subject, by any message's text, and by the requester's name or handle,
    each ticket once however many of its messages match."""
    printer, vpn, laptop = searchable
    assert Message.objects.filter(ticket=vpn, body__icontains="kerberos").count() == 3
    assert listed(agent_client, q="printer") == {printer.pk}
    response = agent_client.get(LIST, {"q": "kerberos"})
    assert [t.pk for t in response.context["tickets"]] == [vpn.pk]  # no duplicates
    assert listed(agent_client, q="Okafor") == {vpn.pk}
    assert listed(agent_client, q="zquinn_ops") == {laptop.pk}
    assert listed(agent_client, q="nothing-matches-this") == set()
    # Search combines with the filters and views.
    assert listed(agent_client, q="kerberos", view="resolved") == set()
    assert listed(agent_client, ROWS, q="kerberos") == {vpn.pk}


def test_contact_name_search(agent_client, locmem_channel):
    """The requester's contact name is searched too (not only identities)."""
    receive(locmem_channel, [message("m0", text="Hello")])
    ticket = Ticket.objects.get()
    Contact.objects.filter(pk=ticket.requester_id).update(display_name="Ingrid Bergman")
    assert listed(agent_client, q="Bergman") == {ticket.pk}


def test_search_text_is_escaped(agent_client, locmem_channel):
    """A search for markup is echoed in the labelled search input as text, never as markup."""
    open_tickets(locmem_channel, 1)
    html = agent_client.get(LIST, {"q": '"><script>alert(1)</script>'}).content.decode()
    assert '<label for="search">Search</label>' in html
    assert 'id="search"' in html
    assert 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html
    assert "<script>alert(1)" not in html


def test_query_count_constant_with_filters_and_search(agent_client, locmem_channel, agent):
    """Five or forty rows, with filters and search on, take the same number of queries (page and partial)."""
    params = "?q=Problem&assignee=none&age=30d&priority=2&view=open"
    open_tickets(locmem_channel, 5)
    few = queries_for(agent_client, LIST + params, cold_cache=True)
    few_rows = queries_for(agent_client, ROWS + params, cold_cache=True)
    assert len(agent_client.get(LIST + params).context["tickets"]) == 5
    open_tickets(locmem_channel, 35, first=100)
    Ticket.objects.update(created_at=timezone.now())
    assert len(agent_client.get(LIST + params).context["tickets"]) == 40
    assert queries_for(agent_client, LIST + params, cold_cache=True) == few
    assert queries_for(agent_client, ROWS + params, cold_cache=True) == few_rows
    sorted_few = queries_for(agent_client, LIST + params + "&sort=priority", cold_cache=True)
    assert sorted_few == few


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the full-text GIN indexes exist on PostgreSQL only")
def test_search_indexes_exist(db):
    """Migration 0003 built the GIN indexes that ticket search uses on PostgreSQL."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%USING gin%to_tsvector%'")
        names = {row[0] for row in cursor.fetchall()}
    assert {"ticket_subject_fts", "message_body_fts", "contact_name_fts", "identity_name_fts"} <= names
