"""The X adapter through the pipeline: mentions, DMs and their media polled from the emulator into tickets,
replies out as public posts or DMs."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from channel_adapters.base import ConfigError, OutcomeUnknown, PermanentError, ReplyTarget, TransientError
from channel_adapters.x import BILLED_MEMORY, BilledToday, XAdapter
from channels_ingest import delivery, downloads, ingest, polling
from channels_ingest.models import Channel, InboundMessage
from helpdesk.celery import app
from tests.helpers import (
    PNG,
    canned_x_channel,
    download_url,
    make_x_channel,
    reply_and_deliver,
    wait_for,
    x_photo,
)
from tests.helpers import poll_as_worker as poll
from tickets.models import Attachment, Message, Ticket
from tickets.replies import ReplyError, reply_modes, reply_to_ticket
from tickets.routing import route_new_tickets


def detail_html(agent_client, ticket):
    return agent_client.get(reverse("console:ticket-detail", args=[ticket.pk])).content.decode()


JPEG = b"\xff\xd8\xff\xe0" + b"still" * 50


def video(*variants, kind="video", preview=JPEG):
    return {
        "type": kind,
        "preview": preview,
        "variants": [
            {"content": content, "content_type": content_type, "bit_rate": bit_rate}
            for content, content_type, bit_rate in variants
        ],
    }


OAUTH1 = {"consumer_key": "ck", "consumer_secret": "cs", "access_token": "at", "access_token_secret": "ats"}


def oauth1_channel(x_emulator):
    config, secrets = XAdapter.split_config({**OAUTH1, "base_url": x_emulator.url})
    return Channel.objects.create(kind="x", name="x-oauth1", config=config, secrets=secrets)


@pytest.mark.django_db
def test_direct_mention_opens_a_ticket_with_the_x_identity(x_channel, x_emulator):
    """An @mention becomes a ticket; the requester's X id, @handle and name are kept for linking later."""
    maya = x_emulator.people["maya"]
    x_emulator.post(maya, "@ithelp my laptop fan sounds like a jet 🛫")
    poll(x_channel)
    ticket = Ticket.objects.get()
    assert ticket.subject == "@ithelp my laptop fan sounds like a jet 🛫"
    identity = ticket.requester.identities.get()
    assert (identity.namespace, identity.external_id, identity.handle, identity.display_name) == (
        "x",
        maya,
        "@maya_dev",
        "Maya Patel",
    )
    assert ticket.requester.display_name == "Maya Patel"


@pytest.mark.django_db
def test_reply_in_the_same_conversation_joins_the_ticket(x_channel, x_emulator):
    """A later post in the conversation (conversation_id) lands on the same ticket."""
    root = x_emulator.post(x_emulator.people["maya"], "@ithelp VPN down")["id"]
    poll(x_channel)
    x_emulator.post(x_emulator.people["maya"], "@ithelp still down", in_reply_to_tweet_id=root)
    poll(x_channel)
    ticket = Ticket.objects.get()
    assert [m.body for m in ticket.messages.timeline()] == ["@ithelp VPN down", "@ithelp still down"]


@pytest.mark.django_db
def test_own_posts_are_skipped(x_channel, x_emulator, agent):
    """The account's own public replies never come back as inbound messages."""
    x_emulator.post(x_emulator.people["maya"], "@ithelp printer?")
    poll(x_channel)
    reply_and_deliver(Ticket.objects.get(), agent, "Looking now", mode="public")
    poll(x_channel)
    assert Message.objects.filter(direction=Message.Direction.INBOUND).count() == 1


@pytest.mark.django_db
def test_mentions_are_paged_and_since_id_only_moves_after_all_pages(x_channel, x_emulator):
    """250 mentions arrive over three pages; a re-poll (or one after a lost cursor) stores nothing twice."""
    maya = x_emulator.people["maya"]
    ids = x_emulator.post_many([{"author_id": maya, "text": f"@ithelp issue {i}"} for i in range(250)])
    assert poll(x_channel).stored == 250
    assert x_channel.cursor["mentions"]["since_id"] == max(ids, key=int)
    assert x_emulator.stats()["calls"]["GET /2/users/:id/mentions"] == 3
    assert poll(x_channel).stored == 0
    Channel.objects.filter(pk=x_channel.pk).update(cursor={})
    assert poll(x_channel).stored == 0
    assert Ticket.objects.count() == 250


@pytest.mark.django_db
def test_a_backlog_read_under_rate_limits_loses_nothing_before_x_stops_serving_it(x_channel, x_emulator):
    """X serves only the newest 800 mentions. While every poll is cut short after two pages (a 429) and new
    mentions keep coming, each poll first reads below what the last one reached, so the backlog is stored before
    it falls out of reach; re-reading from the newest each time would lose its oldest 150."""
    maya = x_emulator.people["maya"]

    def mention(n):
        return [{"author_id": maya, "text": f"@ithelp issue {i}"} for i in range(n)]

    posted = x_emulator.post_many(mention(500))
    for arrivals in (150, 150, 150):
        x_emulator.set_rate_limit("mentions", limit=2, window_seconds=600)
        assert "rate limit" in poll(x_channel).error.lower()
        posted += x_emulator.post_many(mention(arrivals))
    x_emulator.set_rate_limit("mentions", limit=300, window_seconds=900)
    assert poll(x_channel).error == ""
    assert poll(x_channel).stored == 0

    assert set(InboundMessage.objects.values_list("external_id", flat=True)) == {f"tweet:{i}" for i in posted}
    assert "gap" not in x_channel.cursor["mentions"]
    assert x_channel.cursor["mentions"]["since_id"] == max(posted, key=int)


@pytest.mark.django_db
def test_pages_that_repeat_ids_do_not_duplicate(x_channel, x_emulator):
    """When X repeats a page's ids on the next page, each post is still stored once."""
    maya = x_emulator.people["maya"]
    x_emulator.post_many([{"author_id": maya, "text": f"@ithelp n{i}"} for i in range(150)])
    x_emulator.fault("mentions", repeat_ids_once=True)
    poll(x_channel)
    assert InboundMessage.objects.count() == 150
    assert Message.objects.count() == 150


@pytest.mark.django_db
def test_long_posts_keep_their_full_text(x_channel, x_emulator):
    """A post over 280 characters arrives with note_tweet; the ticket keeps the whole text."""
    text = "@ithelp " + "the build server is slow again " * 20
    x_emulator.post(x_emulator.people["maya"], text)
    poll(x_channel)
    assert Message.objects.get().body == text.strip() or Message.objects.get().body == text


@pytest.mark.django_db
def test_suspended_author_missing_from_includes_still_becomes_a_ticket(x_channel, x_emulator):
    """An author absent from includes (suspended) keeps their X id as the name; nothing is lost."""
    leo = x_emulator.people["leo"]
    x_emulator.post(leo, "@ithelp my badge stopped working")
    x_emulator.add_user(user_id=leo, suspended=True)
    poll(x_channel)
    ticket = Ticket.objects.get()
    assert ticket.requester.identities.get().external_id == leo


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text", ["@ithelp שלום המדפסת 🖨️", "@ithelp zero\u200bwidth\u200d", "@ithelp <script>x</script>"]
)
def test_odd_text_is_kept_exactly(x_channel, x_emulator, text):
    x_emulator.post(x_emulator.people["maya"], text)
    poll(x_channel)
    assert Message.objects.get().body == text


@pytest.mark.django_db
def test_malformed_polled_posts_and_dms_are_stored_failed_and_the_poll_goes_on(canned_platform):
    """Issue 9 defect 6 on X: odd ids, odd or absurd created_at, odd types are failed rows keeping what X sent;
    the good post and DM beside them arrive, and the next poll stores nothing twice."""
    channel = canned_x_channel(canned_platform)
    created = (timezone.now() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    good_post = {
        "id": "1900000000000000001",
        "text": "@ithelp vpn down",
        "author_id": "2",
        "conversation_id": "1900000000000000001",
        "created_at": created,
    }
    odd_posts = [
        {**good_post, "id": "1900000000000000002", "created_at": "5138-11-16T09:46:40.000Z"},
        {**good_post, "id": "1900000000000000003", "created_at": 1665183228},
        {**good_post, "id": "not-a-number"},
        {**good_post, "id": ["1900000000000000004"]},
        {**good_post, "id": "1900000000000000005", "text": ["not", "text"]},
        {**good_post, "id": "1900000000000000006", "note_tweet": "long"},
        "not a post",
    ]
    good_dm = {
        "id": "1900000000000000010",
        "event_type": "MessageCreate",
        "text": "hi",
        "sender_id": "2",
        "dm_conversation_id": "1-2",
        "created_at": created,
    }
    odd_dms = [
        {**good_dm, "id": "1900000000000000011", "created_at": "garbage"},
        {**good_dm, "id": "1900000000000000012", "dm_conversation_id": {"id": 1}},
        {**good_dm, "id": "99999999999999999999"},
    ]
    users = ["not a user", {"id": "2", "username": "maya_dev", "name": "Maya"}]
    canned_platform.answer("/2/users/1/mentions", {"data": [*odd_posts, good_post], "includes": {"users": users}})
    canned_platform.answer("/2/dm_events", {"data": [good_dm, *odd_dms], "includes": {"users": "odd"}, "meta": "odd"})

    outcome = poll(channel)
    assert not outcome.error
    assert InboundMessage.objects.filter(status=InboundMessage.Status.PROCESSED).count() == 2
    failed = InboundMessage.objects.filter(status=InboundMessage.Status.FAILED)
    assert sorted(json.dumps(row.payload["raw"], sort_keys=True) for row in failed) == sorted(
        json.dumps(item, sort_keys=True) for item in [*odd_posts, *odd_dms]
    )
    assert poll(channel).stored == 0
    assert failed.count() == len(odd_posts) + len(odd_dms)


@pytest.mark.django_db
def test_a_page_nested_too_deeply_to_read_fails_the_poll_visibly_not_the_worker(canned_platform):
    channel = canned_x_channel(canned_platform)
    canned_platform.answer("/2/dm_events", {"data": []})
    canned_platform.answer("/2/users/1/mentions", b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")

    outcome = poll(channel)
    assert "nested too deeply" in outcome.error
    assert channel.healthy


@pytest.mark.django_db
def test_dms_become_one_ticket_per_open_conversation(x_channel, x_emulator):
    """DMs of one conversation share a ticket while it is open; after it is resolved, a new DM opens a new one."""
    maya = x_emulator.people["maya"]
    x_emulator.dm_from(maya, "hi, can you reset my MFA?")
    x_emulator.dm_from(maya, "my phone was stolen")
    poll(x_channel)
    first = Ticket.objects.get()
    assert first.message_count == 2

    Ticket.objects.update(status=Ticket.Status.RESOLVED)
    Channel.objects.filter(pk=x_channel.pk).update(
        cursor={**x_channel.cursor, "dms": {**x_channel.cursor["dms"], "next_at": 0}}
    )
    x_emulator.dm_from(maya, "new problem: no Teams access")
    poll(x_channel)
    assert Ticket.objects.count() == 2
    assert Ticket.objects.exclude(pk=first.pk).get().subject == "new problem: no Teams access"
    assert InboundMessage.objects.count() == 3


@pytest.mark.django_db
def test_dm_polling_stops_at_the_first_event_already_seen(x_channel, x_emulator):
    """Without since_id, DM polling pages newest-first and stops at the newest event of the last poll."""
    maya = x_emulator.people["maya"]
    for i in range(3):
        x_emulator.dm_from(maya, f"dm {i}")
    poll(x_channel)
    Channel.objects.filter(pk=x_channel.pk).update(
        cursor={**x_channel.cursor, "dms": {**x_channel.cursor["dms"], "next_at": 0}}
    )
    x_emulator.dm_from(maya, "dm 3")
    x_channel.refresh_from_db()
    assert poll(x_channel).stored == 1


@pytest.mark.django_db
def test_dm_polls_read_a_small_page_when_idle_and_grow_only_while_new_events_keep_coming(x_channel, x_emulator):
    """X has no since_id for DMs and bills each event returned: an idle poll asks for a small page; a burst
    doubles the page while every event on it is new, and the next poll starts from a page the burst fits."""
    maya = x_emulator.people["maya"]

    def dm_poll(new=0):
        for n in range(new):
            x_emulator.dm_from(maya, f"dm {n}")
        before = x_emulator.billing()["returned"].get("dm_event", 0)
        calls = x_emulator.stats()["calls"].get("GET /2/dm_events", 0)
        Channel.objects.filter(pk=x_channel.pk).update(
            cursor={**x_channel.cursor, "dms": {**x_channel.cursor.get("dms", {}), "next_at": 0}}
        )
        stored = poll(x_channel).stored
        returned = x_emulator.billing()["returned"].get("dm_event", 0) - before
        return stored, returned, x_emulator.stats()["calls"]["GET /2/dm_events"] - calls

    assert dm_poll(new=20) == (20, 20, 1)  # the first poll backfills with full pages
    assert dm_poll() == (0, 5, 1)
    assert dm_poll() == (0, 5, 1)
    assert dm_poll(new=3) == (3, 5, 1)
    assert dm_poll(new=30) == (30, 5 + 10 + 20, 3)
    assert dm_poll(new=30) == (30, 40, 1)  # the last burst's size
    assert dm_poll() == (0, 40, 1)
    assert dm_poll() == (0, 5, 1)


def test_the_billing_memory_is_kept_small_and_forgotten_at_utc_midnight():
    """It keeps the most recent ids of each kind for the UTC day; a forgotten id is metered again (more, never
    less, than X bills), and a new day starts empty, as X's dedup window does."""
    cursor = {}
    with time_machine.travel(datetime(2026, 3, 1, 23, 0, tzinfo=UTC), tick=False):
        billed = BilledToday(cursor)
        assert billed.first_reads("post", range(BILLED_MEMORY + 100)) == BILLED_MEMORY + 100
        assert billed.first_reads("post", [BILLED_MEMORY + 99, "1099", 5]) == 1  # only 5 was forgotten
        assert billed.first_reads("user", ["1", "1", None]) == 2  # one id once; a resource without an id always
        assert len(cursor["billed"]["post"]) == BILLED_MEMORY
        assert BilledToday(cursor).first_reads("user", ["1"]) == 0  # the memory rides in the cursor
    with time_machine.travel(datetime(2026, 3, 2, 0, 0, 1, tzinfo=UTC), tick=False):
        assert BilledToday(cursor).first_reads("user", ["1"]) == 1
    assert set(cursor["billed"]) == {"day", "user"}


@pytest.mark.django_db
def test_dm_rate_limit_never_stalls_mentions(x_channel, x_emulator):
    """A 429 on dm_events defers DM polling to X's reset time; mentions are still polled and stored."""
    x_emulator.set_rate_limit("dm_events", limit=0)
    x_emulator.dm_from(x_emulator.people["maya"], "dm")
    x_emulator.post(x_emulator.people["leo"], "@ithelp mention")
    outcome = poll(x_channel)
    assert outcome.stored == 1
    assert not outcome.error
    assert Ticket.objects.get().subject == "@ithelp mention"
    assert x_channel.cursor["dms"]["next_at"] > timezone.now().timestamp() + 60


@pytest.mark.django_db
def test_mentions_rate_limit_reschedules_at_x_reset_time(x_channel, x_emulator):
    """A 429 on mentions: the next poll waits until x-rate-limit-reset, without marking the channel unhealthy."""
    poll(x_channel)
    x_emulator.set_rate_limit("mentions", limit=0, window_seconds=600)
    outcome = poll(x_channel)
    assert "rate limit" in outcome.error.lower()
    assert x_channel.healthy
    assert x_channel.next_poll_at > timezone.now() + timedelta(seconds=500)


@pytest.mark.django_db
def test_revoked_token_marks_the_channel_unhealthy(x_channel, x_emulator):
    x_emulator.set_tokens(revoked=True)
    poll(x_channel)
    assert not x_channel.healthy
    assert "401" in x_channel.last_error


@pytest.mark.django_db
def test_oauth1_credentials_work(x_emulator, db):
    """The four OAuth 1.0a keys work as well as an OAuth 2.0 user token."""
    config, secrets = XAdapter.split_config(
        {
            "consumer_key": "ck",
            "consumer_secret": "cs",
            "access_token": "at",
            "access_token_secret": "ats",
            "base_url": x_emulator.url,
        }
    )
    channel = Channel.objects.create(kind="x", name="oauth1", config=config, secrets=secrets)
    x_emulator.post(x_emulator.people["maya"], "@ithelp oauth1?")
    assert poll(channel).stored == 1


@pytest.mark.django_db
def test_public_reply_to_a_summoning_mention(x_channel, x_emulator, agent):
    """An agent's reply to an @mention goes out as a public reply to that post."""
    mention = x_emulator.post(x_emulator.people["maya"], "@ithelp printer jam")["id"]
    poll(x_channel)
    ticket = Ticket.objects.get()
    assert [m.key for m in reply_modes(ticket) if m.allowed] == ["public", "dm"]
    sent = reply_and_deliver(ticket, agent, "On our way 🏃", mode="public")
    assert sent.delivery_status == Message.DeliveryStatus.SENT
    [post] = x_emulator.account_posts()
    assert post["in_reply_to_tweet_id"] == mention
    assert post["text"] == "On our way 🏃"


@pytest.mark.django_db
def test_public_reply_not_allowed_when_not_summoned_offers_dm(x_emulator, agent, db):
    """X's 2026 rule: no API reply to a post that did not @mention us; the console says so and DM works."""
    channel = make_x_channel(x_emulator, triage={"auto_ticket": "all"})
    ours = x_emulator.post(x_emulator.store.account_id, "Planned outage at 22:00")["id"]
    x_emulator.post(x_emulator.people["leo"], "is SAP affected?", in_reply_to_tweet_id=ours)
    poll(channel)
    ticket = Ticket.objects.get()
    public, dm = reply_modes(ticket)
    assert (public.key, public.allowed) == ("public", False)
    assert "@mention" in public.reason
    assert dm.allowed
    with pytest.raises(ReplyError, match="not possible"):
        reply_and_deliver(ticket, agent, "Yes", mode="public")

    sent = reply_and_deliver(ticket, agent, "Yes, SAP too, sorry")
    assert sent.reply_mode == "dm"
    assert sent.delivery_status == Message.DeliveryStatus.SENT
    [dm_sent] = x_emulator.account_dms()
    assert dm_sent["text"] == "Yes, SAP too, sorry"

    Channel.objects.filter(pk=channel.pk).update(
        cursor={
            **channel.cursor,
            "dms": {"next_at": 0, **{k: v for k, v in channel.cursor["dms"].items() if k != "next_at"}},
        }
    )
    channel.refresh_from_db()
    x_emulator.dm_from(x_emulator.people["leo"], "thanks, when is it back?")
    poll(channel)
    assert Ticket.objects.count() == 1, "the DM answer joins the ticket the DM was sent from"
    assert Ticket.objects.get().message_count == 3


@pytest.mark.django_db
def test_dm_ticket_replies_by_dm(x_channel, x_emulator, agent):
    x_emulator.dm_from(x_emulator.people["maya"], "locked out")
    poll(x_channel)
    ticket = Ticket.objects.get()
    assert [m.key for m in reply_modes(ticket)] == ["dm"]
    assert reply_and_deliver(ticket, agent, "Reset link sent").delivery_status == Message.DeliveryStatus.SENT
    assert x_emulator.account_dms()[0]["text"] == "Reset link sent"


@pytest.mark.django_db
def test_public_acknowledgement_then_dm(x_emulator, agent, db):
    """With public_ack, a new mention is answered publicly with its ticket number; agents then default to DM."""
    channel = make_x_channel(x_emulator, public_ack="Thanks! Ticket #{ticket} is open, we'll continue in DM.")
    x_emulator.post(x_emulator.people["maya"], "@ithelp outlook crashes")
    poll(channel)
    ticket = Ticket.objects.get()
    [ack] = x_emulator.account_posts()
    assert ack["text"] == f"Thanks! Ticket #{ticket.pk} is open, we'll continue in DM."
    assert reply_modes(ticket)[0].key == "dm"
    assert reply_and_deliver(ticket, agent, "Which Outlook version?").reply_mode == "dm"


@pytest.mark.django_db
def test_public_reply_length_is_weighted_like_x(x_channel, x_emulator, agent):
    """280 weighted characters: a URL counts 23 and an emoji 2, checked before anything is queued."""
    x_emulator.post(x_emulator.people["maya"], "@ithelp link?")
    poll(x_channel)
    ticket = Ticket.objects.get()
    fits = "🙂" * 128 + " https://example.com/" + "x" * 200  # 256 + 1 + 23 = 280
    assert reply_and_deliver(ticket, agent, fits, mode="public").delivery_status == Message.DeliveryStatus.SENT
    with pytest.raises(ReplyError, match="281 characters"):
        reply_to_ticket(ticket=ticket, author=agent, body=fits + "!", mode="public")


@pytest.mark.django_db
def test_reply_rate_limited_is_retried_after_x_reset(x_channel, x_emulator, agent):
    x_emulator.post(x_emulator.people["maya"], "@ithelp ping")
    poll(x_channel)
    x_emulator.set_rate_limit("create_tweet", limit=0, window_seconds=120)

    app.conf.task_always_eager = False
    message = reply_to_ticket(ticket=Ticket.objects.get(), author=agent, body="pong", mode="public")
    outcome = delivery.deliver_message(message.pk)
    assert outcome.status == "retry"
    assert 100 < outcome.retry_in <= 150


@pytest.mark.django_db
def test_a_mention_with_a_photo_shows_it_on_the_ticket_with_its_alt_text(x_channel, x_emulator, agent_client):
    alt = 'Dialog: "VPN error 809" <b>bold</b>'
    posted = x_emulator.post(x_emulator.people["maya"], "@ithelp this again", media=[x_photo(alt_text=alt)])
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
    x_emulator.post(x_emulator.people["maya"], "@ithelp", media=[x_photo()])
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
        x_emulator.people["maya"], "@ithelp two screenshots", media=[x_photo(b"first"), x_photo(b"second")]
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
    app.conf.task_always_eager = False  # store first, download later (as the worker would)
    [key] = x_emulator.post(x_emulator.people["maya"], "@ithelp", media=[x_photo()])["media_keys"]
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
    app.conf.task_always_eager = False
    x_emulator.post(x_emulator.people["maya"], "@ithelp", media=[x_photo()])
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
    x_emulator.post(x_emulator.people["maya"], "@ithelp", media=[x_photo()])
    poll(x_channel)
    attachment = Attachment.objects.get()
    assert (attachment.status, attachment.attempts) == ("stored", 2)


@pytest.mark.django_db
def test_dm_media_are_downloaded_with_the_oauth1_keys(x_emulator, agent_client):
    channel = oauth1_channel(x_emulator)
    sent = x_emulator.dm_from(x_emulator.people["leo"], "", media=[x_photo(alt_text="blue screen")])
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
    x_emulator.dm_from(x_emulator.people["leo"], "my screen", media=[x_photo()])
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


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_mention_with_a_photo_reaches_the_ticket_through_the_worker(
    celery_worker_process, x_emulator, agent_client, media_root
):
    celery_worker_process(MEDIA_ROOT=media_root)
    channel = make_x_channel(x_emulator)
    x_emulator.post(x_emulator.people["maya"], "@ithelp printer display", media=[x_photo(alt_text="PC LOAD LETTER")])
    polling.poll_channel(channel.pk)  # ingest and the download are queued to the worker on commit

    attachment = wait_for(lambda: Attachment.objects.filter(status="stored").first(), message="the photo stored")
    assert attachment.alt_text == "PC LOAD LETTER"
    assert attachment.message.body == "@ithelp printer display"
    assert b"".join(agent_client.get(download_url(attachment)).streaming_content) == PNG
    assert 'alt="PC LOAD LETTER"' in detail_html(agent_client, attachment.message.ticket)
    assert x_emulator.stats()["calls"]["GET media"] == 1


@pytest.mark.django_db
def test_a_write_that_never_reached_x_is_a_plain_transient_error(x_channel):
    """Connection refused: certainly not posted, so it is retried without a lookup (a timeout would need one)."""
    adapter = x_channel.adapter()
    adapter.config["base_url"] = "http://127.0.0.1:9"  # nothing listens
    with pytest.raises(TransientError) as raised:
        adapter.send(target=ReplyTarget(thread_key="dm:1-2", mode="dm"), text="hi", key="42-1")
    assert not isinstance(raised.value, OutcomeUnknown)


@pytest.mark.parametrize("timeout", [0, "15", False])
def test_a_timeout_must_be_a_positive_number(timeout):
    with pytest.raises(ConfigError, match="timeout"):
        XAdapter.split_config({"bearer_token": "t", "timeout": timeout})


@pytest.mark.django_db
def test_the_public_acknowledgement_names_the_expected_response(x_emulator, monkeypatch):
    """The summoned mention is answered publicly, as before, now with the first response its SLA expects."""
    channel = make_x_channel(x_emulator, public_ack="Ticket #{ticket} is open. {expected_response}")
    due = datetime(2026, 12, 5, 14, 0, tzinfo=UTC)

    def route_and_set_due(texts):
        route_new_tickets(texts)
        Ticket.objects.filter(pk__in=texts).update(first_response_due_at=due)

    monkeypatch.setattr("tickets.inbound.route_new_tickets", route_and_set_due)
    x_emulator.post(x_emulator.people["maya"], "@ithelp outlook crashes")
    poll(channel)
    [ack] = x_emulator.account_posts()
    assert ack["text"] == f"Ticket #{Ticket.objects.get().pk} is open. We aim to answer by 14:00 UTC on 5 Dec."
