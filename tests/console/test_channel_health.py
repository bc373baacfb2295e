"""Channel health on the Channels page, and the broken channels' banner that admins see on every console page."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from channels_ingest.models import Channel, ChannelAlert, ErrorKind, InboundMessage
from tests.helpers import queries_for, text_of

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def at_now():
    with time_machine.travel(NOW, tick=False):
        yield


def inbound(channel, *ages, status=InboundMessage.Status.PROCESSED):
    """Messages of ``channel`` received ``ages`` (timedeltas) before NOW."""
    first = InboundMessage.objects.filter(channel=channel).count()
    InboundMessage.objects.bulk_create(
        InboundMessage(channel=channel, external_id=f"m{first + n}", payload={}, status=status, received_at=NOW - age)
        for n, age in enumerate(ages)
    )


def every(gap, count, *, after):
    """``count`` ages ``gap`` apart, the newest ``after`` ago."""
    return [after + gap * n for n in range(count)]


def row_text(html, name):
    row = re.search(rf"<tr>(?:(?!</tr>).)*?\b{re.escape(name)}</td>.*?</tr>", html, re.S).group(0)
    return text_of(row)


def health_of(html, name):
    row = re.search(rf"<tr>(?:(?!</tr>).)*?\b{re.escape(name)}</td>.*?</tr>", html, re.S).group(0)
    return re.search(r'data-state="(\w+)"', row).group(1)


def page(client):
    response = client.get(reverse("console:channels"))
    assert response.status_code == 200
    return response.content.decode()


def polled(name, **fields):
    fields = {"last_success_at": NOW - timedelta(seconds=20), **fields}
    return Channel.objects.create(kind="locmem", name=name, config={"inbox": name}, **fields)


def test_each_channel_shows_its_state_rates_lag_and_why(agent_client, at_now):
    quiet = polled("quiet")
    busy = polled("busy")
    inbound(busy, *every(timedelta(minutes=5), 7 * 24 * 12, after=timedelta(minutes=2)))  # 12 an hour, all week
    silent = polled("silent")
    inbound(silent, *every(timedelta(minutes=5), 7 * 24 * 12, after=timedelta(minutes=50)))
    revoked = polled(
        "revoked",
        healthy=False,
        consecutive_failures=1,
        last_error="Credentials rejected: Slack error: token_revoked",
        last_error_kind=ErrorKind.CREDENTIALS,
        last_error_at=NOW - timedelta(minutes=3),
    )
    down = polled(
        "down",
        consecutive_failures=4,
        last_error="Slack unreachable: [Errno 111] Connection refused",
        last_error_kind=ErrorKind.TRANSIENT,
        last_success_at=NOW - timedelta(minutes=4),
    )
    backlog = polled("backlog")
    inbound(backlog, timedelta(minutes=12), timedelta(minutes=1), status=InboundMessage.Status.PENDING)
    Channel.objects.create(kind="locmem", name="off", config={"inbox": "off"}, enabled=False)

    html = page(agent_client)
    states = {name: health_of(html, name) for name in ["quiet", "busy", "silent", "revoked", "down", "backlog", "off"]}
    assert states == {
        "quiet": "healthy",
        "busy": "healthy",
        "silent": "degraded",
        "revoked": "broken",
        "down": "broken",
        "backlog": "degraded",
        "off": "disabled",
    }
    assert "Healthy" in row_text(html, quiet.name)
    assert "12 messages in the last hour · typically 12.0 an hour" in row_text(html, busy.name)
    assert "Last message 2 min ago" in row_text(html, busy.name)
    assert "Silent for 50 minutes, though normally busy." in row_text(html, silent.name)
    assert "3 messages in the last hour" in row_text(html, silent.name)  # 60, 55 and 50 minutes ago
    revoked_row = row_text(html, revoked.name)
    assert "Broken Re-authorize needed" in revoked_row
    assert "Last error (3 min ago): Credentials rejected: Slack error: token_revoked" in revoked_row
    down_row = row_text(html, down.name)
    assert "4 failures in a row." in down_row
    assert "Consecutive failures: 4" in down_row
    assert "Slack unreachable: [Errno 111] Connection refused" in down_row
    assert "Lag: 4 min" in down_row  # since the last successful poll
    assert "Re-authorize" not in down_row
    assert "Lag: 12 min" in row_text(html, backlog.name)  # the oldest message not yet made a ticket
    assert "Behind by 12 minutes." in row_text(html, backlog.name)


def test_the_page_lists_the_latest_alerts(agent_client, locmem_channel):
    ChannelAlert.objects.create(channel=locmem_channel, kind="broke", message="Slack error: <token_revoked>")
    ChannelAlert.objects.create(channel=locmem_channel, kind="recovered", message="It works again.")
    text = text_of(page(agent_client))
    assert (
        "Recent alerts Recovered lm just now: It works again. Broke lm just now: Slack error: &lt;token_revoked&gt;"
        in text
    )  # escaped


def test_the_page_takes_as_many_queries_for_30_channels_as_for_3(agent_client, at_now):
    def add_channels(numbers):
        for n in numbers:
            channel = polled(f"lm-{n}", consecutive_failures=n % 4, last_error="boom" if n % 4 else "")
            inbound(channel, timedelta(minutes=n), timedelta(hours=n))
            inbound(channel, timedelta(minutes=n + 1), status=InboundMessage.Status.PENDING)
            ChannelAlert.objects.create(channel=channel, kind="broke", message="boom")

    add_channels(range(3))
    few = queries_for(agent_client, reverse("console:channels"))
    add_channels(range(3, 30))
    assert queries_for(agent_client, reverse("console:channels")) == few
    # session, user, role; channels, spend, failed inbound (count, latest), activity (week, pending), alerts
    assert few == 9


# The banner -------------------------------------------------------------------------------------------


@pytest.fixture
def broken(locmem_channel):
    """The platform refused the channel's credentials: it is broken, and admins were alerted."""
    locmem_channel.record_credentials_rejected("Slack error: token_revoked")
    return locmem_channel


BANNER = "1 channel broken: lm. See the Channels page"


def test_admins_see_broken_channels_on_every_console_page(client, admin_user, broken):
    client.force_login(admin_user)
    for url in [reverse("console:ticket-list"), reverse("console:channels"), reverse("console:macro-list")]:
        html = client.get(url).content.decode()
        assert BANNER in text_of(html), url
        assert "Channels 1 broken" in text_of(html), url


def test_agents_do_not_see_the_banner(agent_client, broken):
    html = agent_client.get(reverse("console:ticket-list")).content.decode()
    assert "broken:" not in text_of(html)
    assert "1 broken" not in text_of(html)


def test_the_banner_goes_when_the_channel_recovers_or_is_disabled(client, admin_user, broken):
    client.force_login(admin_user)
    broken.record_success(stored=0)
    assert "broken" not in text_of(client.get(reverse("console:ticket-list")).content.decode())

    broken.record_credentials_rejected("Slack error: token_revoked")
    assert BANNER in text_of(client.get(reverse("console:ticket-list")).content.decode())
    Channel.objects.filter(pk=broken.pk).update(enabled=False)
    assert "broken" not in text_of(client.get(reverse("console:ticket-list")).content.decode())


def test_an_admin_hides_the_banner_until_a_channel_breaks_again(client, admin_user, broken, locmem_channel):
    """Hidden for this admin only; the nav still counts the broken channel; a new break shows it again."""
    client.force_login(admin_user)
    queue = reverse("console:ticket-list")
    response = client.post(reverse("console:broken-banner-dismiss"), {"next": queue + "?status=open"})
    assert response.url == queue + "?status=open"
    page = text_of(client.get(queue).content.decode())
    assert "broken:" not in page
    assert "Channels 1 broken" in page
    other_admin = Client()
    other_admin.force_login(User.objects.create_superuser("root2", "root2@example.com", "pw-123-abc"))
    assert BANNER in text_of(other_admin.get(queue).content.decode())

    broken.record_success(stored=0)
    broken.record_credentials_rejected("Slack error: token_revoked")
    assert BANNER in text_of(client.get(queue).content.decode())


def test_hiding_the_banner_goes_back_only_to_this_site(client, admin_user, broken):
    client.force_login(admin_user)
    response = client.post(reverse("console:broken-banner-dismiss"), {"next": "https://evil.example/"})
    assert response.url == reverse("console:ticket-list")


def test_the_banner_costs_an_admin_one_query_and_an_agent_none(client, admin_user, agent, broken):
    """The channels' names for an admin's banner; nothing for an agent (the role is read for the page anyway)."""
    url = reverse("console:macro-list")
    client.force_login(agent)
    as_agent = queries_for(client, url)
    client.force_login(admin_user)
    assert queries_for(client, url) == as_agent + 1
