"""Attachments: files that come with messages (downloaded after ingestion, shown to agents only) and
files agents send with replies (delivered after the text, each once, even across retries)."""

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from channel_adapters import locmem
from channel_adapters.base import InboundAttachment, TransientError
from channels_ingest import downloads, ingest, polling, sweep
from tests.conftest import make_x_channel, queries_for, receive, wait_for
from tests.conftest import poll_as_worker as poll
from tests.factories import message
from tickets.attachments import safe_filename
from tickets.models import Attachment, Message, Ticket

CHANNEL = "C0GENERAL"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PDF = b"%PDF-1.7\n" + b"x" * 5000


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def share(slack_emulator, text, *files, thread_ts=None):
    """Ann posts in #it-help with files: (name, bytes, mime type)."""
    return slack_emulator.post(
        CHANNEL,
        "U0ANN",
        text,
        thread_ts=thread_ts,
        files=[{"name": name, "content": content, "mimetype": mimetype} for name, content, mimetype in files],
    )


def detail_url(ticket):
    return reverse("console:ticket-detail", args=[ticket.pk])


def download_url(attachment):
    return reverse("console:attachment", args=[attachment.pk])


def reply_url(ticket):
    return reverse("console:ticket-reply", args=[ticket.pk])


# Inbound ----------------------------------------------------------------------


@pytest.mark.django_db
def test_polled_slack_files_are_downloaded_and_shown_under_the_message(
    slack_channel, slack_emulator, agent_client, media
):
    share(
        slack_emulator,
        "printer says <b>PC LOAD LETTER</b>",
        ("screen.png", PNG, "image/png"),
        ("<img src=x onerror=alert(1)>.pdf", PDF, "application/pdf"),
    )
    poll(slack_channel)

    ticket = Ticket.objects.get()
    screen, pdf = Attachment.objects.order_by("id")
    assert (screen.status, screen.name, screen.content_type, screen.size) == (
        "stored",
        "screen.png",
        "image/png",
        len(PNG),
    )
    assert screen.file.read() == PNG
    assert pdf.file.read() == PDF
    assert screen.message.ticket == ticket
    assert screen.error == ""
    assert str(media) in screen.file.path
    assert "screen" not in screen.file.name

    html = agent_client.get(detail_url(ticket)).content.decode()
    assert f'src="{download_url(screen)}"' in html
    assert 'class="attachment-thumb"' in html
    assert f'href="{download_url(pdf)}"' in html
    assert html.count('class="attachment-thumb"') == 1
    assert "&lt;img src=x onerror=alert(1)&gt;.pdf" in html
    assert "<img src=x" not in html
    assert "5.0" in html
    assert "KB" in html


@pytest.mark.django_db
def test_a_message_of_files_alone_is_named_by_its_files(slack_channel, slack_emulator):
    share(slack_emulator, "", ("vpn-error.png", PNG, "image/png"))
    poll(slack_channel)
    assert Ticket.objects.get().subject == "vpn-error.png"
    assert Message.objects.get().body == ""


@pytest.mark.django_db
def test_ingestion_does_not_wait_for_downloads(slack_channel, slack_emulator, django_capture_on_commit_callbacks):
    """The message lands with its files pending; the downloads are separate tasks, queued after commit."""
    from helpdesk.celery import app

    app.conf.task_always_eager = False
    share(slack_emulator, "see attached", ("log.txt", b"boom\n", "text/plain"))
    polling.poll_channel(slack_channel.pk)
    ingest.ingest_channel(slack_channel.pk)
    attachment = Attachment.objects.get()
    assert attachment.status == "pending"
    assert Message.objects.get().body == "see attached"
    assert "files-pri" not in slack_emulator.stats()["calls"]
    assert downloads.download_attachment(attachment.pk).status == "stored"
    assert downloads.download_attachment(attachment.pk).status == "noop"  # idempotent: already stored
    assert slack_emulator.stats()["calls"]["files-pri"] == 1


@pytest.mark.django_db
def test_a_transient_download_error_is_retried(slack_channel, slack_emulator):
    slack_emulator.fault("files-pri", status=503)
    share(slack_emulator, "see attached", ("log.txt", b"boom\n", "text/plain"))
    poll(slack_channel)
    attachment = Attachment.objects.get()
    assert attachment.status == "stored"
    assert attachment.attempts == 2
    assert attachment.file.read() == b"boom\n"
    assert slack_emulator.stats()["calls"]["files-pri"] == 2


@pytest.mark.django_db
def test_a_refused_download_fails_visibly(slack_channel, slack_emulator, agent_client):
    slack_emulator.fault("files-pri", status=403)
    share(slack_emulator, "see attached", ("secret.txt", b"x", "text/plain"))
    poll(slack_channel)
    attachment = Attachment.objects.get()
    assert attachment.status == "failed"
    assert "HTTP 403" in attachment.error
    assert attachment.attempts == 1
    html = agent_client.get(detail_url(attachment.message.ticket)).content.decode()
    assert "secret.txt" in html
    assert "Failed" in html
    assert "HTTP 403" in html
    assert f'href="{download_url(attachment)}"' not in html
    assert agent_client.get(download_url(attachment)).status_code == 404


@pytest.mark.django_db
def test_transient_errors_give_up_after_the_last_attempt(locmem_channel, settings):
    settings.ATTACHMENT_FETCH_MAX_ATTEMPTS = 2
    locmem.files["r1"] = b"data"
    locmem.file_failures.extend([TransientError("blip"), TransientError("blip again")])
    attached = InboundAttachment(name="a.txt", content_type="text/plain", size=4, ref="r1")
    receive(locmem_channel, [message_with(attached)])
    attachment = Attachment.objects.get()
    assert downloads.download_attachment(attachment.pk).status == "retry"
    attachment.refresh_from_db()
    assert attachment.status == "pending"
    assert "Attempt 1 failed: blip" in attachment.error
    assert downloads.download_attachment(attachment.pk).status == "failed"
    attachment.refresh_from_db()
    assert attachment.status == "failed"
    assert "gave up after 2 attempts" in attachment.error


def message_with(*attachments, external_id="m0"):
    from dataclasses import replace

    return replace(message(external_id), attachments=attachments)


@pytest.mark.django_db
def test_files_over_the_limit_are_marked_too_large(slack_channel, slack_emulator, settings, agent_client):
    """Declared too large: never downloaded. Larger than declared: the download stops at the limit."""
    settings.ATTACHMENT_MAX_BYTES = 1000
    share(slack_emulator, "two files", ("big.png", PNG, "image/png"), ("small.txt", b"ok", "text/plain"))
    poll(slack_channel)
    big, small = Attachment.objects.order_by("id")
    assert big.status == "too_large"
    assert not big.file
    assert "the limit is 1000 bytes" in big.error
    assert small.status == "stored"
    assert slack_emulator.stats()["calls"]["files-pri"] == 1
    html = agent_client.get(detail_url(big.message.ticket)).content.decode()
    assert "Too large" in html
    assert "the limit is 1000 bytes" in html


@pytest.mark.django_db
def test_a_file_larger_than_declared_stops_at_the_limit(locmem_channel, settings):
    settings.ATTACHMENT_MAX_BYTES = 1000
    locmem.files["r1"] = b"x" * 50_000
    receive(locmem_channel, [message_with(InboundAttachment(name="a.bin", content_type="", size=0, ref="r1"))])
    attachment = Attachment.objects.get()
    assert downloads.download_attachment(attachment.pk).status == "too_large"
    attachment.refresh_from_db()
    assert attachment.status == "too_large"
    assert not attachment.file
    assert attachment.content_type == "application/octet-stream"


@pytest.mark.django_db
def test_the_sweep_requeues_lost_downloads(locmem_channel):
    from helpdesk.celery import app

    app.conf.task_always_eager = False
    locmem.files["r1"] = b"data"
    receive(
        locmem_channel, [message_with(InboundAttachment(name="a.txt", content_type="text/plain", size=4, ref="r1"))]
    )
    assert sweep.sweep()["downloads"] == 0
    Attachment.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    app.conf.task_always_eager = True
    assert sweep.sweep()["downloads"] == 1
    assert Attachment.objects.get().status == "stored"


# Serving ----------------------------------------------------------------------


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


def test_safe_filename():
    assert safe_filename("C:\\Users\\ann\\report.pdf") == "report.pdf"
    assert safe_filename("..") == "attachment"
    assert safe_filename("") == "attachment"
    assert safe_filename("\u202eexe.pdf") == "exe.pdf"  # no right-to-left override tricks
    assert safe_filename("résumé 2026.pdf") == "résumé 2026.pdf"
    long = safe_filename("a" * 300 + ".xlsx")
    assert len(long) <= 150
    assert long.endswith("….xlsx")


@pytest.mark.django_db
def test_ticket_page_queries_do_not_grow_with_attachments(agent_client, locmem_channel):
    def add(count, start):
        for n in range(start, start + count):
            ref = f"r{n}"
            locmem.files[ref] = b"data"
            files = [
                InboundAttachment(name=f"f{n}-{i}.png", content_type="image/png", size=4, ref=ref) for i in range(2)
            ]
            receive(locmem_channel, [message_with(*files, external_id=f"m{n}")])

    add(1, 0)
    ticket = Ticket.objects.get()
    Message.objects.update(ticket=ticket)
    few = queries_for(agent_client, detail_url(ticket))
    add(8, 1)
    Message.objects.update(ticket=ticket)
    assert Attachment.objects.count() == 18
    assert queries_for(agent_client, detail_url(ticket)) == few


# Outbound ---------------------------------------------------------------------


@pytest.fixture
def slack_ticket(slack_channel, slack_emulator):
    parent = slack_emulator.post(CHANNEL, "U0ANN", "my laptop won't boot")["ts"]
    poll(slack_channel)
    ticket = Ticket.objects.get()
    ticket.parent_ts = parent
    return ticket


def thread_replies(slack_emulator, parent_ts):
    return [m for m in slack_emulator.messages(CHANNEL) if m.get("thread_ts") == parent_ts and m["ts"] != parent_ts]


def send_reply(agent_client, ticket, body, *files, capture):
    with capture(execute=True):
        return agent_client.post(reply_url(ticket), {"body": body, "files": list(files)})


def upload(name="boot.log", content=b"line 1\nline 2\n", content_type="text/plain"):
    return SimpleUploadedFile(name, content, content_type=content_type)


@pytest.mark.django_db
def test_composer_offers_files_where_the_channel_takes_them(agent_client, slack_ticket):
    html = agent_client.get(detail_url(slack_ticket)).content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert re.search(
        r'<label for="reply-files">Attach files</label>\s*<input type="file" id="reply-files" name="files" multiple',
        html,
    )
    assert "Up to 10 files, each at most 25.0" in html
    assert "No attachments" not in html


@pytest.mark.django_db
def test_reply_with_files_arrives_in_the_thread_after_its_text(
    agent_client, slack_ticket, slack_emulator, django_capture_on_commit_callbacks
):
    response = send_reply(
        agent_client,
        slack_ticket,
        "Here is the log",
        upload(),
        upload("screen.png", PNG, "image/png"),
        capture=django_capture_on_commit_callbacks,
    )
    assert response.status_code == 302

    reply = Message.objects.get(direction="outbound")
    assert reply.delivery_status == "sent"
    text, first, second = thread_replies(slack_emulator, slack_ticket.parent_ts)
    assert text["text"] == "Here is the log"
    assert "files" not in text
    assert [first["files"][0]["name"], second["files"][0]["name"]] == ["boot.log", "screen.png"]
    attachments = list(reply.attachments.order_by("id"))
    assert [a.external_id for a in attachments] == [first["files"][0]["id"], second["files"][0]["id"]]
    assert all(a.delivered_at and a.status == "stored" for a in attachments)
    assert attachments[1].file.read() == PNG
    html = agent_client.get(detail_url(slack_ticket)).content.decode()
    assert "boot.log" in html
    assert html.count("delivery-sent") >= 3


@pytest.mark.django_db
def test_a_failed_upload_is_retried_without_reposting(
    agent_client, slack_ticket, slack_emulator, django_capture_on_commit_callbacks
):
    """The text went out, the file's upload failed: the retry sends the file alone, once."""
    slack_emulator.fault("files.completeUploadExternal", status=500)
    send_reply(agent_client, slack_ticket, "Here is the log", upload(), capture=django_capture_on_commit_callbacks)

    reply = Message.objects.get(direction="outbound")
    assert reply.delivery_status == "sent"
    assert reply.delivery_attempts == 2
    text, file = thread_replies(slack_emulator, slack_ticket.parent_ts)
    assert text["text"] == "Here is the log"
    assert file["files"][0]["name"] == "boot.log"
    assert slack_emulator.stats()["calls"]["chat.postMessage"] == 1


@pytest.mark.django_db
def test_a_failed_reply_retried_by_the_agent_sends_only_what_is_missing(
    agent_client, slack_ticket, slack_emulator, settings, django_capture_on_commit_callbacks
):
    settings.DELIVERY_MAX_ATTEMPTS = 1
    slack_emulator.fault("files.getUploadURLExternal", status=200, error="internal_error", count=1)
    send_reply(
        agent_client,
        slack_ticket,
        "Two files",
        upload("a.txt"),
        upload("b.txt"),
        capture=django_capture_on_commit_callbacks,
    )
    reply = Message.objects.get(direction="outbound")
    assert reply.delivery_status == "failed"
    assert reply.delivery_error.startswith("The text was sent, but not every file: a.txt:")
    html = agent_client.get(detail_url(slack_ticket)).content.decode()
    assert "The text was sent, but not every file" in html
    assert "Retry" in html

    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(reverse("console:message-retry", args=[reply.pk]))
    reply.refresh_from_db()
    assert reply.delivery_status == "sent"
    replies = thread_replies(slack_emulator, slack_ticket.parent_ts)
    assert [m.get("text") for m in replies] == ["Two files", "", ""]
    assert [m["files"][0]["name"] for m in replies[1:]] == ["a.txt", "b.txt"]

    # And a second Retry of a sent reply sends nothing.
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(reverse("console:message-retry", args=[reply.pk]))
    assert len(thread_replies(slack_emulator, slack_ticket.parent_ts)) == 3


@pytest.mark.django_db
def test_oversize_or_too_many_files_are_refused_with_a_clear_message(
    agent_client, slack_ticket, locmem_channel, settings, django_capture_on_commit_callbacks
):
    settings.ATTACHMENT_MAX_BYTES = 1000
    response = send_reply(
        agent_client, slack_ticket, "see", upload("huge.bin", b"x" * 2048), capture=django_capture_on_commit_callbacks
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "huge.bin is too large (2.0 KB); files may be at most 1000 bytes." in page
    assert "attach them again before sending" in page
    assert not Message.objects.filter(direction="outbound").exists()
    assert not Attachment.objects.filter(message__direction="outbound").exists()

    receive(locmem_channel, [message("lm1")])
    locmem_ticket = Ticket.objects.get(channel=locmem_channel)
    response = send_reply(
        agent_client,
        locmem_ticket,
        "see",
        *[upload(f"{n}.txt") for n in range(4)],
        capture=django_capture_on_commit_callbacks,
    )
    assert "4 files attached; a reply takes at most 3." in response.content.decode()


@pytest.mark.django_db
def test_files_sent_with_a_note_are_not_kept_and_the_agent_is_told(agent_client, slack_ticket):
    response = agent_client.post(
        reverse("console:ticket-note", args=[slack_ticket.pk]), {"body": "checked", "files": [upload()]}, follow=True
    )
    assert "Internal notes carry no files" in response.content.decode()
    assert Message.objects.get(direction="note").body == "checked"
    assert not Attachment.objects.exists()


@pytest.mark.django_db
def test_x_replies_carry_text_only(agent_client, x_emulator, django_capture_on_commit_callbacks):
    channel = make_x_channel(x_emulator)
    from dataclasses import replace

    mention = replace(message("tweet:1"), public=True, meta={"summoned": True})
    receive(channel, [mention])
    ticket = Ticket.objects.get()
    html = agent_client.get(detail_url(ticket)).content.decode()
    assert 'type="file"' not in html
    assert "No attachments: replies on this channel carry text only." in html
    response = send_reply(agent_client, ticket, "hello", upload(), capture=django_capture_on_commit_callbacks)
    assert response.status_code == 422  # refused in place: the page again, with the draft
    assert "cannot carry attachments on this channel" in response.content.decode()
    assert not Message.objects.filter(direction="outbound").exists()


# The whole way, with a real worker ------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_file_shared_in_slack_reaches_the_ticket_through_webhook_and_worker(
    celery_worker_process, slack_channel, slack_emulator, live_server, agent_client, media
):
    celery_worker_process(MEDIA_ROOT=media)
    slack_emulator.configure(
        events_url=live_server.url + reverse("channels_ingest:webhook", args=[slack_channel.public_id])
    )
    share(slack_emulator, "screenshot of the error", ("error.png", PNG, "image/png"))

    attachment = wait_for(lambda: Attachment.objects.filter(status="stored").first(), message="the file stored")
    assert attachment.message.body == "screenshot of the error"
    response = agent_client.get(download_url(attachment))
    assert b"".join(response.streaming_content) == PNG
    html = agent_client.get(detail_url(attachment.message.ticket)).content.decode()
    assert f'src="{download_url(attachment)}"' in html
