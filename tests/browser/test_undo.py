"""After "e" (Resolve) the page says what changed and offers Undo for a few seconds; Undo puts it back."""

import pytest
from playwright.sync_api import expect

from console.update_feedback import UNDO_SECONDS
from tests.helpers import detail_url
from tickets.models import Ticket, TicketEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_e_resolves_says_so_and_undo_reopens(console, live_server, ticket):
    console.goto(live_server.url + detail_url(ticket))
    console.keyboard.press("e")
    expect(console.locator(".flash")).to_contain_text(f"Resolved #{ticket.pk}.")
    console.get_by_role("button", name="Undo").click()
    expect(console.locator(".flash")).to_contain_text("Undone. Status: Resolved → New.")
    expect(console.get_by_role("button", name="Undo")).to_have_count(0)
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.NEW
    assert TicketEvent.objects.filter(ticket=ticket, reason="undo", new_value="new").exists()


def test_the_undo_goes_after_a_few_seconds(console, live_server, ticket):
    console.clock.install()
    console.goto(live_server.url + detail_url(ticket))
    console.keyboard.press("a")
    expect(console.locator(".flash")).to_contain_text("Assigned to you.")
    undo = console.get_by_role("button", name="Undo")
    expect(undo).to_be_visible()
    console.clock.fast_forward((UNDO_SECONDS - 1) * 1000)
    expect(undo).to_be_visible()
    console.clock.fast_forward(2000)
    expect(undo).to_have_count(0)
    expect(console.locator(".flash")).to_contain_text("Assigned to you.")
