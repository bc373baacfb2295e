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
