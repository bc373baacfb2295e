"""X media: photos, videos and GIFs on mentions and DMs become attachments on the ticket, through
the real tweepy client against the emulator (downloaded by the fetch task, shown to agents)."""

from decimal import Decimal

import pytest
from django.urls import reverse

from channel_adapters.base import PermanentError
from channel_adapters.x import XAdapter
from channels_ingest import downloads, ingest, polling
from channels_ingest.models import ApiUsage, Channel, PriceRule
from tests.conftest import make_x_channel, wait_for
from tests.conftest import poll_as_worker as poll
from tickets.models import Attachment, Ticket

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0" + b"still" * 50
OAUTH1 = {"consumer_key": "ck", "consumer_secret": "cs", "access_token": "at", "access_token_secret": "ats"}


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def photo(content=PNG, **extra):
    return {"type": "photo", "content": content, "content_type": "image/png", **extra}


def video(*variants, kind="video", preview=JPEG):
    return {
        "type": kind,
        "preview": preview,
        "variants": [
            {"content": content, "content_type": content_type, "bit_rate": bit_rate}
            for content, content_type, bit_rate in variants
        ],
    }


def oauth1_channel(x_emulator):
    config, secrets = XAdapter.split_config({**OAUTH1, "base_url": x_emulator.url})
    return Channel.objects.create(kind="x", name="x-oauth1", config=config, secrets=secrets)


def detail_html(agent_client, ticket):
    return agent_client.get(reverse("console:ticket-detail", args=[ticket.pk])).content.decode()


def download_url(attachment):
    return reverse("console:attachment", args=[attachment.pk])


# Mentions -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_mention_with_a_photo_shows_it_on_the_ticket_with_its_alt_text(x_channel, x_emulator, agent_client):
    alt = 'Dialog: "VPN error 809" <b>bold</b>'
    posted = x_emulator.post(x_emulator.people["maya"], "@ithelp this again", media=[photo(alt_text=alt)])
    poll(x_channel)

    attachment = Attachment.objects.get()
    [key] = posted["media_keys"]
    assert (attachment.status, attachment.name, attachment.content_type) == ("stored", f"photo-{key}.png", "image/png")
    assert attachment.file.read() == PNG
    assert attachment.size == len(PNG)
    assert attachment.alt_text == alt
    assert attachment.message.ticket == Ticket.objects.get()
    assert attachment.message.body == "@ithelp this again"

    html = detail_html(agent_client, attachment.message.ticket)
    escaped = "Dialog: &quot;VPN error 809&quot; &lt;b&gt;bold&lt;/b&gt;"
    assert f'<img src="{download_url(attachment)}" alt="{escaped}" class="attachment-thumb"' in html
    assert f'<span class="muted">Alt text:</span> {escaped}</span>' in html
    assert "<b>bold" not in html
    response = agent_client.get(download_url(attachment))
    assert b"".join(response.streaming_content) == PNG
    assert response["Content-Type"] == "image/png"


@pytest.mark.django_db
def test_a_photo_without_alt_text_is_described_by_its_name(x_channel, x_emulator, agent_client):
    x_emulator.post(x_emulator.people["maya"], "@ithelp", media=[photo()])
    poll(x_channel)
    attachment = Attachment.objects.get()
    html = detail_html(agent_client, attachment.message.ticket)
    assert f'alt="{attachment.name}"' in html
    assert "Alt text:" not in html


@pytest.mark.django_db
def test_a_video_is_kept_as_its_highest_bitrate_mp4(x_channel, x_emulator):
    posted = x_emulator.post(
        x_emulator.people["maya"],
        "@ithelp screen recording",
        media=[
            video(
                (b"#EXTM3U", "application/x-mpegURL", None),  # HLS: no bit_rate, never chosen
                (b"mp4 at 832k", "video/mp4", 832000),
                (b"mp4 at 2176k", "video/mp4", 2176000),
                (b"mp4 at 256k", "video/mp4", 256000),
            )
        ],
    )
    poll(x_channel)
    attachment = Attachment.objects.get()
    assert (attachment.status, attachment.name) == ("stored", f"video-{posted['media_keys'][0]}.mp4")
    assert attachment.content_type == "video/mp4"
    assert attachment.file.read() == b"mp4 at 2176k"


@pytest.mark.django_db
def test_a_gif_is_kept_as_its_mp4_and_a_video_without_mp4_as_its_preview(x_channel, x_emulator):
    gif, hls_only = x_emulator.post(
        x_emulator.people["maya"],
        "@ithelp",
        media=[
            video((b"gif as mp4", "video/mp4", 0), kind="animated_gif"),
            video((b"#EXTM3U", "application/x-mpegURL", None)),
        ],
    )["media_keys"]
    poll(x_channel)
    kept = {a.name: (a.status, a.content_type, a.file.read()) for a in Attachment.objects.all()}
    assert kept == {
        f"gif-{gif}.mp4": ("stored", "video/mp4", b"gif as mp4"),
        f"video-{hls_only}-preview.jpg": ("stored", "image/jpeg", JPEG),  # the name says it is the still
    }


@pytest.mark.django_db
def test_media_missing_from_includes_fails_visibly_and_the_rest_still_arrives(x_channel, x_emulator, agent_client):
    """X sometimes lists a media key that it leaves out of includes: the post still becomes a ticket,
    the other media still arrive, and the missing one is shown as failed, not silently dropped."""
    gone, kept = x_emulator.post(
        x_emulator.people["maya"], "@ithelp two screenshots", media=[photo(b"first"), photo(b"second")]
    )["media_keys"]
    x_emulator.delete_media(gone)
    poll(x_channel)

    ticket = Ticket.objects.get()
    missing, stored = Attachment.objects.order_by("id")
    assert (stored.status, stored.name, stored.file.read()) == ("stored", f"photo-{kept}.png", b"second")
    assert (missing.status, missing.name) == ("failed", f"media-{gone}")
    assert "X did not return this media item" in missing.error
    assert missing.attempts == 1
    html = detail_html(agent_client, ticket)
    assert f"media-{gone}" in html
    assert "X did not return this media item" in html
    assert x_emulator.stats()["calls"]["GET media"] == 1  # nothing was fetched for the missing one


@pytest.mark.django_db
def test_a_media_download_answering_404_fails_visibly(x_channel, x_emulator, agent_client):
    """Deleted between the poll and the download: X's 404 is final, and says so under the message."""
    from helpdesk.celery import app

    app.conf.task_always_eager = False  # store first, download later (as the worker would)
    [key] = x_emulator.post(x_emulator.people["maya"], "@ithelp", media=[photo()])["media_keys"]
    polling.poll_channel(x_channel.pk)
    ingest.ingest_channel(x_channel.pk)
    attachment = Attachment.objects.get()
    x_emulator.delete_media(key)

    assert downloads.download_attachment(attachment.pk).status == "failed"
    attachment.refresh_from_db()
    assert attachment.status == "failed"
    assert "HTTP 404" in attachment.error
    assert attachment.attempts == 1
    html = detail_html(agent_client, attachment.message.ticket)
    assert "HTTP 404" in html
    assert f'href="{download_url(attachment)}"' not in html
    x_channel.refresh_from_db()
    assert x_channel.healthy  # a missing file is not the credentials' fault


@pytest.mark.django_db
def test_a_rate_limited_media_download_is_retried_after_x_reset(x_channel, x_emulator):
    from helpdesk.celery import app

    app.conf.task_always_eager = False
    x_emulator.post(x_emulator.people["maya"], "@ithelp", media=[photo()])
    polling.poll_channel(x_channel.pk)
    ingest.ingest_channel(x_channel.pk)
    attachment = Attachment.objects.get()
    x_emulator.set_rate_limit("media", limit=0, window_seconds=120)

    outcome = downloads.download_attachment(attachment.pk)
    assert outcome.status == "retry"
    assert 100 < outcome.retry_in <= 150
    attachment.refresh_from_db()
    assert attachment.status == "pending"
    assert "X rate limit on a media download" in attachment.error

    x_emulator.set_rate_limit("media", limit=10, window_seconds=120)
    assert downloads.download_attachment(attachment.pk).status == "stored"
    attachment.refresh_from_db()
    assert attachment.file.read() == PNG
    assert attachment.attempts == 2


@pytest.mark.django_db
def test_a_server_error_on_a_media_download_is_retried(x_channel, x_emulator):
    x_emulator.fault("media", status=503)
    x_emulator.post(x_emulator.people["maya"], "@ithelp", media=[photo()])
    poll(x_channel)
    attachment = Attachment.objects.get()
    assert (attachment.status, attachment.attempts) == ("stored", 2)


# DMs ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_dm_media_are_downloaded_with_the_oauth1_keys(x_emulator, agent_client):
    channel = oauth1_channel(x_emulator)
    sent = x_emulator.dm_from(x_emulator.people["leo"], "", media=[photo(alt_text="blue screen")])
    poll(channel)

    attachment = Attachment.objects.get()
    assert (attachment.status, attachment.name) == ("stored", f"photo-{sent['media_keys'][0]}.png")
    assert attachment.file.read() == PNG
    assert attachment.alt_text == "blue screen"
    ticket = Ticket.objects.get()
    assert ticket.subject == attachment.name  # a DM of a photo alone is named by it
    assert 'alt="blue screen"' in detail_html(agent_client, ticket)


@pytest.mark.django_db
def test_dm_media_with_an_oauth2_token_fail_with_a_clear_reason(x_channel, x_emulator, agent_client):
    """X serves DM media only to OAuth 1.0a-signed requests: with a bearer token the DM still arrives,
    and its photo says why it could not be kept (nothing is fetched in vain)."""
    x_emulator.dm_from(x_emulator.people["leo"], "my screen", media=[photo()])
    poll(x_channel)
    attachment = Attachment.objects.get()
    assert attachment.status == "failed"
    assert attachment.attempts == 1
    assert "X DM media cannot be downloaded with this credential" in attachment.error
    assert "GET media" not in x_emulator.stats()["calls"]
    html = detail_html(agent_client, attachment.message.ticket)
    assert "my screen" in html
    assert "X DM media cannot be downloaded with this credential" in html
    x_channel.refresh_from_db()
    assert x_channel.healthy


# Safety and cost ------------------------------------------------------------------


@pytest.mark.django_db
def test_media_are_fetched_only_from_x_hosts(x_channel):
    adapter = x_channel.adapter()
    for ref in (
        "https://attacker.example/media/1.jpg",
        "dm:http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
    ):
        with pytest.raises(PermanentError, match="Not an X media address"):
            b"".join(adapter.fetch_attachment(ref))


@pytest.mark.django_db
def test_expanded_media_are_metered_and_the_reads_cost_what_they_did(x_channel, x_emulator, agent):
    """The media expansion adds one metered unit per media item (priced 0 until an admin sets X's price);
    the billed reads of posts and DM events are counted as before."""
    maya = x_emulator.people["maya"]
    x_emulator.post(maya, "@ithelp two", media=[photo(), photo()])
    x_emulator.post(maya, "@ithelp none")
    x_emulator.dm_from(maya, "dm", media=[photo()])
    poll(x_channel)

    usage = {u.operation: (u.units, u.cost) for u in ApiUsage.objects.filter(channel=x_channel)}
    assert usage["post_read_owned"] == (2, Decimal("0.002000"))
    assert usage["dm_event_read"] == (1, Decimal("0.010000"))
    assert usage["expanded_media_read"] == (3, Decimal("0"))
    assert usage["expanded_user_read"][0] == 2  # the author, once per answer
    assert set(usage) == {"post_read_owned", "dm_event_read", "expanded_user_read", "expanded_media_read"}
    assert PriceRule.objects.get(kind="x", operation="expanded_media_read").unit_price == 0

    PriceRule.objects.filter(kind="x", operation="expanded_media_read").update(unit_price=Decimal("0.005"))
    x_emulator.post(maya, "@ithelp three", media=[photo()])
    poll(x_channel)
    media_row = ApiUsage.objects.get(channel=x_channel, operation="expanded_media_read")
    assert (media_row.units, media_row.cost) == (4, Decimal("0.005000"))


# The whole way, with a real worker -------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_mention_with_a_photo_reaches_the_ticket_through_the_worker(
    celery_worker_process, x_emulator, agent_client, media_root
):
    celery_worker_process(MEDIA_ROOT=media_root)
    channel = make_x_channel(x_emulator)
    x_emulator.post(x_emulator.people["maya"], "@ithelp printer display", media=[photo(alt_text="PC LOAD LETTER")])
    polling.poll_channel(channel.pk)  # ingest and the download are queued to the worker on commit

    attachment = wait_for(lambda: Attachment.objects.filter(status="stored").first(), message="the photo stored")
    assert attachment.alt_text == "PC LOAD LETTER"
    assert attachment.message.body == "@ithelp printer display"
    assert b"".join(agent_client.get(download_url(attachment)).streaming_content) == PNG
    assert 'alt="PC LOAD LETTER"' in detail_html(agent_client, attachment.message.ticket)
    assert x_emulator.stats()["calls"]["GET media"] == 1
