"""A very long message on the ticket page: folded, so the reply box stays near; "Show all" opens the rest."""

import pytest
from playwright.sync_api import expect

from tests.factories import message
from tests.helpers import open_ticket, receive
from tickets.models import Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORT = {"width": 1280, "height": 800}


def test_a_40000_character_message_is_folded_and_show_all_opens_it(console, live_server, locmem_channel):
    paragraph = "The VPN client drops every few minutes and the log says the tunnel timed out. " * 8
    body = "\n\n".join([paragraph] * 64)[: 40_000 - len(" THE-END")] + " THE-END"
    assert len(body) == 40_000
    receive(locmem_channel, [message("m0", text=body)])
    ticket = Ticket.objects.get()
    console.set_viewport_size(VIEWPORT)
    open_ticket(console, live_server, ticket)
    reply_box = console.locator("#composer textarea").first
    expect(reply_box).to_be_attached()
    top = reply_box.evaluate("el => el.getBoundingClientRect().top + window.scrollY")
    assert top < 2 * VIEWPORT["height"], f"the reply box is {top / VIEWPORT['height']:.1f} screens down"
    expect(console.get_by_text("THE-END")).to_be_hidden()

    show_all = console.locator(".message-full > summary")
    expect(show_all).to_contain_text("Show all")
    show_all.click()
    expect(console.get_by_text("THE-END", exact=False)).to_be_visible()
    expect(show_all).to_contain_text("Show less")
    expect(console.locator(".message-preview")).to_be_hidden()
    full = console.locator(".message-full[open] .message-body")
    assert full.evaluate("el => el.textContent.length") == len(body)
