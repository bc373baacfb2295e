"""The console in a real browser (Playwright driving Debian's Chromium) against a live server,
a real Celery worker and the Slack emulator."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.helpers import (
    open_ticket,
    wait_for,
)
from tickets.models import Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def live_slack(live_server, slack_channel, slack_emulator, celery_worker_process):
    """Slack pushes events to the live app; a real worker ingests them and delivers replies."""
    celery_worker_process()
    slack_emulator.configure(
        events_url=live_server.url + reverse("channels_ingest:webhook", args=[slack_channel.public_id])
    )
    return slack_emulator


def test_login_and_a_ticket_arriving_live(console, live_slack):
    """An employee writes in Slack; the ticket shows up in the open queue without a reload."""
    expect(console.get_by_role("heading", name="Tickets")).to_be_visible()
    live_slack.post("C0GENERAL", "U0ANN", "Docking station not detected")
    expect(console.get_by_text("Docking station not detected")).to_be_visible()
    expect(console.get_by_text("Ann Employee")).to_be_visible()


def test_reply_turns_sent_and_a_failed_reply_is_retried(console, live_server, live_slack):
    """A reply shows Queued then Sent; an injected Slack failure shows the error, and Retry really resends."""
    parent = live_slack.post("C0GENERAL", "U0ANN", "Keyboard missing keys")["ts"]
    ticket = wait_for(lambda: Ticket.objects.first(), message="the ticket")
    open_ticket(console, live_server, ticket)

    console.fill("#reply-body", "A new keyboard is on its way")
    console.get_by_role("button", name="Send reply").click()
    expect(console.locator(".badge.delivery-sent")).to_have_count(1)
    assert [m["thread_ts"] for m in live_slack.bot_messages("C0GENERAL")] == [parent]

    live_slack.fault("chat.postMessage", count=1, error="channel_not_found")
    console.fill("#reply-body", "Tracking number follows")
    console.get_by_role("button", name="Send reply").click()
    expect(console.locator(".badge.delivery-failed")).to_have_count(1)
    expect(console.get_by_text("Slack error: channel_not_found")).to_be_visible()

    console.get_by_role("button", name="Retry").click()
    expect(console.locator(".badge.delivery-sent")).to_have_count(2)
    assert len(live_slack.bot_messages("C0GENERAL")) == 2


def test_script_injection_is_rendered_as_text(console, live_server, live_slack):
    """HTML and script in a message are shown as text and never run."""
    payload = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
    live_slack.post("C0GENERAL", "U0ANN", payload)
    ticket = wait_for(lambda: Ticket.objects.first(), message="the ticket")
    open_ticket(console, live_server, ticket)
    expect(console.locator(".message-body", has_text="window.__xss = 1")).to_have_count(1)
    assert console.evaluate("window.__xss") is None
    assert console.locator("img[src=x]").count() == 0
