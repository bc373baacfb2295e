"""The queue: views, filters, search, sorting, paging, and its rows' refresh."""

import logging
import re
import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from channels_ingest.models import Channel
from console.view_counts import SHARED_COUNTS_KEY
from tests.factories import BASE_TIME, message
from tests.helpers import open_tickets, queries_for, receive
from tickets.models import Contact, Identity, Message, Queue, Ticket
from tickets.roles import AGENTS_GROUP


def paging_count(sql):
    """A COUNT other than the view tabs' (``console.view_counts``: aliased "mine", "unassigned", ...)."""
    sql = sql.upper()
    return "COUNT(" in sql and 'AS "MINE"' not in sql and 'AS "UNASSIGNED"' not in sql


LIST = reverse("console:ticket-list")


@pytest.fixture
def other_agent(db):
    user = User.objects.create_user("other", password="other-pass-123")
    user.groups.add(Group.objects.get_or_create(name=AGENTS_GROUP)[0])
    return user


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


ROWS = reverse("console:ticket-rows")


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
    # The four dropdowns (channel, assignee, queue, category) and the saved views are not read by the rows.
    assert queries_for(agent_client, rows_url, cold_cache=True) == few_rows == few - 5
    # With the shared view counts cached (the usual case), one query fewer.
    assert queries_for(agent_client, rows_url) == few_rows - 1


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
        assert '<td data-label="Channel" class="channel"><span class="muted">none</span></td>' in html
        assert '<span class="channel-kind" data-kind="locmem">Locmem</span> lm</td>' in html


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


def test_the_queue_without_a_view_is_the_all_open_tab(agent_client, board):
    """There is no "Default" tab that repeats "All open": the plain queue is that tab, marked current, and its
    link leads there; the status filter's blank choice says plainly that it follows the tab."""
    b = board
    Ticket.objects.filter(pk=b["old"]).update(status=Ticket.Status.RESOLVED)
    assert listed(agent_client) == listed(agent_client, view="open")
    html = agent_client.get(LIST).content.decode()
    tabs = html[html.index('id="view-tabs"') : html.index("</nav>", html.index('id="view-tabs"'))]
    assert ">Default<" not in tabs
    assert re.findall(r"<a [^>]*>([^<]+)", tabs) == [
        "My open ",
        "Unassigned ",
        "All open ",
        "Pending ",
        "Resolved ",
        "Breaching soon ",
        "Breached ",
    ]
    assert re.search(r'<a href="[^"?]*" aria-current="page">All open <span class="view-count">5</span>', tabs)
    assert '<option value="" selected>As the tab shows</option>' in html
    assert "Default (" not in html
    # A status chosen without a tab is not "All open"; the tab then leads back to it.
    filtered = agent_client.get(LIST, {"status": "resolved"}).content.decode()
    assert 'aria-current="page">All open' not in filtered
    assert re.search(r"<a href=\"\?\">All open", filtered)
    # An old ?view=open link (a saved view) still marks the same tab.
    assert 'aria-current="page">All open' in agent_client.get(LIST, {"view": "open"}).content.decode()


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
    assert counts == {"mine": 2, "unassigned": 2, "open": 5, "pending": 1, "resolved": 1, "breaching": 0, "breached": 0}
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


def warnings_in(caplog):
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_the_queue_hides_shared_counts_while_the_cache_is_down(agent_client, board, dead_cache, caplog):
    """Defect 4: with the cache down the queue and its polled rows still answer. The shared counts are hidden
    (no tab shows a count it cannot vouch for), "My open" is still exact, and each request logs one warning,
    not a traceback."""
    for url in (LIST, ROWS):
        caplog.clear()
        response = agent_client.get(url)
        assert response.status_code == 200
        assert len(response.context["tickets"]) == 6
        html = response.content.decode()
        assert 'My open <span class="view-count">2</span>' in html
        assert html.count('class="view-count"') == 1
        assert [r.exc_info for r in warnings_in(caplog)] == [None]


def test_a_frozen_cache_slows_the_queue_but_does_not_hang_it(agent_client, board, settings, throwaway_redis):
    """A Redis that accepts connections but never answers (here: stopped with SIGSTOP) costs the queue the cache's
    socket timeout (settings.REDIS_CACHE_OPTIONS), not a hung request; then it shows no shared counts."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": throwaway_redis.url,
            "OPTIONS": settings.REDIS_CACHE_OPTIONS,
        }
    }
    throwaway_redis.freeze()
    started = time.monotonic()
    response = agent_client.get(LIST)
    assert response.status_code == 200
    assert time.monotonic() - started < 3 * settings.REDIS_CACHE_OPTIONS["socket_timeout"]
    assert response.content.decode().count('class="view-count"') == 1


def test_a_ticket_update_goes_through_while_the_cache_is_down(agent_client, board, dead_cache, caplog):
    """Forgetting the shared counts after an agent's change is best effort: the change itself is saved."""
    response = agent_client.post(reverse("console:ticket-update", args=[board["plain"]]), {"action": "resolve"})
    assert response.status_code == 302
    assert Ticket.objects.get(pk=board["plain"]).status == Ticket.Status.RESOLVED
    assert len(warnings_in(caplog)) == 1


def test_signing_in_works_while_the_cache_is_down(client, agent, dead_cache):
    """Sessions are kept in the database, not the cache: agents can still sign in and reach the queue."""
    response = client.post(reverse("login"), {"username": "agent", "password": "agent-pass-123"})
    assert response.status_code == 302
    assert client.get(LIST).status_code == 200


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


def test_the_queue_keeps_its_filters_in_the_selects(agent_client, locmem_channel):
    html = agent_client.get(reverse("console:ticket-list"), {"status": "pending", "age": "7d"}).content.decode()
    assert '<option value="pending" selected>' in html
    assert '<option value="7d" selected>' in html
    assert '<label for="id_status">Status</label><select name="status" id="id_status">' in html
