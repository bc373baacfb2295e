"""Routing in a real browser against a live server, a real Celery worker and the Slack emulator: a Slack message
about the VPN is routed to the Network team at P2, acknowledged in its own Slack thread, and the ticket's
timeline says which rule did it."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from channels_ingest.models import Channel
from tests.browser.test_accessibility import serious_violations
from tests.helpers import open_ticket, signed_in_page, wait_for
from tickets.models import RoutingRule, Team, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ACK = {"body": "Thanks {name}: this is ticket #{ticket}. {expected_response}"}


@pytest.fixture
def live_slack(live_server, slack_channel, slack_emulator, celery_worker_process):
    """Slack pushes events to the live app; a real worker ingests them and delivers replies."""
    network = Team.objects.create(name="Network")
    RoutingRule.objects.create(name="Access", position=1, keywords="password", set_priority=Ticket.Priority.LOW)
    RoutingRule.objects.create(
        name="Network issues", position=2, keywords="vpn, wi-fi", set_team=network, set_priority=Ticket.Priority.HIGH
    )
    Channel.objects.filter(pk=slack_channel.pk).update(config={**slack_channel.config, "auto_ack": ACK})
    celery_worker_process()
    slack_emulator.configure(
        events_url=live_server.url + reverse("channels_ingest:webhook", args=[slack_channel.public_id])
    )
    return slack_emulator


def test_a_slack_message_is_routed_to_network_at_p2_and_acknowledged_in_its_thread(console, live_server, live_slack):
    parent = live_slack.post("C0GENERAL", "U0ANN", "The VPN drops every ten minutes")["ts"]
    ticket = wait_for(lambda: Ticket.objects.select_related("team").first(), message="the ticket")
    assert (ticket.team.name, ticket.priority) == ("Network", Ticket.Priority.HIGH)
    acks = wait_for(lambda: live_slack.bot_messages("C0GENERAL"), message="the acknowledgement")
    assert [(m["thread_ts"], f"ticket #{ticket.pk}." in m["text"]) for m in acks] == [(parent, True)]

    open_ticket(console, live_server, ticket)
    expect(console.get_by_text("Routed by rule 'Network issues': team Network, priority P2 · High")).to_be_visible()


@pytest.fixture
def admin_page(browser, live_server, admin_user):
    page = signed_in_page(browser, live_server, "boss", "boss-pass-123")
    yield page
    page.context.close()
    assert page.csp_violations == [], "the Content-Security-Policy blocked something"


def test_an_admin_tests_a_rule_saves_it_and_moves_it_up(admin_page, live_server):
    """The rule is tried on a sample before it exists; saved, it goes last, and ↑ puts it first. The pages have
    no serious accessibility violations."""
    RoutingRule.objects.create(name="Everything else", position=1, add_tags="triage")
    page = admin_page
    page.get_by_role("link", name="Routing").click()
    page.get_by_role("link", name="New rule").click()
    page.get_by_label("Name").fill("Network issues")
    page.get_by_label("Keywords").fill("vpn, wi-fi")
    page.get_by_label("Set priority").select_option(label="P2 · High")
    page.get_by_label("Sample message").fill("The Wi-Fi is down on floor 3")
    page.get_by_role("button", name="Test").click()
    expect(page.get_by_role("status")).to_have_text("This rule matches: it would set priority P2 · High.")
    assert not RoutingRule.objects.filter(name="Network issues").exists()
    assert serious_violations(page) == []

    page.get_by_role("button", name="Create rule").click()
    rows = page.locator("tr.routing-rule")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text("Network issues")
    page.get_by_role("button", name="Move Network issues up").click()
    expect(page.locator("tr.routing-rule").first).to_contain_text("Network issues")
    assert serious_violations(page) == []

    page.get_by_role("link", name="Test a message").click()
    page.get_by_label("Sample message").fill("VPN again")
    page.get_by_role("button", name="Test").click()
    expect(page.get_by_role("status")).to_contain_text("Rule 'Network issues' would set priority P2 · High.")
    assert serious_violations(page) == []
