"""Two agents on one ticket, in two browser contexts (Playwright driving Debian's Chromium) against a live server:
each sees the other, typing shows, a reply appears live on the other page, and a reply written before it
is held back with a warning until "Send anyway".

The ticket is stored directly with ``receive`` on the locmem channel, so no worker is needed (Celery is eager).
"""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.factories import message
from tests.helpers import (
    receive,
)
from tickets.models import Message, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ticket(locmem_channel):
    receive(locmem_channel, [message("m0", text="Projector in room 4 shows no signal")])
    return Ticket.objects.get()


def test_two_agents_see_each_other_and_a_colliding_reply_is_held_back(console, other_console, live_server, ticket):
    alex, dana = console, other_console
    url = live_server.url + reverse("console:ticket-detail", args=[ticket.pk])
    alex.goto(url)
    dana.goto(url)

    # Presence: each sees the other (heartbeats every few seconds, kept in the cache).
    expect(alex.locator("#presence")).to_contain_text("Dana Desk is viewing")
    expect(dana.locator("#presence")).to_contain_text("Alex Agent is viewing")

    # Dana starts writing: Alex sees it.
    dana.fill("#reply-body", "Try the HDMI cable on the left")
    expect(alex.locator("#presence")).to_contain_text("Dana Desk is typing a reply…")

    # Alex answers first; his reply shows up on Dana's page without a reload, with a banner for her draft.
    alex.fill("#reply-body", "On my way with an adapter")
    alex.get_by_role("button", name="Send reply").click()
    expect(alex.get_by_text("Reply queued for delivery.")).to_be_visible()
    expect(dana.locator(".message-body", has_text="On my way with an adapter")).to_have_count(1)
    expect(dana.locator("#collision-live")).to_contain_text("Changed while you were writing")
    expect(dana.locator("#collision-live")).to_contain_text("Alex Agent replied")

    # Dana sends anyway-unaware: the server holds it back, keeps her draft and says what changed.
    dana.get_by_role("button", name="Send reply").click()
    warning = dana.get_by_role("alert")
    expect(warning).to_contain_text("Not sent: this ticket changed since you opened it.")
    expect(warning).to_contain_text("Alex Agent replied")
    expect(dana.locator("#reply-body")).to_have_value("Try the HDMI cable on the left")
    assert not Message.objects.filter(body="Try the HDMI cable on the left").exists()

    dana.get_by_role("button", name="Send anyway").click()
    expect(dana.get_by_text("Reply queued for delivery.")).to_be_visible()
    expect(dana.locator(".message-body", has_text="Try the HDMI cable on the left")).to_have_count(1)
    replies = Message.objects.filter(ticket=ticket, direction=Message.Direction.OUTBOUND).order_by("id")
    assert [(m.author_user.username, m.body) for m in replies] == [
        ("agent", "On my way with an adapter"),
        ("dana", "Try the HDMI cable on the left"),
    ]
    # And Alex's page shows Dana's reply live, without a reload.
    expect(alex.locator(".message-body", has_text="Try the HDMI cable on the left")).to_have_count(1)
