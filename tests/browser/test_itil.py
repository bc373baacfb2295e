"""An agent raises a ticket's impact on its page: the priority follows the matrix (P2 · High), and an override
without a reason is refused, with one it shows in the timeline."""

import pytest
from playwright.sync_api import expect

from tests.helpers import detail_url
from tickets.models import Category, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_impact_sets_the_priority_and_an_override_needs_a_reason(console, live_server, ticket):
    Category.objects.create(name="Network")
    console.goto(live_server.url + detail_url(ticket))
    console.locator("#itil-category").select_option(label="Network")
    console.locator("#itil-impact").select_option(label="High")
    console.get_by_role("button", name="Save classification").click()
    facts = console.locator("#ticket-facts")
    expect(facts).to_contain_text("P2 · High")
    expect(facts).to_contain_text("Network")
    expect(console.locator("#timeline")).to_contain_text("Priority P3 · Normal → P2 · High")

    console.locator("#ticket-priority").select_option(label="P1 · Urgent")
    console.get_by_role("button", name="Update ticket").click()
    expect(console.locator(".flash")).to_contain_text("Say why you override the priority")
    console.locator("#ticket-priority").select_option(label="P1 · Urgent")
    console.get_by_label("Why this priority (to change it)").fill("Payroll run tonight")
    console.get_by_role("button", name="Update ticket").click()
    expect(facts).to_contain_text("P1 · Urgent (overridden)")
    expect(console.locator("#timeline")).to_contain_text("(Payroll run tonight)")
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.priority_overridden) == (Ticket.Priority.URGENT, True)
