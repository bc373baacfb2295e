"""Channel health in a real browser (Playwright driving Debian's Chromium) against a live server: a Slack channel
polling a Slack emulator of this test's own is healthy; the emulator stops, and after the polls that break the
channel the page shows it broken, with Slack's error, and admins see the banner; the emulator comes back on the
same address, a poll succeeds, and the channel is healthy again. The polls are the pipeline's own, run here."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse
from playwright.sync_api import expect

from channels_ingest import polling
from channels_ingest.channel_config import clean_channel_config
from channels_ingest.health import BROKEN_AFTER_FAILURES
from channels_ingest.models import Channel
from emulators.slack import SlackEmulator
from tests.helpers import SLACK_HELP_CHANNEL, signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class StoppableSlack:
    """A Slack emulator only this test uses (stopping the session's would break other tests), which can stop and
    come back on the same port, so the channel's base URL stays the same."""

    def __init__(self):
        self.emulator = SlackEmulator(port=0).start()
        self.port = int(self.emulator.base_url.rsplit(":", 1)[1].split("/")[0])

    def stop(self):
        self.emulator.stop()

    def come_back(self):
        self.emulator = SlackEmulator(port=self.port).start()


@pytest.fixture
def slack():
    server = StoppableSlack()
    yield server
    server.stop()


@pytest.fixture
def admin_console(browser, live_server, admin_user):
    admin_user.email = "boss@example.com"
    admin_user.save()
    page = signed_in_page(browser, live_server, "boss", "boss-pass-123")
    yield page
    page.context.close()


def serious_violations(page):
    """axe-core's serious and critical WCAG violations on the page (as ``test_accessibility`` audits)."""
    violations = Axe().run(page).response["violations"]
    return [violation["id"] for violation in violations if violation["impact"] in ("serious", "critical")]


def poll(channel):
    outcome = polling.poll_channel(channel.pk)
    assert outcome.polled
    return outcome


def test_a_channel_turns_broken_when_slack_is_down_and_healthy_when_it_is_back(
    admin_console, live_server, slack, mailoutbox
):
    config, secrets = clean_channel_config(
        "slack",
        {
            "bot_token": "xoxb-emulator",
            "signing_secret": "emulator-secret",
            "conversations": [SLACK_HELP_CHANNEL],
            "base_url": slack.emulator.base_url,
        },
    )
    channel = Channel.objects.create(kind="slack", name="it-help", config=config, secrets=secrets)
    slack.emulator.add_user("U0ANN", name="ann", real_name="Ann Employee")
    slack.emulator.post(SLACK_HELP_CHANNEL, "U0ANN", "my laptop won't boot")
    assert poll(channel).stored == 1  # the first import: history, not the channel's traffic
    slack.emulator.post(SLACK_HELP_CHANNEL, "U0ANN", "and now the printer")
    assert poll(channel).stored == 1

    page = admin_console
    page.goto(live_server.url + reverse("console:channels"))
    row = page.get_by_role("row").filter(has_text="it-help")
    health = row.locator("td.health")
    expect(health).to_contain_text("Healthy")
    expect(row).to_contain_text("1 message in the last hour")
    expect(page.locator(".channel-alert-banner")).to_have_count(0)

    slack.stop()
    for _ in range(BROKEN_AFTER_FAILURES):
        assert "Slack unreachable" in poll(channel).error
    page.reload()
    expect(health).to_contain_text("Broken")
    expect(health).to_contain_text(f"{BROKEN_AFTER_FAILURES} failures in a row.")
    expect(health.locator(".badge")).to_have_css("color", "rgb(185, 28, 28)")  # --danger, besides the word
    expect(row).to_contain_text("Last error (just now): Slack unreachable")
    expect(row).to_contain_text(f"Consecutive failures: {BROKEN_AFTER_FAILURES}")
    expect(row.locator(".channel-last-attempt")).to_have_text("Last attempt just now, failed")
    expect(page.locator(".channel-alert-banner")).to_contain_text("1 channel broken: it-help")
    expect(page.locator(".channel-alerts")).to_contain_text("Broke it-help just now: Slack unreachable")
    assert [mail.subject.split("] ")[-1] for mail in mailoutbox] == ["Channel it-help is broken"]
    assert serious_violations(page) == []  # the banner, the broken badge and the reasons included

    slack.come_back()
    poll(channel)
    page.reload()
    expect(health).to_contain_text("Healthy")
    expect(health.locator(".badge")).to_have_css("color", "rgb(22, 101, 52)")  # --ok
    expect(row.locator(".channel-error")).to_have_count(0)
    expect(row.locator(".channel-last-attempt")).to_have_count(0)
    expect(page.locator(".channel-alert-banner")).to_have_count(0)
    expect(page.locator(".channel-alerts li").first).to_contain_text("Recovered it-help just now")
    assert [mail.subject.split("] ")[-1] for mail in mailoutbox] == [
        "Channel it-help is broken",
        "Channel it-help recovered",
    ]
    assert mailoutbox[0].to == ["boss@example.com"]
