"""Downloading inbound files after ingestion: kept, retried, or failed visibly."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from channel_adapters import locmem
from channel_adapters.base import InboundAttachment, TransientError
from channels_ingest import downloads, ingest, polling, sweep
from channels_ingest.models import Channel
from helpdesk.celery import app
from tests.factories import message_with
from tests.helpers import PNG, detail_url, download_url, receive, share, wait_for
from tests.helpers import poll_as_worker as poll
from tickets.models import Attachment, Message, Ticket

PDF = b"%PDF-1.7\n" + b"x" * 5000


@pytest.mark.django_db
def test_polled_slack_files_are_downloaded_and_shown_under_the_message(
    slack_channel, slack_emulator, agent_client, media_root
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
    assert str(media_root) in screen.file.path
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
def test_ingestion_does_not_wait_for_downloads(slack_channel, slack_emulator, django_capture_on_commit_callbacks):
    """The message lands with its files pending; the downloads are separate tasks, queued after commit."""
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


@pytest.mark.django_db
def test_a_storage_error_counts_as_an_attempt_backs_off_and_fails_visibly(
    locmem_channel, settings, no_eager_tasks, agent_client
):
    """A write that fails (a full disk) is no platform error, yet it counts: each failure is an attempt, the next
    one waits for the backoff (the sweep too), and after the last one the file shows as failed, with why."""
    settings.ATTACHMENT_FETCH_MAX_ATTEMPTS = 3
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "tests.helpers.FullDiskStorage"}}
    locmem.files["r1"] = b"data"
    with time_machine.travel(timezone.now(), tick=False) as clock:
        receive(
            locmem_channel,
            [message_with(InboundAttachment(name="a.txt", content_type="text/plain", size=4, ref="r1"))],
        )
        attachment = Attachment.objects.get()
        for attempt in (1, 2):
            outcome = downloads.download_attachment(attachment.pk)
            assert outcome.status == "retry"
            attachment.refresh_from_db()
            assert (attachment.status, attachment.attempts) == ("pending", attempt)
            assert "No space left on device" in attachment.error
            assert attachment.next_attempt_at == timezone.now() + timedelta(seconds=outcome.retry_in)
            # The sweep leaves it to its scheduled retry, and queues it again only once that retry is long overdue.
            clock.shift(timedelta(seconds=outcome.retry_in) + downloads.LOST_DOWNLOAD - timedelta(seconds=1))
            assert sweep.sweep()["downloads"] == 0
            clock.shift(timedelta(seconds=2))
            assert sweep.sweep()["downloads"] == 1

        assert downloads.download_attachment(attachment.pk).status == "failed"
        attachment.refresh_from_db()
        assert (attachment.status, attachment.attempts) == ("failed", 3)
        assert "Could not store the file: [Errno 28] No space left on device" in attachment.error
        assert "gave up after 3 attempts" in attachment.error
        clock.shift(timedelta(hours=1))
        assert sweep.sweep()["downloads"] == 0
        assert downloads.download_attachment(attachment.pk).status == "noop"
    html = agent_client.get(detail_url(attachment.message.ticket)).content.decode()
    assert "Failed" in html
    assert "No space left on device" in html


@pytest.mark.django_db
def test_a_channel_that_cannot_be_reached_at_all_uses_up_its_attempts(locmem_channel, settings):
    """Even an error before any download (no adapter for the channel's kind any more) counts, and ends."""
    settings.ATTACHMENT_FETCH_MAX_ATTEMPTS = 2
    receive(
        locmem_channel, [message_with(InboundAttachment(name="a.txt", content_type="text/plain", size=4, ref="r1"))]
    )
    Channel.objects.filter(pk=locmem_channel.pk).update(kind="retired")
    attachment = Attachment.objects.get()
    assert downloads.download_attachment(attachment.pk).status == "retry"
    assert downloads.download_attachment(attachment.pk).status == "failed"
    attachment.refresh_from_db()
    assert "No adapter is configured for channel kind 'retired'" in attachment.error
    assert "gave up after 2 attempts" in attachment.error


@pytest.mark.django_db
def test_a_download_the_worker_lost_mid_attempt_waits_for_the_backoff(locmem_channel, no_eager_tasks):
    """An attempt is scheduled when it starts: if its worker dies (or the database goes away) before it records
    the outcome, the sweep waits out the backoff before trying again, so an outage cannot burn attempts fast."""
    locmem.files["r1"] = b"data"
    with time_machine.travel(timezone.now(), tick=False) as clock:
        receive(
            locmem_channel,
            [message_with(InboundAttachment(name="a.txt", content_type="text/plain", size=4, ref="r1"))],
        )
        attachment = Attachment.objects.get()
        clock.shift(timedelta(minutes=10))  # the first task was lost
        assert sweep.sweep()["downloads"] == 1
        clock.shift(timedelta(seconds=5))
        assert sweep.sweep()["downloads"] == 0  # queued once, not again on every pass while it waits for a worker
        assert downloads.claim_download(attachment.pk) is not None  # the attempt starts, then its worker dies
        attachment.refresh_from_db()
        assert attachment.attempts == 1
        assert attachment.next_attempt_at == timezone.now()
        clock.shift(downloads.LOST_DOWNLOAD)
        assert sweep.sweep()["downloads"] == 0
        clock.shift(timedelta(seconds=2))
        assert sweep.sweep()["downloads"] == 1


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


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_file_shared_in_slack_reaches_the_ticket_through_webhook_and_worker(
    celery_worker_process, slack_channel, slack_emulator, live_server, agent_client, media_root
):
    celery_worker_process(MEDIA_ROOT=media_root)
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


@pytest.mark.django_db
def test_credentials_refused_for_a_download_do_not_count_as_a_poll(
    slack_channel, slack_emulator, django_capture_on_commit_callbacks
):
    """The bot token refused for a file marks the channel unhealthy; its last poll time stays the poll's own."""
    slack_emulator.fault("files-pri", status=401)
    share(slack_emulator, "see attached", ("log.txt", b"x", "text/plain"))
    with django_capture_on_commit_callbacks() as after_commit:
        polling.poll_channel(slack_channel.pk)
    slack_channel.refresh_from_db()
    polled_at = slack_channel.last_poll_at
    with django_capture_on_commit_callbacks(execute=True):
        for callback in after_commit:  # ingestion, which queues the download
            callback()
    slack_channel.refresh_from_db()
    assert Attachment.objects.get().status == "failed"
    assert not slack_channel.healthy
    assert "Credentials rejected" in slack_channel.last_error
    assert slack_channel.last_poll_at == polled_at
