"""The live timeline in a real browser (Playwright driving Debian's Chromium) against a live server: a reply
that arrives by the live poll keeps its delivery badge polling until it is final, a reply another agent
retries shows its new state, and an edit replaces the entry where it is.

Replies go out through the locmem channel (Celery is eager); ``locmem.failures`` makes a send fail.
"""

import pytest
from playwright.sync_api import expect

from channel_adapters import locmem
from channel_adapters.base import PermanentError
from channels_ingest.delivery import deliver_message
from tests.factories import edit, message
from tests.helpers import (
    open_ticket,
    receive,
)
from tickets.models import Message, Ticket
from tickets.replies import reply_to_ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ticket(locmem_channel):
    receive(locmem_channel, [message("m0", text="The scanner jams on every page")])
    return Ticket.objects.get()


def entry(page, message):
    return page.locator(f"#message-{message.pk}")


def test_a_reply_shown_live_keeps_its_badge_polling_until_sent(console, live_server, other_agent, ticket):
    open_ticket(console, live_server, ticket)
    first = ticket.messages.get()
    # Dana's reply is stored while the worker is down: queued, nothing sends it yet.
    reply = Message.objects.create(
        ticket=ticket,
        thread_id=first.thread_id,
        direction=Message.Direction.OUTBOUND,
        author_user=other_agent,
        body="Try the rear tray",
        delivery_status=Message.DeliveryStatus.QUEUED,
    )
    expect(entry(console, reply).locator(".badge")).to_have_text("Delivery: Queued")

    assert deliver_message(reply.pk).status == "sent"  # the worker is back
    expect(entry(console, reply).locator(".badge")).to_have_text("Delivery: Sent")
    expect(console.locator(".message-body", has_text="Try the rear tray")).to_have_count(1)


def test_a_reply_retried_by_another_agent_shows_its_new_state(console, other_console, live_server, agent, ticket):
    locmem.failures.append(PermanentError("channel_not_found"))
    reply = reply_to_ticket(ticket=ticket, author=agent, body="Please restart it")
    assert Message.objects.get(pk=reply.pk).delivery_status == "failed"
    alex, dana = console, other_console
    open_ticket(alex, live_server, ticket)
    open_ticket(dana, live_server, ticket)
    expect(entry(alex, reply).locator(".badge")).to_have_text("Delivery: Failed")

    entry(dana, reply).get_by_role("button", name="Retry").click()
    expect(dana.get_by_text("Reply queued for delivery again.")).to_be_visible()
    # Alex's page learns of the Retry from its live poll: the entry is replaced where it is, badge and all.
    expect(entry(alex, reply).locator(".badge")).to_have_text("Delivery: Sent")
    expect(entry(alex, reply).get_by_role("button", name="Retry")).to_have_count(0)
    expect(alex.locator(".message-body", has_text="Please restart it")).to_have_count(1)


def test_an_edit_replaces_the_entry_in_place(console, live_server, locmem_channel, ticket):
    open_ticket(console, live_server, ticket)
    receive(locmem_channel, [message("m1", thread="m0", text="Also the printer", minute=1)])
    expect(console.locator(".message-body", has_text="Also the printer")).to_have_count(1)

    receive(locmem_channel, [edit("m0", "The scanner jams on every second page", minute=2)])
    first = ticket.messages.get(external_id="m0")
    expect(entry(console, first).locator(".message-body")).to_have_text("The scanner jams on every second page")
    expect(entry(console, first)).to_contain_text("edited")
    # Still where it was: first in the timeline, and only once.
    expect(console.locator("#timeline > li.message").first).to_have_id(f"message-{first.pk}")
    expect(console.locator(f"#message-{first.pk}")).to_have_count(1)
