"""ITIL in the browser: an agent raises a ticket's impact and the priority follows the matrix (P2 · High); an
override needs a reason, which the timeline shows; the ITIL pages pass axe and fit a phone."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.browser.test_accessibility import PHONE, serious_violations
from tests.helpers import detail_url, open_tickets, signed_in_page
from tickets.itil import classify, link_problem, plan_change
from tickets.models import Category, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

START = datetime(2026, 12, 5, 22, 0, tzinfo=UTC)
END = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)


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


def test_itil_pages_are_accessible_and_fit_a_phone(browser, live_server, admin_user, agent, locmem_channel):
    """The admins' lists and matrix, a problem with an incident and a planned change: no serious axe violations,
    nothing wider than a phone, nothing the Content-Security-Policy blocks."""
    problem, incident, change = open_tickets(locmem_channel, 3)
    Category.objects.create(name="Network " + "w" * 80)
    classify(problem, actor=agent, kind=Ticket.Kind.PROBLEM)
    link_problem(incident, problem=problem, actor=agent)
    classify(change, actor=agent, kind=Ticket.Kind.CHANGE)
    plan_change(change, actor=agent, start=START, end=END, approver=admin_user)
    page = signed_in_page(browser, live_server, "boss", "boss-pass-123")
    urls = [
        reverse("console:ticket-list"),  # the category filter, with a long name
        reverse("console:categories"),
        reverse("console:category-create"),
        reverse("console:services"),
        reverse("console:priority-matrix"),
        detail_url(problem),
        detail_url(incident),
        detail_url(change),
    ]
    found, overflowing = {}, {}
    for url in urls:
        page.goto(live_server.url + url)
        if violations := serious_violations(page):
            found[url] = violations
    page.set_viewport_size(PHONE)
    for url in urls:
        page.goto(live_server.url + url)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            overflowing[url] = width
    page.goto(live_server.url + detail_url(change))
    expect(page.get_by_role("button", name="Approve")).to_be_visible()  # the approver's
    page.context.close()
    assert not found, found
    assert not overflowing, overflowing
    assert page.csp_violations == []
