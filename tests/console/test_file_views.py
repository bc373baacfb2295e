"""Attachments in the console: agent-only, safe downloads."""

import pytest
from django.urls import reverse

from channel_adapters import locmem
from channel_adapters.base import InboundAttachment
from channels_ingest import downloads
from tests.factories import message_with
from tests.helpers import PNG, download_url, receive, share
from tests.helpers import poll_as_worker as poll
from tickets.models import Attachment


@pytest.fixture
def stored(slack_channel, slack_emulator):
    share(
        slack_emulator,
        "files",
        ("screen.png", PNG, "image/png"),
        ("page.html", b"<script>alert(1)</script>", "text/html"),
        ("drawing.svg", b"<svg onload=alert(1)/>", "image/svg+xml"),
    )
    poll(slack_channel)
    return dict(Attachment.objects.values_list("name", "pk"))


@pytest.mark.django_db
def test_downloads_are_for_agents_only(client, employee, stored):
    url = reverse("console:attachment", args=[stored["screen.png"]])
    response = client.get(url)
    assert response.status_code == 302
    assert "/login/" in response.url
    client.force_login(employee)
    assert client.get(url).status_code == 403


@pytest.mark.django_db
def test_only_raster_images_are_shown_inline(agent_client, stored):
    image = agent_client.get(reverse("console:attachment", args=[stored["screen.png"]]))
    assert image.status_code == 200
    assert b"".join(image.streaming_content) == PNG
    assert image["Content-Type"] == "image/png"
    assert image["Content-Disposition"] == 'inline; filename="screen.png"'
    downloaded = [
        agent_client.get(reverse("console:attachment", args=[stored[name]])) for name in ("page.html", "drawing.svg")
    ]
    assert [r["Content-Disposition"] for r in downloaded] == [
        'attachment; filename="page.html"',
        'attachment; filename="drawing.svg"',
    ]
    for response in (image, *downloaded):
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response["Content-Security-Policy"]
        assert "private" in response["Cache-Control"]


@pytest.mark.django_db
def test_download_names_are_sanitized(agent_client, locmem_channel):
    locmem.files["r1"] = b"data"
    hostile = '../../etc/pa"ss\r\nX-Injected: 1\x00.txt'
    receive(
        locmem_channel, [message_with(InboundAttachment(name=hostile, content_type="text/plain", size=4, ref="r1"))]
    )
    attachment = Attachment.objects.get()
    downloads.download_attachment(attachment.pk)
    response = agent_client.get(download_url(attachment))
    assert response.status_code == 200
    assert "X-Injected" not in response.headers
    disposition = response["Content-Disposition"]
    assert "\r" not in disposition
    assert "\n" not in disposition
    assert "/" not in disposition
    assert disposition == 'attachment; filename="pa\\"ssX-Injected: 1.txt"'


VOICE = b"OggS" + bytes(range(256)) * 2


@pytest.fixture
def voice_note(locmem_channel):
    """A WhatsApp-style voice note (Opus in Ogg), downloaded."""
    locmem.files["voice"] = VOICE
    note = InboundAttachment(name="voice.ogg", content_type="audio/ogg; codecs=opus", size=len(VOICE), ref="voice")
    receive(locmem_channel, [message_with(note)])
    attachment = Attachment.objects.get()
    downloads.download_attachment(attachment.pk)
    return attachment


@pytest.mark.django_db
def test_a_voice_note_is_served_inline_as_audio_and_safely(agent_client, voice_note):
    response = agent_client.get(download_url(voice_note))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == VOICE
    assert response["Content-Type"] == "audio/ogg"
    assert response["Content-Disposition"] == 'inline; filename="voice.ogg"'
    assert response["Accept-Ranges"] == "bytes"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("asked", "first", "last"),
    [("bytes=0-99", 0, 99), ("bytes=500-", 500, len(VOICE) - 1), ("bytes=-10", len(VOICE) - 10, len(VOICE) - 1)],
)
def test_a_player_gets_the_byte_range_it_asks_for(agent_client, voice_note, asked, first, last):
    """Players seek by asking for ranges, and Safari plays nothing from a server that ignores them."""
    response = agent_client.get(download_url(voice_note), headers={"Range": asked})
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == VOICE[first : last + 1]
    assert response["Content-Range"] == f"bytes {first}-{last}/{len(VOICE)}"
    assert response["Content-Length"] == str(last - first + 1)
    assert response["Content-Type"] == "audio/ogg"
    assert response["Content-Disposition"] == 'inline; filename="voice.ogg"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_a_range_past_the_end_is_refused_and_odd_ones_get_the_whole_file(agent_client, voice_note):
    past = agent_client.get(download_url(voice_note), headers={"Range": f"bytes={len(VOICE)}-"})
    assert past.status_code == 416
    assert past["Content-Range"] == f"bytes */{len(VOICE)}"
    for header in ("bytes=0-1,5-9", "bytes=9-5", "items=0-5", "bytes=-"):
        whole = agent_client.get(download_url(voice_note), headers={"Range": header})
        assert whole.status_code == 200, header
        assert b"".join(whole.streaming_content) == VOICE


@pytest.mark.django_db
def test_html_and_svg_stay_downloads_even_when_a_range_is_asked(agent_client, stored):
    for name in ("page.html", "drawing.svg"):
        response = agent_client.get(reverse("console:attachment", args=[stored[name]]), headers={"Range": "bytes=0-5"})
        assert response.status_code == 206
        assert response["Content-Disposition"] == f'attachment; filename="{name}"'
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response["Content-Security-Policy"]
