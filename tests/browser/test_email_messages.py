"""An email's HTML view in a real browser: opened on request in a sandboxed frame, its inline image shown in
place, a remote image fetched only once the agent asks for it; the quoted history opens without script."""

import struct
import zlib

import pytest
from playwright.sync_api import expect

from tests.factories import message
from tests.helpers import add_email, open_ticket, receive
from tickets.models import Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def png(width, height):
    """A real (opaque red) PNG, which the browser decodes to ``width`` x ``height``."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture
def ticket(locmem_channel):
    receive(locmem_channel, [message("m0", text="The scanner jams on every page")])
    return Ticket.objects.get()


def test_the_html_view_shows_inline_images_and_asks_before_remote_ones(console, live_server, ticket):
    tracker = f"{live_server.url}/static/console.css?pixel=ann"  # stands for a tracking pixel: any URL will do
    email = add_email(
        ticket,
        minute=1,
        body="See the screenshot.",
        quoted="See the screenshot.\n\n> Which tray?",
        html=f'<p>See the <b>screenshot</b>:</p><img src="cid:shot@x" alt="Screenshot"><img src="{tracker}" alt="pixel">',
        inline={"shot@x": 0},
        files=[("shot.png", png(7, 5), "image/png")],
    )
    fetched = []
    console.on("request", lambda request: fetched.append(request.url))
    open_ticket(console, live_server, ticket)
    item = console.locator(f"#message-{email.pk}")

    quoted = item.locator(".email-quoted")
    expect(quoted.get_by_text("> Which tray?")).to_be_hidden()
    quoted.locator("summary").click()
    expect(quoted.get_by_text("> Which tray?")).to_be_visible()

    frame_element = item.locator("iframe.email-html-frame")
    assert frame_element.get_attribute("src") is None  # nothing fetched until the agent opens it
    item.get_by_text("View HTML").click()
    frame = item.frame_locator("iframe.email-html-frame")
    expect(frame.locator("b")).to_have_text("screenshot")
    shot = frame.locator("img[alt=Screenshot]")
    expect(shot).to_be_visible()
    assert shot.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]") == [True, 7, 5]
    expect(frame.get_by_text("1 remote image not loaded.")).to_be_visible()
    assert not [url for url in fetched if "pixel=ann" in url]

    item.get_by_role("link", name="Load remote images").click()
    expect(frame.get_by_text("1 remote image not loaded.")).to_have_count(0)
    expect(frame.locator("img[alt=pixel]")).to_have_attribute("src", tracker)
    assert [url for url in fetched if "pixel=ann" in url]
    assert console.url.endswith(f"/tickets/{ticket.pk}/")  # the frame reloaded, not the page
