"""Bulk selection and merging in a real browser (Playwright driving Debian's Chromium) against a live server.

Tickets are stored directly with ``receive`` on the locmem channel, so no worker is needed.
"""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.factories import message
from tests.helpers import (
    BROWSER_TIMEOUT_MS,
    receive,
)
from tickets.models import Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tickets(locmem_channel):
    """Three tickets from three people; the queue lists them newest activity first: Third, Second, First."""
    receive(
        locmem_channel,
        [
            message("m1", user="u1", name="Ann", text="First: VPN is down", minute=1),
            message("m2", user="u2", name="Bo", text="Second: VPN down here too", minute=2),
            message("m3", user="u3", name="Cy", text="Third: printer", minute=3),
        ],
    )
    return {t.subject.split(":")[0]: t for t in Ticket.objects.all()}


def test_ticks_survive_refreshes_and_two_tickets_merge(console, live_server, tickets):
    first, second = tickets["First"], tickets["Second"]
    console.reload()
    count = console.locator("#bulk-count")
    expect(count).to_have_text("No tickets selected.")
    console.get_by_label(f"Select ticket #{first.pk}").check()  # the click also selects First's row
    expect(count).to_have_text("1 ticket selected.")
    # Keyboard: k moves the selection up from First (the bottom row) to Second, x ticks it.
    console.keyboard.press("k")
    expect(console.locator("tr.is-selected")).to_contain_text("Second")
    console.keyboard.press("x")
    expect(count).to_have_text("2 tickets selected.")
    expect(console.get_by_label("Select every ticket on this page")).to_have_js_property("indeterminate", True)

    # The rows are replaced by htmx every 5 s: the ticks stay on the same tickets.
    with console.expect_response(lambda r: reverse("console:ticket-rows") in r.url, timeout=BROWSER_TIMEOUT_MS):
        pass
    expect(console.get_by_label(f"Select ticket #{first.pk}")).to_be_checked()
    expect(console.get_by_label(f"Select ticket #{second.pk}")).to_be_checked()
    expect(console.get_by_label(f"Select ticket #{tickets['Third'].pk}")).not_to_be_checked()
    expect(count).to_have_text("2 tickets selected.")

    console.get_by_role("button", name="Merge selected…").click()
    expect(console.locator("h1")).to_have_text("Merge 2 tickets")
    expect(console.get_by_label(f"#{first.pk} First: VPN is down", exact=False)).to_be_checked()  # the oldest
    console.get_by_role("button", name="Merge into the ticket to keep").click()

    console.wait_for_url(live_server.url + reverse("console:ticket-detail", args=[first.pk]))
    expect(console.locator(".flash")).to_contain_text(f"Merged #{second.pk} into #{first.pk}.")
    expect(console.locator(".timeline")).to_contain_text("Second: VPN down here too")
    expect(console.get_by_label("Reply in")).to_contain_text("Bo")

    console.locator(".timeline").get_by_role("link", name=f"#{second.pk}").click()
    expect(console.locator(".merged-banner")).to_contain_text(f"Merged into #{first.pk}")
