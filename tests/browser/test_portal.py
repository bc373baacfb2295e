"""The employee portal in the browser: an employee signs in by the emailed link, sees only their own tickets,
replies, and the reply reaches the agent's console; the agent's answer comes back to the portal. Every portal
page is axe-clean and fits a phone."""

import re
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.browser.test_accessibility import PHONE, serious_violations
from tests.helpers import BROWSER_TIMEOUT_MS, ticket_by_email
from tickets.models import Message, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def employee_page(browser):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(BROWSER_TIMEOUT_MS)
    yield page
    context.close()


def sign_in_by_link(page, live_server, mailoutbox, email):
    page.goto(live_server.url + reverse("portal:sign-in"))
    page.get_by_label("Your work email address").fill(email)
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    link = urlsplit(re.search(r"https?://\S+", mailoutbox[-1].body).group())
    page.goto(f"{live_server.url}{link.path}?{link.query}")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My tickets")).to_be_visible()


def audited(page, name, found):
    """Record the page's serious accessibility violations, and whether it scrolls sideways on the phone."""
    if violations := serious_violations(page):
        found[name] = violations
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > PHONE["width"]:
        found[name] = [*found.get(name, []), f"{width}px wide on a {PHONE['width']}px screen"]


def test_an_employee_sees_only_their_tickets_replies_and_the_reply_reaches_the_agent(
    employee_page, console, live_server, mailoutbox, maya, portal_channel, locmem_channel
):
    page, found = employee_page, {}
    mine = ticket_by_email(locmem_channel, "m1", email="maya@example.com", text="My laptop will not boot " + "x" * 80)
    ticket_by_email(locmem_channel, "b1", email="bob@example.com", name="Bob", text="Bob's payroll question")

    page.goto(live_server.url + reverse("portal:sign-in"))
    audited(page, "sign in", found)
    sign_in_by_link(page, live_server, mailoutbox, "maya@example.com")
    audited(page, "my tickets", found)
    expect(page.get_by_role("link", name=re.compile("My laptop will not boot"))).to_be_visible()
    expect(page.get_by_text("Bob's payroll question")).to_have_count(0)

    page.get_by_role("link", name=re.compile("My laptop will not boot")).click()
    page.get_by_label("Your reply").fill("It shows a blinking cursor since this morning")
    page.get_by_label("Attachments (optional)").set_input_files(
        files=[{"name": "photo.txt", "mimeType": "text/plain", "buffer": b"cursor blinking"}]
    )
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status")).to_have_text("Your reply was added.")
    expect(page.get_by_text("It shows a blinking cursor since this morning")).to_be_visible()
    expect(page.get_by_role("link", name="photo.txt")).to_be_visible()
    audited(page, "ticket", found)

    # The agent finds it on the same ticket in the console, and answers; the answer goes out through the portal.
    console.goto(live_server.url + reverse("console:ticket-detail", args=[mine.pk]))
    expect(console.locator(".message-body", has_text="It shows a blinking cursor since this morning")).to_have_count(1)
    console.fill("#reply-body", "Please hold the power button for ten seconds")
    console.get_by_role("button", name="Send reply").click()
    expect(console.get_by_text("Reply queued for delivery.")).to_be_visible()
    answer = Message.objects.get(body="Please hold the power button for ten seconds")
    assert answer.thread.channel == portal_channel
    assert answer.delivery_status == Message.DeliveryStatus.SENT

    page.reload()
    expect(page.get_by_text("Please hold the power button for ten seconds")).to_be_visible()
    answer.refresh_from_db()
    assert answer.delivery_status == Message.DeliveryStatus.READ  # seen in the portal: a read receipt

    page.get_by_role("link", name="New request").first.click()
    audited(page, "new request", found)
    page.get_by_label("Subject").fill("Need a second screen")
    page.get_by_label("Description").fill("For the design review work")
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("heading", name="Need a second screen")).to_be_visible()
    assert Ticket.objects.get(subject="Need a second screen").channel == portal_channel
    assert not found, found
