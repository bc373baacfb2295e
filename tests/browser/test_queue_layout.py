"""The queue's layout at a common laptop width: names, ages and channels are not broken mid-word."""

import pytest
from playwright.sync_api import expect

from tests.factories import message
from tests.helpers import receive
from tickets.models import Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

#: How many lines a cell's text takes: the height of its contents over its line height.
LINES_OF = """cell => {
  const range = document.createRange();
  range.selectNodeContents(cell);
  const lineHeight = parseFloat(getComputedStyle(cell).lineHeight);
  return Math.round(range.getBoundingClientRect().height / lineHeight);
}"""
#: How many lines the last piece of text in a cell takes (the channel's name, after its kind's badge).
LAST_TEXT_LINES = """cell => {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  let last = null;
  while (walker.nextNode()) { if (walker.currentNode.textContent.trim()) last = walker.currentNode; }
  const range = document.createRange();
  range.selectNodeContents(last);
  return range.getClientRects().length;
}"""


def test_requester_age_and_channel_cells_keep_to_one_line_at_1280px(console, locmem_channel):
    """Long subjects and a long status squeeze the other columns: "Employee29" must still not wrap (it did, as
    "Employe|e29", with ``overflow-wrap: anywhere``), nor an age ("2 d ago"), nor the channel's name."""
    subject = "The shared drive mapping fails after the VPN reconnects on the third floor printers " * 3
    receive(
        locmem_channel,
        [message(f"m{n}", user=f"u{n}", name=f"Employee{27 + n}", text=subject, minute=n) for n in range(3)],
    )
    locmem_channel.name = "ITHelpdeskWorkspace"
    locmem_channel.save()
    Ticket.objects.filter(pk=Ticket.objects.order_by("pk").first().pk).update(status="pending")
    console.set_viewport_size({"width": 1280, "height": 800})
    console.reload()
    rows = console.locator("table.tickets tbody tr")
    expect(rows).to_have_count(3)
    requester = rows.first.locator("td.requester")
    expect(requester).to_have_text("Employee29")
    assert requester.evaluate(LINES_OF) == 1
    for cell in ("td.age", "td.last-activity"):
        assert rows.first.locator(cell).evaluate(LINES_OF) == 1, cell
    assert rows.first.locator("td.channel").evaluate(LAST_TEXT_LINES) == 1
    # The subject takes the width that is left, wrapping between words.
    assert rows.first.locator("td.subject").evaluate(LINES_OF) > 1
