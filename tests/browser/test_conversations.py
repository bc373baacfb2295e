"""Answering a merged ticket in a real browser (Playwright driving Debian's Chromium) against a live server:
switching "Reply in" updates the send modes, the length hint and the file input, and files already chosen
stay chosen while the new conversation takes files too.

Tickets are stored directly with ``receive``; the X channel is only asked for its reply modes, never called.
"""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.factories import composer_time, message, x_dm_from_bob
from tests.helpers import receive
from tickets.merging import merge_tickets
from tickets.models import Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def merged_with_x_dm(agent, locmem_channel, offline_x_channel):
    """Alice's ticket (she wrote last) with Bob's locmem conversation and an X DM merged in."""
    receive(
        locmem_channel,
        [
            message("a1", user="alice", name="Alice", text="VPN is down", minute=5),
            message("b1", user="bob", name="Bob", text="VPN down for me too", minute=2),
        ],
    )
    receive(offline_x_channel, [x_dm_from_bob()])
    alice = Ticket.objects.get(requester__display_name="Alice")
    merge_tickets(ticket_ids=list(Ticket.objects.values_list("pk", flat=True)), actor=agent, keep_id=alice.pk)
    return alice


def test_switching_conversation_updates_the_hint_and_the_file_input(console, live_server, merged_with_x_dm):
    console.goto(live_server.url + reverse("console:ticket-detail", args=[merged_with_x_dm.pk]))
    reply_in = console.get_by_label("Reply in")
    hint, files = console.locator("#reply-hint"), console.locator("#reply-files")
    expect(hint).to_have_text("At most 1000 characters on this channel.")
    expect(files).to_be_enabled()
    files.set_input_files(files=[{"name": "boot.log", "mimeType": "text/plain", "buffer": b"line 1\n"}])

    # Bob's locmem conversation takes files too: the hint stays, and the chosen file is still there.
    console.locator("#composer-files").evaluate("fieldset => fieldset.dataset.before = 'switch'")
    reply_in.select_option(label=f"Locmem lm — Bob (last wrote {composer_time(2)})")
    expect(console.locator("#composer-files")).not_to_have_attribute("data-before", "switch")  # refilled
    expect(hint).to_have_text("At most 1000 characters on this channel.")
    expect(files).to_be_enabled()
    assert files.evaluate("input => input.files.length") == 1

    # The X DM carries text only and says its own limit.
    reply_in.select_option(label=f"X x-help · DM — bob_x (last wrote {composer_time(0)})")
    expect(console.get_by_role("group", name="Send as")).to_contain_text("Direct message (up to 10000 characters)")
    expect(hint).to_be_empty()
    expect(console.locator("#composer-files-slot")).to_have_text(
        "No attachments: replies on this channel carry text only."
    )
    expect(files).to_have_count(0)

    reply_in.select_option(label=f"Locmem lm — Alice (last wrote {composer_time(5)})")
    expect(hint).to_have_text("At most 1000 characters on this channel.")
    expect(files).to_be_enabled()
    expect(console.locator("#reply-files-limits")).to_contain_text("Up to 3 files")
