"""Macros in a real browser (Playwright driving Debian's Chromium) against a live server.

The ticket is stored directly with ``receive`` on the locmem channel; Celery runs eagerly, so the reply is
delivered to ``locmem.outbox`` when the request commits.
"""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from channel_adapters import locmem
from tests.factories import message
from tests.helpers import (
    receive,
    wait_for,
)
from tickets.models import Macro, Message, Ticket, TicketEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ticket(locmem_channel):
    receive(locmem_channel, [message("m1", text="Outlook keeps asking for my password", name="Zoë Müller")])
    return Ticket.objects.get()


def test_choose_a_macro_edit_its_text_and_send(console, live_server, agent, ticket):
    Macro.objects.create(name="Password reset", body="Hi {requester_first_name}, about #{ticket_number}: reset done.")
    Macro.objects.create(
        name="Waiting on you",
        body="Could you try again, {requester_first_name}?",
        status="pending",
        assignee_action=Macro.AssigneeAction.APPLIER,
    )
    console.goto(live_server.url + reverse("console:ticket-detail", args=[ticket.pk]))
    box = console.get_by_label("Message to Zoë Müller")
    picker = console.get_by_label("Canned response")

    picker.select_option(label="Password reset")
    expect(box).to_have_value(f"Hi Zoë, about #{ticket.pk}: reset done.")
    # Another choice replaces the untouched text instead of piling up; the summary says what sending does.
    picker.select_option(label="Waiting on you")
    expect(box).to_have_value("Could you try again, Zoë?")
    expect(console.locator("#macro-chosen")).to_contain_text(
        "Sending the reply also applies: Status: Pending (waiting on requester); Assign to the agent applying it."
    )
    expect(console.locator(".reply-count")).to_have_text(re.compile(r"^25\b"))  # the live counter saw the insertion

    box.press("End")
    box.press_sequentially(" Thanks!")
    console.get_by_role("button", name="Send reply").click()
    expect(console.get_by_text("Reply queued for delivery. Macro “Waiting on you” applied.")).to_be_visible()
    expect(console.get_by_text("Status Open → Pending (waiting on requester) · Alex Agent")).to_be_visible()

    wait_for(lambda: locmem.outbox, message="the reply to be delivered")
    assert locmem.outbox == [{"thread_key": "m1", "text": "Could you try again, Zoë? Thanks!"}]
    assert Message.objects.get(direction="outbound").delivery_status == "sent"
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee) == ("pending", agent)
    # The reply opened the ticket, then the macro set it pending and assigned it: each change is on the timeline.
    events = TicketEvent.objects.filter(ticket=ticket).order_by("id")
    assert [(e.kind, e.old_value, e.new_value, e.reason) for e in events] == [
        ("status", "new", "open", "replied"),
        ("status", "open", "pending", "macro “Waiting on you”"),
        ("assignee", "", agent.get_full_name(), "macro “Waiting on you”"),
    ]


def test_the_picker_works_from_the_keyboard(console, live_server, ticket):
    Macro.objects.create(name="Greeting", body="Hello {requester_name}!")
    console.goto(live_server.url + reverse("console:ticket-detail", args=[ticket.pk]))
    box = console.get_by_label("Message to Zoë Müller")
    picker = console.get_by_label("Canned response")
    picker.focus()
    picker.select_option(label="Greeting")
    expect(box).to_have_value("Hello Zoë Müller!")
    console.keyboard.press("Tab")
    expect(console.get_by_role("button", name="Insert")).to_be_focused()
    console.keyboard.press("Enter")  # inserted again: it replaces the untouched text, and focus moves to the box
    expect(box).to_be_focused()
    expect(box).to_have_value("Hello Zoë Müller!")
    console.keyboard.type(" How can I help?")

    # Dropping the macro keeps what the agent wrote, but nothing of the macro is applied any more.
    console.get_by_role("button", name="Don’t use this macro").click()
    expect(box).to_have_value("Hello Zoë Müller! How can I help?")
    expect(console.locator("input[name=macro]")).to_have_count(0)
    expect(picker).to_have_value("")
