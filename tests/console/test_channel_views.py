"""The Channels page."""

import hashlib
import hmac
import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from channels_ingest.models import ApiUsage, Channel, InboundMessage
from channels_ingest.usage import month_start
from tests.factories import BASE_TIME, message
from tests.helpers import (
    failed_inbound,
    flashes,
    queries_for,
    text_of,
)
from tickets.models import Message


def test_admin_sees_the_channels_page(client, admin_user, offline_x_channel):
    """Admins use the console too, and see the same channel health page."""
    client.force_login(admin_user)
    assert "x-help" in client.get(reverse("console:channels")).content.decode()


def test_channels_page_shows_health_and_spend(agent_client, offline_x_channel, locmem_channel):
    """Each channel shows kind, name, health, last error, last poll and stored count, pause, and this month's spend."""
    offline_x_channel.config["monthly_budget_usd"] = 50
    offline_x_channel.secrets = {"bearer_token": "sekrit-bearer-token-XYZ"}
    offline_x_channel.last_poll_at = offline_x_channel.last_success_at = BASE_TIME
    offline_x_channel.last_poll_stored = 17
    offline_x_channel.healthy = False
    offline_x_channel.last_error = "Credentials rejected: X refused the credentials: <HTTP 401>"
    offline_x_channel.paused_reason = "Monthly budget of $50 reached"
    offline_x_channel.save()
    ApiUsage.objects.create(
        channel=offline_x_channel, month=month_start(), operation="post_read_owned", units=2, cost=Decimal("0.01")
    )
    ApiUsage.objects.create(
        channel=offline_x_channel, month=month_start(), operation="dm_create", units=1, cost=Decimal("0.02")
    )
    last_month = month_start() - timedelta(days=1)
    ApiUsage.objects.create(
        channel=offline_x_channel, month=last_month.replace(day=1), operation="dm_create", units=9, cost=9
    )

    response = agent_client.get(reverse("console:channels"))
    html = response.content.decode()
    assert 'data-kind="x">X</span> x-help' in html
    assert 'data-kind="locmem">Locmem</span> lm' in html
    assert '$0.03 <span class="muted">of $50.00</span>' in html  # this month only
    assert "$0.00" in html  # locmem: nothing spent, no budget
    assert "Broken" in html  # unhealthy: the platform refused it
    assert "Healthy" in html
    assert "Paused" in html
    assert "X refused the credentials: &lt;HTTP 401&gt;" in html
    assert "Monthly budget of $50 reached" in html
    assert "· 17 stored" in html
    assert "never" in html
    for secret in ["sekrit", "XYZ", "s3cret", "****"]:
        assert secret not in html
    assert 'aria-current="page">Channels' in html


def test_channels_page_query_count_does_not_grow(agent_client, offline_x_channel):
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


def requeue_url(channel):
    return reverse("console:channel-requeue-failed", args=[channel.pk])


def test_channels_page_shows_failed_inbound_and_admins_can_requeue_them(
    client, admin_user, locmem_channel, django_capture_on_commit_callbacks
):
    """Failed inbound messages show on their channel's row; an admin's button puts them back in the queue."""
    failed_inbound(locmem_channel, [message("a"), message("b", minute=1)])
    client.force_login(admin_user)
    html = client.get(reverse("console:channels")).content.decode()
    assert "2 failed inbound messages" in text_of(html)
    assert f'action="{requeue_url(locmem_channel)}"' in html

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(requeue_url(locmem_channel), follow=True)

    assert flashes(response) == ["Re-queued 2 failed inbound messages of lm."]
    assert set(Message.objects.values_list("external_id", flat=True)) == {"a", "b"}
    assert "channel-failed" not in response.content.decode()


def test_agents_see_failed_inbound_but_only_admins_requeue(agent_client, locmem_channel):
    failed_inbound(locmem_channel, [message("a")])
    html = agent_client.get(reverse("console:channels")).content.decode()
    assert "1 failed inbound message" in text_of(html)
    assert requeue_url(locmem_channel) not in html
    assert agent_client.post(requeue_url(locmem_channel)).status_code == 403
    assert agent_client.get(requeue_url(locmem_channel)).status_code in (403, 405)
    assert InboundMessage.objects.get().status == "failed"


def test_a_polled_slack_channel_states_what_polling_cannot_see(agent_client, db):
    """Polling finds thread replies and their edits only in threads of the lookback window, re-reading a few
    threads per poll; the Channels page says so for a polled Slack channel, and not for a webhook-only one."""
    Channel.objects.create(kind="slack", name="it-help", config={"conversations": ["C1"], "thread_lookback_hours": 48})
    Channel.objects.create(kind="slack", name="events-only", config={"conversations": ["C2"]}, poll_interval_seconds=0)
    html = agent_client.get(reverse("console:channels")).content.decode()
    assert html.count("threads started in the last 48 hours") == 1
    assert "re-reads 10 of them per poll" in html
    assert "Older threads, and deletions, arrive only by webhook" in html


def channels_page(client):
    return client.get(reverse("console:channels")).content.decode()


def webhook_cell(html, channel):
    """The Webhook cell of ``channel``'s row, as a reader hears it."""
    row = re.search(rf"<tr>(?:(?!</tr>).)*?\b{re.escape(channel.name)}</td>.*?</tr>", html, re.S).group(0)
    return text_of(re.search(r'<td data-label="Webhook".*?</td>', row, re.S).group(0))


def test_a_webhook_channel_shows_the_url_to_paste_under_the_public_base_url(agent_client, locmem_channel, settings):
    settings.PUBLIC_BASE_URL = "https://helpdesk.example.com/"
    html = channels_page(agent_client)
    url = f"https://helpdesk.example.com/webhooks/{locmem_channel.public_id}/"
    assert f"<code>{url}</code>" in html
    assert webhook_cell(html, locmem_channel).startswith(f"Webhook URL of lm: {url}")


def test_without_a_public_base_url_the_webhook_url_is_this_sites_own(agent_client, locmem_channel, settings):
    settings.PUBLIC_BASE_URL = ""
    assert f"<code>http://testserver/webhooks/{locmem_channel.public_id}/</code>" in channels_page(agent_client)


def test_a_polled_only_channel_has_no_webhook(agent_client, offline_x_channel):
    html = channels_page(agent_client)
    assert webhook_cell(html, offline_x_channel) == "none: this channel is polled"
    assert str(offline_x_channel.public_id) not in html


@pytest.mark.django_db(transaction=True)  # the webhook's own transactions commit, as in production
def test_the_page_says_when_the_platform_verified_the_webhook_and_last_pushed(agent_client, db):
    """The platform's verification GET (hub.challenge) and its pushes are recorded and shown; the verify token is not."""
    channel = Channel.objects.create(
        kind="locmem",
        name="meta-like",
        config={"inbox": "ml"},
        secrets={"webhook_secret": "s3cret", "verify_token": "vt-8f3"},
    )
    before = webhook_cell(channels_page(agent_client), channel)
    assert "Not verified yet: give the platform this URL and the channel’s verify token" in before
    assert "No push received yet" in before

    url = reverse("channels_ingest:webhook", args=[channel.public_id])
    handshake = {"hub.mode": "subscribe", "hub.verify_token": "vt-8f3", "hub.challenge": "1158201444"}
    assert agent_client.get(url, handshake).content == b"1158201444"
    body = json.dumps({"id": "w1", "from": "u1", "text": "VPN is down", "at": BASE_TIME.isoformat()}).encode()
    signature = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    pushed = agent_client.post(url, data=body, content_type="application/json", headers={"X-Signature": signature})
    assert pushed.status_code == 200

    html = channels_page(agent_client)
    after = webhook_cell(html, channel)
    assert "Verified by the platform just now" in after
    assert "Last push just now" in after
    assert "vt-8f3" not in html


def test_a_platform_without_verification_shows_no_verified_line(agent_client, slack_channel):
    cell = webhook_cell(channels_page(agent_client), slack_channel)
    assert "verif" not in cell.lower()  # Slack proves the URL its own way, which is not recorded
    assert "No push received yet" in cell


@pytest.mark.parametrize(
    ("config", "polled", "said"),
    [
        ({}, False, "The first poll imports the last 7 days."),
        ({"import_days": 1}, False, "The first poll imports the last 1 day."),
        ({"import_days": 30}, True, "The first poll imported the last 30 days."),
        ({"import_days": 0}, False, "The first poll imports nothing from before the channel was connected."),
    ],
)
def test_the_page_says_how_far_back_the_first_poll_imports(agent_client, db, config, polled, said):
    Channel.objects.create(
        kind="locmem",
        name="lm",
        config={"inbox": "lm", **config},
        last_success_at=BASE_TIME if polled else None,
        last_poll_at=BASE_TIME if polled else None,
    )
    assert said in text_of(channels_page(agent_client))
