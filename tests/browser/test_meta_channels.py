"""Meta's channels in a real browser (Playwright driving Debian's Chromium) against a live server, a real Celery
worker and the Meta emulator, which pushes signed webhooks to the channel's URL once the helpdesk has answered its
GET hub.challenge handshake.

An Instagram comment waits in Triage until an agent makes it a ticket and answers it with a private reply, which
Meta allows once. A WhatsApp reply counts down WhatsApp's 24-hour window, and its badge follows WhatsApp's
receipts; once the window has closed, only the approved template can be sent. The window is aged with the
emulator's ``at`` and closed with time-machine, which moves the clock of this process (the live server and the
emulator) and not today's date of any test; the page's own clock is Playwright's.
"""

import json
import re
import time
from datetime import timedelta

import pytest
import time_machine
from playwright.sync_api import expect

from channels_ingest.models import Channel, InboundMessage
from tests.helpers import channels_command, open_ticket, wait_for
from tickets.models import Message, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGE_ID, IG_ID = "1001", "2002"
NUMBER_ID, WABA_ID = "1122334455667", "1234567890987654321"
APP_SECRET, VERIFY_TOKEN = "browser-app-secret", "browser-verify-token"
ANA = "4915112345678"
TEMPLATE = "Hi {{1}}, your ticket is {{2}}."


@pytest.fixture
def connect(settings, live_server, meta_emulator, celery_worker_process):
    """``connect(account_id, kind, name, config)``: a real worker, and the channel added with ``manage.py channels
    add`` (credentials checked against the emulator), its printed webhook URL registered through the handshake."""
    celery_worker_process()
    settings.PUBLIC_BASE_URL = live_server.url

    def add(account_id, kind, name, config):
        raw = {"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "base_url": meta_emulator.base_url, **config}
        output = channels_command("add", kind, name, "--config", json.dumps(raw), "--poll-interval", "0")
        url = re.search(r"Webhook URL: (\S+)", output).group(1)
        assert meta_emulator.set_webhook(account_id, url)["handshake"]["passed"]
        return Channel.objects.get(name=name)

    return add


@pytest.fixture
def instagram(connect, meta_emulator):
    page = meta_emulator.add_page(PAGE_ID, token="page-browser", app_secret=APP_SECRET, verify_token=VERIFY_TOKEN)
    meta_emulator.add_instagram(PAGE_ID, IG_ID, username="ithelp", verify_token=VERIFY_TOKEN)
    config = {"ig_user_id": IG_ID, "page_id": PAGE_ID, "page_access_token": page["token"]}
    return connect(IG_ID, "instagram", "ig-help", config)


@pytest.fixture
def whatsapp(connect, meta_emulator):
    """A WhatsApp number with one approved template, which the channel learns when it is added."""
    account = meta_emulator.add_whatsapp(
        phone_number_id=NUMBER_ID,
        waba_id=WABA_ID,
        token="EAAG-browser",
        app_secret=APP_SECRET,
        verify_token=VERIFY_TOKEN,
    )
    meta_emulator.add_template(WABA_ID, "ticket_update", TEMPLATE)
    config = {"phone_number_id": NUMBER_ID, "waba_id": WABA_ID, "access_token": account["token"]}
    return connect(NUMBER_ID, "whatsapp", "wa-help", config)


def send(console, text):
    console.fill("#reply-body", text)
    console.get_by_role("button", name="Send reply").click()
    expect(console.get_by_text("Reply queued for delivery.")).to_be_visible()


def test_an_instagram_comment_in_triage_becomes_a_ticket_answered_once_by_private_reply(
    console, live_server, meta_emulator, instagram
):
    media = meta_emulator.add_post(IG_ID, "New laptops arrive on Monday")["id"]
    comment = meta_emulator.comment(IG_ID, media, "Mine still can't reach the VPN", username="maya.dev")
    wait_for(
        lambda: InboundMessage.objects.filter(status=InboundMessage.Status.TRIAGE).exists(),
        message="the worker to hold the comment for triage",
    )
    assert not Ticket.objects.exists()

    console.get_by_role("link", name=re.compile("^Triage")).click()
    row = console.get_by_role("row").filter(has_text="Mine still can't reach the VPN")
    expect(row).to_contain_text("@maya.dev")
    row.get_by_role("button", name="Create ticket").click()
    expect(console.get_by_text("1 post accepted")).to_be_visible()
    ticket = wait_for(lambda: Ticket.objects.first(), message="the worker to open the ticket")
    console.get_by_role("link", name="Tickets", exact=True).click()
    console.get_by_role("link", name="Mine still can't reach the VPN").click()

    expect(console.get_by_label("Public reply")).to_be_checked()
    console.get_by_label("Private reply (DM)").check()
    send(console, "Let's sort it out here: which laptop model is it?")
    wait_for(lambda: meta_emulator.sent(IG_ID), message="the worker to send the private reply")
    [sent] = meta_emulator.sent(IG_ID)
    assert (sent["kind"], sent["comment_id"], sent["text"]) == (
        "private_reply",
        comment["comment_id"],
        "Let's sort it out here: which laptop model is it?",
    )
    reply = Message.objects.get(ticket=ticket, direction=Message.Direction.OUTBOUND)
    expect(console.locator(f"#message-{reply.pk} .badge.delivery-read")).to_be_visible()  # Instagram's read

    # The page again, as the agent comes back to it: the comment keeps its one private reply, and the ticket
    # now holds the person's DM conversation, where the talk goes on.
    open_ticket(console, live_server, ticket)
    private = console.get_by_label("Private reply (DM)")
    expect(private).to_be_disabled()
    expect(console.locator(".reply-mode.is-disabled")).to_contain_text(
        "Private reply (DM) is not possible here: A private reply was already sent for this comment"
    )
    expect(console.get_by_label("Public reply")).to_be_checked()
    expect(console.locator("#reply-thread option")).to_have_count(2)
    assert len(meta_emulator.sent(IG_ID)) == 1


#: The person wrote this long before the test's "now": the window has 2 minutes left, less a moment.
WROTE_AGO = timedelta(hours=23, minutes=58)


def test_a_whatsapp_reply_counts_down_the_window_then_only_the_template_goes_out(
    console, live_server, meta_emulator, whatsapp
):
    # WhatsApp's timestamps are whole seconds: written on a whole second, 23 h 58 min ago at least.
    wrote = meta_emulator.whatsapp(
        NUMBER_ID,
        "My phone lost its mail",
        wa_id=ANA,
        name="Ana Lima",
        at=int(time.time()) - WROTE_AGO.total_seconds(),
    )
    ticket = wait_for(lambda: Ticket.objects.first(), message="the worker to open the ticket")
    # Read comes a few seconds after delivered, so the badge is seen at each step.
    meta_emulator.set_receipts(delivered_delay=0.1, read_delay=6)
    console.clock.install()
    open_ticket(console, live_server, ticket)

    expect(console.get_by_label("Reply (up to 4096 characters)")).to_be_checked()
    expect(console.locator("#reply-mode-1-window")).to_have_text("Reply window: 1 min left")
    send(console, "Which phone is it?")
    reply = wait_for(lambda: Message.objects.filter(direction=Message.Direction.OUTBOUND).first(), message="reply")
    badge = console.locator(f"#message-{reply.pk} .badge")
    expect(badge).to_have_text(re.compile("Delivered$"))
    expect(badge).to_have_text(re.compile("Read$"))
    [sent] = meta_emulator.sent(NUMBER_ID)
    assert (sent["type"], sent["text"], sent["context_id"]) == ("text", "Which phone is it?", wrote["wamid"])

    # The window closes while the page is open: its countdown says so without asking the server.
    console.clock.fast_forward("02:00")
    expect(console.locator("#reply-mode-1-window time")).to_have_text("closed")
    with time_machine.travel(timedelta(minutes=2), tick=True):
        open_ticket(console, live_server, ticket)
        free_text = console.get_by_label("Reply (up to 4096 characters)")
        expect(free_text).to_be_disabled()
        expect(console.locator(".reply-mode.is-disabled")).to_contain_text(
            "Reply is not possible here: WhatsApp's 24-hour window closed"
        )
        template = console.get_by_label('Template "ticket_update" (en_US)')
        expect(template).to_be_checked()
        expect(console.locator(".mode-template")).to_contain_text("Hi {{1}}, your ticket is {{2}}.")
        meta_emulator.set_receipts(read_delay=0.2)
        send(console, "Ana\nready for pickup")
        template_reply = wait_for(
            lambda: Message.objects.filter(direction=Message.Direction.OUTBOUND).exclude(pk=reply.pk).first(),
            message="the template reply",
        )
        expect(console.locator(f"#message-{template_reply.pk} .badge")).to_have_text(re.compile("Read$"))
    [_, sent_template] = meta_emulator.sent(NUMBER_ID)
    assert (sent_template["type"], sent_template["content"]["name"], sent_template["text"]) == (
        "template",
        "ticket_update",
        "Hi Ana, your ticket is ready for pickup.",
    )
