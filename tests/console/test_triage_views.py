"""The Triage list."""

from datetime import timedelta

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from channels_ingest.models import InboundMessage
from tests.factories import BASE_TIME, mention
from tests.helpers import (
    TRIAGE,
    awaiting_triage,
    detail_url,
    queries_for,
    x_ticket,
)


def test_triage_lists_posts_newest_first_escaped(agent_client, offline_x_channel):
    """Each post shows its channel, author (name and @handle), text escaped with its line breaks kept, and time."""
    awaiting_triage(
        offline_x_channel,
        [
            mention(1, text="older post", minute=0),
            mention(2, text="<script>alert(1)</script>\nsecond line", name="<b>Mallory</b>", handle="mal", minute=5),
        ],
    )
    response = agent_client.get(reverse("console:triage"))
    html = response.content.decode()
    assert [row.text for row in response.context["rows"]] == ["<script>alert(1)</script>\nsecond line", "older post"]
    assert '<div class="triage-text" dir="auto">&lt;script&gt;alert(1)&lt;/script&gt;\nsecond line</div>' in html
    assert "<script>alert" not in html
    assert "<b>Mallory" not in html
    assert "<bdi>&lt;b&gt;Mallory&lt;/b&gt;</bdi>" in html
    assert "<bdi>@mal</bdi>" in html
    assert 'data-kind="x">X</span> x-help' in html
    assert f'<time datetime="{(BASE_TIME + timedelta(minutes=5)).isoformat()}"' in html
    assert html.count('formaction="/console/triage/accept/"') == 3  # one per row, one for the selection
    assert 'Triage <span id="triage-count" class="nav-count">(2)</span>' in html
    assert 'aria-current="page">Triage' in html


def test_triage_shows_only_rows_awaiting_triage(agent_client, offline_x_channel):
    """Rows already accepted, dismissed or processed are not listed; an empty list says so."""
    rows = awaiting_triage(offline_x_channel, [mention(1), mention(2)])
    InboundMessage.objects.filter(pk__in=[r.pk for r in rows]).update(status=InboundMessage.Status.SKIPPED)
    response = agent_client.get(reverse("console:triage"))
    assert response.context["rows"] == []
    assert "Nothing awaits triage." in response.content.decode()


def test_accept_one_row(agent_client, agent, offline_x_channel, django_capture_on_commit_callbacks):
    """A row's "Create ticket" sends that row alone (even with others ticked) back to ingestion, as triaged by the agent."""
    first, second, third = awaiting_triage(offline_x_channel, [mention(1), mention(2), mention(3)])
    with django_capture_on_commit_callbacks(execute=False):
        response = agent_client.post(reverse("console:triage-accept"), {"id": first.pk, "ids": [second.pk]})
    assert response.status_code == 302
    assert response.url == reverse("console:triage")
    statuses = dict(InboundMessage.objects.values_list("pk", "status"))
    assert statuses == {first.pk: "pending", second.pk: TRIAGE, third.pk: TRIAGE}
    first.refresh_from_db()
    assert first.triaged_by == agent
    assert first.triaged_at is not None
    html = agent_client.get(reverse("console:triage")).content.decode()
    assert "1 post accepted: the tickets appear in the list in a moment." in html


def test_bulk_dismiss_and_accept(agent_client, agent, offline_x_channel, django_capture_on_commit_callbacks):
    """The bulk buttons act on every ticked row: dismissed rows are skipped, accepted ones pending; others stay."""
    rows = awaiting_triage(offline_x_channel, [mention(n) for n in range(4)])
    response = agent_client.post(reverse("console:triage-dismiss"), {"ids": [rows[0].pk, rows[1].pk], "page": "2"})
    assert response.url == reverse("console:triage") + "?page=2"
    with django_capture_on_commit_callbacks(execute=False):
        agent_client.post(reverse("console:triage-accept"), {"ids": [rows[2].pk, "junk", rows[0].pk]})
    by_pk = {row.pk: row for row in InboundMessage.objects.all()}
    assert [by_pk[r.pk].status for r in rows] == ["skipped", "skipped", "pending", TRIAGE]
    assert all(by_pk[r.pk].triaged_by == agent for r in rows[:3])
    assert by_pk[rows[0].pk].error == "Dismissed in triage by agent"
    html = agent_client.get(reverse("console:triage")).content.decode()
    assert "1 post had already been triaged." in html  # rows[0], dismissed before


def test_triage_action_without_selection(agent_client, offline_x_channel):
    """Pressing a bulk button with nothing ticked changes nothing and says what to do."""
    (row,) = awaiting_triage(offline_x_channel, [mention(1)])
    response = agent_client.post(reverse("console:triage-dismiss"), {}, follow=True)
    assert "Select at least one post." in response.content.decode()
    row.refresh_from_db()
    assert row.status == TRIAGE


def test_triage_actions_require_post_and_csrf(agent, offline_x_channel):
    """Accept and dismiss are POSTs with the CSRF token."""
    (row,) = awaiting_triage(offline_x_channel, [mention(1)])
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.get(reverse("console:triage-dismiss")).status_code == 405
    assert client.post(reverse("console:triage-dismiss"), {"id": row.pk}).status_code == 403
    row.refresh_from_db()
    assert row.status == TRIAGE


def test_triage_pages_without_count(agent_client, offline_x_channel):
    """Pages hold 50 posts, with a next link only when there are more, and no COUNT query."""
    awaiting_triage(offline_x_channel, [mention(n, minute=n) for n in range(60)])
    with CaptureQueriesContext(connection) as queries:
        first = agent_client.get(reverse("console:triage"))
    assert len(first.context["rows"]) == 50
    assert first.context["has_next"]
    assert not any("COUNT(" in query["sql"].upper() for query in queries)
    assert "?page=2" in first.content.decode()
    second = agent_client.get(reverse("console:triage") + "?page=2")
    assert len(second.context["rows"]) == 10
    assert not second.context["has_next"]
    assert '<input type="hidden" name="page" value="2">' in second.content.decode()


def test_triage_query_count_does_not_grow(agent_client, offline_x_channel, locmem_channel):
    """The triage list takes as many queries with 30 posts (from two channels) as with 3."""
    awaiting_triage(offline_x_channel, [mention(n) for n in range(3)])
    few = queries_for(agent_client, reverse("console:triage"))
    awaiting_triage(offline_x_channel, [mention(n) for n in range(3, 20)])
    awaiting_triage(locmem_channel, [mention(n) for n in range(20, 30)])
    assert InboundMessage.objects.filter(status=TRIAGE).count() == 30
    assert queries_for(agent_client, reverse("console:triage")) == few


def test_nav_triage_count_is_capped(agent_client, offline_x_channel):
    """The ticket list's nav shows how many posts await triage, "99+" past 99, with no COUNT query."""
    awaiting_triage(offline_x_channel, [mention(n) for n in range(3)])
    html = agent_client.get(reverse("console:ticket-list")).content.decode()
    assert '<span id="triage-count" class="nav-count">(3)</span>' in html
    few = queries_for(agent_client, reverse("console:ticket-list"))
    awaiting_triage(offline_x_channel, [mention(n) for n in range(3, 150)])
    with CaptureQueriesContext(connection) as queries:
        html = agent_client.get(reverse("console:ticket-list")).content.decode()
    assert '<span id="triage-count" class="nav-count">(99+)</span>' in html
    assert len(queries) == few
    # The view tabs' counts (aliased "mine", "unassigned", ...) are the only COUNTs, whatever the triage backlog.
    counts = [query["sql"].upper() for query in queries if "COUNT(" in query["sql"].upper()]
    assert all('AS "MINE"' in sql or 'AS "UNASSIGNED"' in sql for sql in counts)


def test_polled_rows_refresh_the_triage_count(agent_client, offline_x_channel):
    """The ticket list's 5-second poll brings the triage count along as an out-of-band swap, after the rows."""
    awaiting_triage(offline_x_channel, [mention(n) for n in range(2)])
    html = agent_client.get(reverse("console:ticket-rows"), headers={"HX-Request": "true"}).content.decode()
    assert html.lstrip().startswith("<tr>")
    assert html.rstrip().endswith('<span id="triage-count" class="nav-count" hx-swap-oob="true">(2)</span>')


def test_other_pages_show_triage_without_a_number(agent_client, offline_x_channel):
    """The ticket page links to triage without counting it."""
    ticket = x_ticket(offline_x_channel, summoned=True)
    html = agent_client.get(detail_url(ticket)).content.decode()
    assert '<a href="/console/triage/">Triage</a>' in html
    assert "triage-count" not in html
