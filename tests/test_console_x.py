"""The console's X features: reply modes and the weighted length counter, the triage list, channel health.

X tickets are built without network: an X channel pointing at a closed port, and envelopes handed
straight to ``receive_batch``. Nothing here lets a delivery run (on-commit callbacks are captured,
not executed), so no test talks to X.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from channel_adapters.base import Envelope, EnvelopeKind, Sender
from channel_adapters.x import NOT_SUMMONED
from channels_ingest.models import ApiUsage, Channel, InboundMessage
from channels_ingest.usage import month_start
from tests.conftest import queries_for, receive
from tests.factories import BASE_TIME, message
from tickets.models import Message, Ticket

TRIAGE = InboundMessage.Status.TRIAGE
LONG_URL_BODY = "see https://example.com/a/very/long/path"  # 4 characters + a link, which X counts as 23


@pytest.fixture
def x_channel(db):
    return Channel.objects.create(
        kind="x",
        name="x-help",
        config={"base_url": "http://127.0.0.1:9"},
        secrets={"bearer_token": "t"},
        state={"account_id": "1", "username": "ithelp"},
    )


def mention(n, *, summoned=False, text=None, user="100", handle="ann", name="Ann Employee", minute=0):
    """A public post on X that mentions the helpdesk; ``summoned`` when it @mentions the account itself."""
    return Envelope(
        external_id=f"tweet:{n}",
        kind=EnvelopeKind.MESSAGE,
        thread_key=f"conv:{n}",
        sent_at=BASE_TIME + timedelta(minutes=minute),
        sender=Sender(namespace="x", external_id=user, handle=f"@{handle}", display_name=name),
        text=text if text is not None else f"@ithelp my laptop {n} is broken",
        starts_thread=True,
        public=True,
        meta={"summoned": summoned, "direct_mention": summoned},
    )


def x_ticket(channel, *, summoned):
    receive(channel, [mention(123, summoned=summoned)])
    return Ticket.objects.get()


def awaiting_triage(channel, envelopes):
    """Triage rows as ingestion leaves them: the raw envelope, held for an agent."""
    return InboundMessage.objects.bulk_create(
        [
            InboundMessage(channel=channel, external_id=e.external_id, payload=e.to_json(), status=TRIAGE)
            for e in envelopes
        ]
    )


def detail_url(ticket):
    return reverse("console:ticket-detail", args=[ticket.pk])


def length_url(ticket):
    return reverse("console:reply-length", args=[ticket.pk])


def counter(client, ticket, body, mode=None):
    data = {"body": body} if mode is None else {"body": body, "mode": mode}
    response = client.post(length_url(ticket), data, headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.content.decode()


# Access -----------------------------------------------------------------------


def test_new_pages_are_for_agents_only(client, employee, x_channel):
    """Employees get 403 on the triage list, its actions, the channels page and the counter; nothing changes."""
    ticket = x_ticket(x_channel, summoned=True)
    (row,) = awaiting_triage(x_channel, [mention(7)])
    client.force_login(employee)
    assert client.get(reverse("console:triage")).status_code == 403
    assert client.get(reverse("console:channels")).status_code == 403
    assert client.post(reverse("console:triage-accept"), {"id": row.pk}).status_code == 403
    assert client.post(reverse("console:triage-dismiss"), {"id": row.pk}).status_code == 403
    assert client.post(length_url(ticket), {"body": "hi"}).status_code == 403
    row.refresh_from_db()
    assert row.status == TRIAGE
    assert row.triaged_by is None


@pytest.mark.django_db
def test_anonymous_counter_poll_reloads_the_page(client):
    """The counter's htmx request after the session expired asks for a reload instead of a login form."""
    response = client.post(reverse("console:reply-length", args=[1]), {"body": "x"}, headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response["HX-Refresh"] == "true"


def test_admin_sees_the_channels_page(client, admin_user, x_channel):
    """Admins use the console too, and see the same channel health page."""
    client.force_login(admin_user)
    assert "x-help" in client.get(reverse("console:channels")).content.decode()


# Reply modes in the composer --------------------------------------------------


def test_composer_offers_dm_when_public_reply_is_not_allowed(agent_client, x_channel):
    """On a post that does not @mention us, public reply is shown disabled with X's reason, and DM is pre-selected."""
    ticket = x_ticket(x_channel, summoned=False)
    response = agent_client.get(detail_url(ticket))
    html = response.content.decode()
    assert [m.key for m in response.context["reply_modes"]] == ["public", "dm"]
    assert "<legend>Send as</legend>" in html
    public = html[html.index('value="public"') : html.index("</div>", html.index('value="public"'))]
    dm = html[html.index('value="dm"') : html.index("</div>", html.index('value="dm"'))]
    assert "disabled" in public
    assert "checked" not in public
    assert 'Public reply <span class="muted">(up to 280 characters)</span>' in public
    assert f"Public reply is not possible here: {NOT_SUMMONED}" in public
    assert 'aria-describedby="reply-mode-1-reason"' in public
    assert 'id="reply-mode-1-reason"' in public
    assert "checked" in dm
    assert "disabled" not in dm
    assert "(up to 10000 characters)" in dm
    assert 'id="reply-counter" class="reply-counter" aria-live="polite"' in html
    assert "0 / 10000" in html  # the counter starts at the pre-selected mode's limit
    assert 'maxlength="10000"' in html  # the longest allowed mode; the counter shows the chosen one


def test_composer_preselects_public_reply_when_summoned(agent_client, x_channel):
    """On a post that @mentions us, both modes are allowed and public reply (the first) is pre-selected."""
    ticket = x_ticket(x_channel, summoned=True)
    html = agent_client.get(detail_url(ticket)).content.decode()
    public = html[html.index('value="public"') : html.index("</div>", html.index('value="public"'))]
    assert "checked" in public
    assert "disabled" not in public
    assert "not possible here" not in html
    assert "0 / 280" in html


def test_single_mode_channel_has_no_mode_field(agent_client, locmem_channel):
    """A channel with one unnamed mode (locmem, Slack) shows no radio group; its limit hint and counter stay."""
    receive(locmem_channel, [message("m0")])
    ticket = Ticket.objects.get()
    html = agent_client.get(detail_url(ticket)).content.decode()
    assert 'name="mode"' not in html
    assert 'id="reply-modes"' not in html
    assert "At most 1000 characters on this channel." in html
    assert "0 / 1000" in html
    assert 'hx-trigger="input changed delay:150ms"' in html


def test_textarea_triggers_the_counter(agent_client, x_channel):
    """The textarea asks for the count while typing (debounced) and when the mode changes, sending the whole form."""
    ticket = x_ticket(x_channel, summoned=True)
    html = agent_client.get(detail_url(ticket)).content.decode()
    assert f'hx-post="{length_url(ticket)}"' in html
    # The modes sit in a slot that is swapped when the agent picks another conversation; the slot stays.
    assert 'hx-trigger="input changed delay:150ms, change from:#reply-modes-slot"' in html
    assert 'hx-include="closest form" hx-target="#reply-counter" hx-swap="innerHTML"' in html
    assert '<body hx-headers=\'{"X-CSRFToken": "' in html  # htmx sends the CSRF token with every request


# Live length counter ----------------------------------------------------------


def test_counter_weighs_links_like_x(agent_client, x_channel):
    """A public reply counts a link as 23 characters (twitter-text); a DM counts plain characters."""
    ticket = x_ticket(x_channel, summoned=True)
    public = counter(agent_client, ticket, LONG_URL_BODY, "public")
    assert '<span class="reply-count">27 / 280</span>' in public
    assert "over the limit" not in public
    assert "<html" not in public
    assert f"{len(LONG_URL_BODY)} / 10000" in counter(agent_client, ticket, LONG_URL_BODY, "dm")


def test_counter_weighs_emoji_and_flags_over_the_limit(agent_client, x_channel):
    """Emoji count 2 in a public reply; past 280 the counter says by how much it is over."""
    ticket = x_ticket(x_channel, summoned=True)
    assert "4 / 280" in counter(agent_client, ticket, "🙂🙂", "public")
    over = counter(agent_client, ticket, "x" * 279 + "🙂", "public")
    assert '<span class="reply-count is-over">281 / 280</span>' in over
    assert "1 over the limit" in over


def test_counter_does_not_weigh_huge_text(agent_client, x_channel):
    """Text past the 40,000 characters any message may hold is reported as over the limit without being weighed."""
    ticket = x_ticket(x_channel, summoned=True)
    html = counter(agent_client, ticket, "🙂" * 40_001, "public")
    assert "40001 / 280" in html
    assert "39721 over the limit" in html


def test_counter_without_mode_uses_the_default(agent_client, x_channel, locmem_channel):
    """Without (or with an unknown) mode the counter measures the default mode; on locmem, against its 1000."""
    ticket = x_ticket(x_channel, summoned=False)  # default: DM
    assert f"{len(LONG_URL_BODY)} / 10000" in counter(agent_client, ticket, LONG_URL_BODY)
    assert f"{len(LONG_URL_BODY)} / 10000" in counter(agent_client, ticket, LONG_URL_BODY, "nonsense")
    receive(locmem_channel, [message("m0")])
    local = Ticket.objects.get(channel=locmem_channel)
    assert "3 / 1000" in counter(agent_client, local, "a\r\nb")  # CRLF counts as one character, as when sent


def test_counter_requires_csrf_token(agent, x_channel):
    """The counter is a POST like the reply: refused without the CSRF header, answered with it."""
    ticket = x_ticket(x_channel, summoned=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.post(length_url(ticket), {"body": "hi", "mode": "public"}).status_code == 403
    client.get(detail_url(ticket))  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post(length_url(ticket), {"body": "hi", "mode": "public"}, headers={"X-CSRFToken": token})
    assert response.status_code == 200
    assert "2 / 280" in response.content.decode()


def test_counter_query_count_is_fixed(agent_client, x_channel):
    """Counting a keystroke reads the ticket, its latest conversation and what it answers, whatever the text."""
    ticket = x_ticket(x_channel, summoned=True)
    with CaptureQueriesContext(connection) as short:
        counter(agent_client, ticket, "hi", "public")
    with CaptureQueriesContext(connection) as long:
        counter(agent_client, ticket, "hi " * 1000, "dm")
    assert len(short) == len(long)


# Replying with a mode ---------------------------------------------------------


def test_public_reply_refused_when_not_summoned(agent_client, x_channel, django_capture_on_commit_callbacks):
    """Forcing mode=public on a post that does not @mention us shows X's reason and queues nothing."""
    ticket = x_ticket(x_channel, summoned=False)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = agent_client.post(
            reverse("console:ticket-reply", args=[ticket.pk]), {"body": "Hi there", "mode": "public"}, follow=True
        )
    assert f"Public reply is not possible here: {NOT_SUMMONED}" in response.content.decode()
    assert not ticket.messages.filter(direction=Message.Direction.OUTBOUND).exists()
    assert callbacks == []


def test_dm_reply_is_queued_as_dm(agent_client, x_channel, django_capture_on_commit_callbacks):
    """Choosing DM stores the reply queued with reply_mode "dm"; delivery waits for the commit (not run here)."""
    ticket = x_ticket(x_channel, summoned=False)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = agent_client.post(
            reverse("console:ticket-reply", args=[ticket.pk]), {"body": LONG_URL_BODY, "mode": "dm"}
        )
    assert response.status_code == 302
    assert response.url == detail_url(ticket)
    reply = ticket.messages.get(direction=Message.Direction.OUTBOUND)
    assert reply.reply_mode == "dm"
    assert reply.delivery_status == Message.DeliveryStatus.QUEUED
    assert reply.body == LONG_URL_BODY
    assert len(callbacks) == 1  # the hand-over to delivery


def test_public_reply_over_280_weighted_is_refused(agent_client, x_channel, django_capture_on_commit_callbacks):
    """The server enforces the weighted limit whatever the counter said."""
    ticket = x_ticket(x_channel, summoned=True)
    with django_capture_on_commit_callbacks(execute=False):
        response = agent_client.post(
            reverse("console:ticket-reply", args=[ticket.pk]), {"body": "🙂" * 141, "mode": "public"}, follow=True
        )
    assert "The reply is 282 characters; a public reply takes at most 280." in response.content.decode()
    assert not ticket.messages.filter(direction=Message.Direction.OUTBOUND).exists()


def test_public_reply_when_summoned(agent_client, x_channel, django_capture_on_commit_callbacks):
    """On a post that @mentions us, a public reply is queued as "public"."""
    ticket = x_ticket(x_channel, summoned=True)
    with django_capture_on_commit_callbacks(execute=False):
        agent_client.post(reverse("console:ticket-reply", args=[ticket.pk]), {"body": LONG_URL_BODY, "mode": "public"})
    assert ticket.messages.get(direction=Message.Direction.OUTBOUND).reply_mode == "public"


def test_reply_without_mode_field_takes_the_default(agent_client, locmem_channel, django_capture_on_commit_callbacks):
    """A form without ``mode`` (single-mode channels) lets the service pick the default, as before."""
    receive(locmem_channel, [message("m0")])
    ticket = Ticket.objects.get()
    with django_capture_on_commit_callbacks(execute=False):
        agent_client.post(reverse("console:ticket-reply", args=[ticket.pk]), {"body": "On it."})
    assert ticket.messages.get(direction=Message.Direction.OUTBOUND).reply_mode == ""


# Triage -----------------------------------------------------------------------


def test_triage_lists_posts_newest_first_escaped(agent_client, x_channel):
    """Each post shows its channel, author (name and @handle), text escaped with its line breaks kept, and time."""
    awaiting_triage(
        x_channel,
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


def test_triage_shows_only_rows_awaiting_triage(agent_client, x_channel):
    """Rows already accepted, dismissed or processed are not listed; an empty list says so."""
    rows = awaiting_triage(x_channel, [mention(1), mention(2)])
    InboundMessage.objects.filter(pk__in=[r.pk for r in rows]).update(status=InboundMessage.Status.SKIPPED)
    response = agent_client.get(reverse("console:triage"))
    assert response.context["rows"] == []
    assert "Nothing awaits triage." in response.content.decode()


def test_accept_one_row(agent_client, agent, x_channel, django_capture_on_commit_callbacks):
    """A row's "Create ticket" sends that row alone (even with others ticked) back to ingestion, as triaged by the agent."""
    first, second, third = awaiting_triage(x_channel, [mention(1), mention(2), mention(3)])
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


def test_bulk_dismiss_and_accept(agent_client, agent, x_channel, django_capture_on_commit_callbacks):
    """The bulk buttons act on every ticked row: dismissed rows are skipped, accepted ones pending; others stay."""
    rows = awaiting_triage(x_channel, [mention(n) for n in range(4)])
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


def test_triage_action_without_selection(agent_client, x_channel):
    """Pressing a bulk button with nothing ticked changes nothing and says what to do."""
    (row,) = awaiting_triage(x_channel, [mention(1)])
    response = agent_client.post(reverse("console:triage-dismiss"), {}, follow=True)
    assert "Select at least one post." in response.content.decode()
    row.refresh_from_db()
    assert row.status == TRIAGE


def test_triage_actions_require_post_and_csrf(agent, x_channel):
    """Accept and dismiss are POSTs with the CSRF token."""
    (row,) = awaiting_triage(x_channel, [mention(1)])
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.get(reverse("console:triage-dismiss")).status_code == 405
    assert client.post(reverse("console:triage-dismiss"), {"id": row.pk}).status_code == 403
    row.refresh_from_db()
    assert row.status == TRIAGE


def test_triage_pages_without_count(agent_client, x_channel):
    """Pages hold 50 posts, with a next link only when there are more, and no COUNT query."""
    awaiting_triage(x_channel, [mention(n, minute=n) for n in range(60)])
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


def test_triage_query_count_does_not_grow(agent_client, x_channel, locmem_channel):
    """The triage list takes as many queries with 30 posts (from two channels) as with 3."""
    awaiting_triage(x_channel, [mention(n) for n in range(3)])
    few = queries_for(agent_client, reverse("console:triage"))
    awaiting_triage(x_channel, [mention(n) for n in range(3, 20)])
    awaiting_triage(locmem_channel, [mention(n) for n in range(20, 30)])
    assert InboundMessage.objects.filter(status=TRIAGE).count() == 30
    assert queries_for(agent_client, reverse("console:triage")) == few


def test_nav_triage_count_is_capped(agent_client, x_channel):
    """The ticket list's nav shows how many posts await triage, "99+" past 99, with no COUNT query."""
    awaiting_triage(x_channel, [mention(n) for n in range(3)])
    html = agent_client.get(reverse("console:ticket-list")).content.decode()
    assert '<span id="triage-count" class="nav-count">(3)</span>' in html
    few = queries_for(agent_client, reverse("console:ticket-list"))
    awaiting_triage(x_channel, [mention(n) for n in range(3, 150)])
    with CaptureQueriesContext(connection) as queries:
        html = agent_client.get(reverse("console:ticket-list")).content.decode()
    assert '<span id="triage-count" class="nav-count">(99+)</span>' in html
    assert len(queries) == few
    # The view tabs' counts (aliased "mine", "unassigned", ...) are the only COUNTs, whatever the triage backlog.
    counts = [query["sql"].upper() for query in queries if "COUNT(" in query["sql"].upper()]
    assert all('AS "MINE"' in sql or 'AS "UNASSIGNED"' in sql for sql in counts)


def test_polled_rows_refresh_the_triage_count(agent_client, x_channel):
    """The ticket list's 5-second poll brings the triage count along as an out-of-band swap, after the rows."""
    awaiting_triage(x_channel, [mention(n) for n in range(2)])
    html = agent_client.get(reverse("console:ticket-rows"), headers={"HX-Request": "true"}).content.decode()
    assert html.lstrip().startswith("<tr>")
    assert html.rstrip().endswith('<span id="triage-count" class="nav-count" hx-swap-oob="true">(2)</span>')


def test_other_pages_show_triage_without_a_number(agent_client, x_channel):
    """The ticket page links to triage without counting it."""
    ticket = x_ticket(x_channel, summoned=True)
    html = agent_client.get(detail_url(ticket)).content.decode()
    assert '<a href="/console/triage/">Triage</a>' in html
    assert "triage-count" not in html


# Channel health ---------------------------------------------------------------


def test_channels_page_shows_health_and_spend(agent_client, x_channel, locmem_channel):
    """Each channel shows kind, name, health, last error, last poll and stored count, pause, and this month's spend."""
    x_channel.config["monthly_budget_usd"] = 50
    x_channel.secrets = {"bearer_token": "sekrit-bearer-token-XYZ"}
    x_channel.last_poll_at = BASE_TIME
    x_channel.last_poll_stored = 17
    x_channel.healthy = False
    x_channel.last_error = "Credentials rejected: X refused the credentials: <HTTP 401>"
    x_channel.paused_reason = "Monthly budget of $50 reached"
    x_channel.save()
    ApiUsage.objects.create(
        channel=x_channel, month=month_start(), operation="post_read_owned", units=2, cost=Decimal("0.01")
    )
    ApiUsage.objects.create(
        channel=x_channel, month=month_start(), operation="dm_create", units=1, cost=Decimal("0.02")
    )
    last_month = month_start() - timedelta(days=1)
    ApiUsage.objects.create(channel=x_channel, month=last_month.replace(day=1), operation="dm_create", units=9, cost=9)

    response = agent_client.get(reverse("console:channels"))
    html = response.content.decode()
    assert 'data-kind="x">X</span> x-help' in html
    assert 'data-kind="locmem">Locmem</span> lm' in html
    assert '$0.03 <span class="muted">of $50.00</span>' in html  # this month only
    assert "$0.00" in html  # locmem: nothing spent, no budget
    assert "Unhealthy" in html
    assert "Healthy" in html
    assert "Paused" in html
    assert "X refused the credentials: &lt;HTTP 401&gt;" in html
    assert "Monthly budget of $50 reached" in html
    assert "· 17 stored" in html
    assert "never" in html
    for secret in ["sekrit", "XYZ", "s3cret", "****"]:
        assert secret not in html
    assert 'aria-current="page">Channels' in html


def test_channels_page_query_count_does_not_grow(agent_client, x_channel):
    """30 channels with usage take as many queries as 3: spend is summed for all channels in one query."""

    def add_channels(numbers):
        for n in numbers:
            channel = Channel.objects.create(kind="locmem", name=f"lm-{n}", config={"inbox": f"lm-{n}"})
            ApiUsage.objects.create(
                channel=channel, month=month_start(), operation="read", units=1, cost=Decimal("0.5")
            )

    add_channels(range(2))
    few = queries_for(agent_client, reverse("console:channels"))
    add_channels(range(2, 29))
    assert Channel.objects.count() == 30
    response = agent_client.get(reverse("console:channels"))
    assert response.content.decode().count("$0.50") == 29
    assert queries_for(agent_client, reverse("console:channels")) == few
