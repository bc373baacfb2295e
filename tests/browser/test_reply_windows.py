"""Meta's rules and reports in a real browser (Playwright driving Debian's Chromium) against a live server: the
reply window's countdown runs on in the page without asking the server, a template's text shows while its mode
is chosen, and the new markup (badges, reactions, players, template modes, webhook facts) passes axe-core and
fits a phone's width.

The channel is locmem with a 24-hour window and a template (``channel_adapters.locmem``); the page's clock is
Playwright's, moved forward instead of waited for.
"""

from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from channel_adapters import locmem
from channel_adapters.base import InboundAttachment
from channels_ingest import downloads
from channels_ingest.models import Channel
from tests.factories import message, message_with
from tests.helpers import receive
from tickets.models import Attachment, Message, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEMPLATE = {"name": "ticket_update", "language": "en", "body": "Hi {{1}}, about your ticket: {{2}}"}
PHONE = {"width": 390, "height": 844}


def wrote(channel, *, ago):
    """Ann's ticket on ``channel``; she wrote ``ago`` before now (the window counts from it)."""
    receive(channel, [message("w0", text="My phone lost its mail")])
    Message.objects.filter(external_id="w0").update(created_at=timezone.now() - ago)
    return Ticket.objects.get(channel=channel)


@pytest.fixture
def windowed():
    return Channel.objects.create(kind="locmem", name="wa", config={"inbox": "wa", "window_hours": 24})


def detail(live_server, ticket):
    return live_server.url + reverse("console:ticket-detail", args=[ticket.pk])


def test_the_countdown_runs_on_in_the_page_and_says_when_the_window_closed(console, live_server, windowed):
    ticket = wrote(windowed, ago=timedelta(hours=23, minutes=58, seconds=30))  # 1 min 30 s left
    console.clock.install()
    console.goto(detail(live_server, ticket))
    countdown = console.locator("#reply-hint time[data-expires-at]")
    expect(countdown).to_have_text("1 min left")

    console.clock.fast_forward(45_000)
    expect(countdown).to_have_text("less than a minute left")
    console.clock.fast_forward(60_000)
    expect(countdown).to_have_text("closed")
    expect(console.locator("#reply-hint .reply-window")).to_have_class("reply-window is-closed")


def test_a_template_shows_its_text_while_its_mode_is_chosen(console, live_server, windowed):
    windowed.config["templates"] = [TEMPLATE]
    windowed.save()
    ticket = wrote(windowed, ago=timedelta(hours=2))
    console.goto(detail(live_server, ticket))
    template_text = console.locator(".mode-template")
    expect(console.get_by_label("Reply (up to 1000 characters)")).to_be_checked()
    expect(console.locator("#reply-mode-1-window")).to_have_text("Reply window: 21 h 59 min left")
    expect(template_text).to_be_hidden()

    console.get_by_label('Template "ticket_update" (en) (up to 1000 characters)').check()
    expect(template_text).to_be_visible()
    expect(template_text).to_contain_text("Hi {{1}}, about your ticket: {{2}}")
    expect(template_text).to_contain_text("write 2 lines")


def serious_violations(page):
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at " + ", ".join(str(n["target"]) for n in v["nodes"][:3])
        for v in Axe().run(page).response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.fixture
def everything_new(agent, windowed):
    """A ticket showing all of it: a closed window with a template chosen, a voice note and a video, reactions,
    a read reply and a failure reported with the platform's words; and a channel whose webhook was verified."""
    windowed.config["templates"] = [TEMPLATE]
    windowed.secrets = {"verify_token": "vt"}
    windowed.webhook_verified_at = windowed.last_push_at = timezone.now()
    windowed.save()
    locmem.files.update({"voice": b"OggS" + bytes(64), "clip": b"\x00\x00\x00\x18ftypmp42" + bytes(64)})
    files = (
        InboundAttachment(name="voice-note-" + "v" * 120 + ".ogg", content_type="audio/ogg", size=68, ref="voice"),
        InboundAttachment(name="clip.mp4", content_type="video/mp4", size=76, ref="clip"),
    )
    receive(windowed, [message_with(*files, external_id="w0")])
    for attachment in Attachment.objects.all():
        downloads.download_attachment(attachment.pk)
    ticket = Ticket.objects.get()
    Message.objects.filter(external_id="w0").update(
        created_at=timezone.now() - timedelta(days=2),
        reactions={"locmem:u1": "👍", "locmem:u2": "👍", "locmem:u3": "<b>" + "x" * 40},
    )
    for status, error in (("read", ""), ("failed", "Message undeliverable (131026): " + "w" * 200)):
        Message.objects.create(
            ticket=ticket,
            thread=ticket.threads.get(),
            direction=Message.Direction.OUTBOUND,
            author_user=agent,
            body=f"a {status} reply",
            delivery_status=status,
            delivery_error=error,
            delivery_reported_at=timezone.now(),
        )
    return ticket


def test_the_new_markup_is_accessible_and_fits_a_phone(console, browser, live_server, everything_new):
    pages = {"ticket": detail(live_server, everything_new), "channels": live_server.url + reverse("console:channels")}
    found = {}
    for name, url in pages.items():
        console.goto(url)
        if violations := serious_violations(console):
            found[name] = violations
    assert not found, found
    console.goto(pages["ticket"])
    expect(console.locator("audio.attachment-player")).to_have_count(1)
    expect(console.locator("video.attachment-player")).to_have_count(1)
    expect(console.locator(".reply-mode.is-disabled")).to_contain_text("Reply is not possible here")

    phone = console.context.browser.new_context(viewport=PHONE, storage_state=console.context.storage_state())
    page = phone.new_page()
    overflowing = {}
    for name, url in pages.items():
        page.goto(url)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            overflowing[name] = width
    phone.close()
    assert not overflowing, f"pages wider than the {PHONE['width']}px screen: {overflowing}"
