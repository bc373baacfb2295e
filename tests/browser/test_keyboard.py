"""Keyboard shortcuts in a real browser (Playwright driving Debian's Chromium) against a live server.

Tickets are stored directly with ``receive`` (``receive_batch``) on the locmem channel, so no worker is needed.
"""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.factories import message
from tests.helpers import (
    BROWSER_TIMEOUT_MS,
    detail_url,
    receive,
)
from tickets.models import Message, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tickets(locmem_channel):
    """Three tickets; the queue lists them newest activity first: Third, Second, First."""
    receive(
        locmem_channel,
        [
            message("m1", text="First: printer jammed", minute=1),
            message("m2", text="Second: VPN drops", minute=2),
            message("m3", text="Third: laptop fan loud", minute=3),
        ],
    )
    return {t.subject.split(":")[0]: t for t in Ticket.objects.all()}


def test_j_k_enter_opens_the_selected_ticket(console, live_server, tickets):
    console.reload()
    expect(console.locator("table.tickets tbody tr")).to_have_count(3)
    console.keyboard.press("j")
    expect(console.locator("tr.is-selected")).to_contain_text("Third")
    console.keyboard.press("j")
    expect(console.locator("tr.is-selected")).to_contain_text("Second")
    expect(console.locator("tr.is-selected")).to_have_attribute("aria-selected", "true")
    console.keyboard.press("k")
    console.keyboard.press("j")
    console.keyboard.press("j")
    console.keyboard.press("k")
    expect(console.locator("tr.is-selected")).to_contain_text("Second")
    # The rows are refreshed by htmx every 5 s: the selection stays on the same ticket.
    with console.expect_response(lambda r: reverse("console:ticket-rows") in r.url, timeout=BROWSER_TIMEOUT_MS):
        pass
    expect(console.locator("tr.is-selected")).to_contain_text("Second")
    console.keyboard.press("Enter")
    console.wait_for_url(live_server.url + detail_url(tickets["Second"]))
    expect(console.locator("h1")).to_contain_text("Second: VPN drops")


def test_question_mark_opens_the_help_and_escape_closes_it(console):
    dialog = console.locator("#shortcuts-dialog")
    expect(dialog).to_be_hidden()
    console.keyboard.press("?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Assign to me")
    console.keyboard.press("j")  # shortcuts are off while the help is open
    console.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # ...and by mouse.
    console.get_by_role("button", name="Shortcuts").click()
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()


def test_shortcuts_are_ignored_while_typing_and_with_modifiers(console, live_server, tickets):
    console.goto(live_server.url + detail_url(tickets["First"]))
    console.keyboard.press("Control+a")
    console.keyboard.press("r")
    expect(console.locator("#reply-body")).to_be_focused()
    console.keyboard.type("are you there?")  # contains "a", "e", "r", "?": all typed, none a shortcut
    expect(console.locator("#reply-body")).to_have_value("are you there?")
    expect(console.locator("#shortcuts-dialog")).to_be_hidden()
    ticket = Ticket.objects.get(pk=tickets["First"].pk)
    assert ticket.assignee_id is None
    assert ticket.status == Ticket.Status.NEW


def test_n_writes_an_internal_note(console, live_server, tickets):
    console.goto(live_server.url + detail_url(tickets["First"]))
    console.keyboard.press("n")
    body = console.locator("#reply-body")
    expect(body).to_be_focused()
    expect(console.locator("#composer-kind-note")).to_be_checked()
    expect(console.get_by_role("button", name="Send reply")).to_be_hidden()
    body.type("Called the requester, no answer")  # typed keys, "n" included, go into the note
    console.get_by_role("button", name="Add internal note").click()
    expect(console.get_by_text("Internal note added.")).to_be_visible()
    note = console.locator(".message-note")
    expect(note).to_contain_text("Internal note")
    expect(note).to_contain_text("Called the requester, no answer")
    assert Message.objects.filter(direction=Message.Direction.NOTE, body="Called the requester, no answer").exists()
    # "r" goes back to replying.
    console.keyboard.press("r")
    expect(console.locator("#composer-kind-reply")).to_be_checked()
    expect(console.get_by_role("button", name="Send reply")).to_be_visible()


def test_a_assigns_to_me_and_e_resolves(console, live_server, tickets, agent):
    console.goto(live_server.url + detail_url(tickets["First"]))
    console.keyboard.press("a")
    expect(console.get_by_text("Assigned to you.")).to_be_visible()
    expect(console.locator(".facts")).to_contain_text("Alex Agent")
    assert Ticket.objects.get(pk=tickets["First"].pk).assignee_id == agent.pk
    console.keyboard.press("e")
    expect(console.locator(".facts")).to_contain_text("Resolved")
    assert Ticket.objects.get(pk=tickets["First"].pk).status == Ticket.Status.RESOLVED


def test_slash_focuses_the_search_box(console):
    """ "/" goes to the queue's search box, without typing the slash."""
    search = console.locator("#search")
    expect(search).to_have_count(1)
    console.keyboard.press("/")
    expect(search).to_be_focused()
    expect(search).to_have_value("")
