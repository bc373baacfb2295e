"""The Instagram adapter: DMs and comments from recorded webhook payloads (``fixtures/instagram``), reply modes
and their windows, configuration.

The recorded Instagram messaging bodies come from factories without ``"object"`` and with ISO times and placeholder
ids (``fixtures/messenger/SOURCES.md``): their ``messaging[]`` items are wrapped here into whole bodies for this
channel's account.
"""

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from channel_adapters.base import ConfigError, EnvelopeKind, InvalidWebhook, OutboundFile, PermanentError, ReplyTarget
from channel_adapters.meta.instagram import InstagramAdapter
from channels_ingest.models import InboundMessage
from tests.channel_adapters.meta_pages import (
    APP_SECRET,
    VERIFY_TOKEN,
    body_of,
    channel_of,
    deliver,
    emulator_instagram,
    envelopes_of,
    fixture,
    hours_ago,
    instagram_adapter,
)
from tests.helpers import poll_as_worker, reply_and_deliver
from tickets.models import Message, Ticket

IG_USER = "17841406338772941"
PAGE = "100200300"
PERSON = "Sender-id-1"


@pytest.fixture
def adapter():
    return instagram_adapter(IG_USER, PAGE)


def item_of(name):
    """The single ``messaging[]`` (or ``standby[]``) item of a recorded Instagram body."""
    [entry] = fixture("instagram", name)["entry"]
    return (entry.get("messaging") or entry.get("standby"))[0]


def ig_body(*items, field="messaging", account=IG_USER):
    return body_of(account, *items, field=field, obj="instagram", time=1631082844000)


def one(result):
    assert not result.rejected, result.rejected
    [envelope] = result.envelopes
    return envelope


def test_unsigned_and_forged_webhooks_are_refused(adapter):
    body = json.dumps(ig_body(item_of("webhook__text"))).encode()
    with pytest.raises(InvalidWebhook) as unsigned:
        adapter.handle_webhook(headers={}, body=body)
    with pytest.raises(InvalidWebhook) as forged:
        adapter.handle_webhook(headers={"X-Hub-Signature-256": "sha256=" + "a" * 64}, body=body)
    assert (unsigned.value.status, forged.value.status) == (401, 403)


def test_a_page_body_is_not_an_instagram_one(adapter):
    with pytest.raises(InvalidWebhook) as refused:
        deliver(adapter, body_of(IG_USER, item_of("webhook__text"), obj="page"))
    assert refused.value.status == 400


def test_a_recorded_body_without_object_is_refused(adapter):
    """The recorded factory bodies lack ``"object"``; Meta always sends it, so a body without it is not Meta's."""
    with pytest.raises(InvalidWebhook):
        deliver(adapter, fixture("instagram", "webhook__text"))


def test_subscription_handshake(adapter):
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "abc"}
    assert adapter.verify_subscription(params).body == "abc"


def test_a_text_becomes_a_dm_message(adapter):
    envelope = one(deliver(adapter, ig_body(item_of("webhook__text"))))
    assert (envelope.kind, envelope.external_id, envelope.thread_key) == (
        EnvelopeKind.MESSAGE,
        "message-id-1",
        f"dm:{PERSON}",
    )
    assert envelope.text == "This is the first message from the customer"
    assert envelope.sent_at == datetime(2021, 9, 8, 6, 34, 4, tzinfo=UTC)
    assert (envelope.sender.namespace, envelope.sender.external_id) == (f"instagram:{IG_USER}", PERSON)
    assert not envelope.reopens


def test_meta_times_in_milliseconds_and_seconds_are_both_read(adapter):
    item = item_of("webhook__text")
    item["timestamp"] = 1631082844000
    assert one(deliver(adapter, ig_body(item))).sent_at == datetime(2021, 9, 8, 6, 34, 4, tzinfo=UTC)
    test_event = fixture("instagram", "webhook__text_test_event")["entry"][0]["messaging"][0]  # "1527459824"
    assert one(deliver(adapter, ig_body(test_event))).sent_at == datetime(2018, 5, 27, 22, 23, 44, tzinfo=UTC)


def test_the_dashboards_test_event_for_account_0_is_ignored(adapter):
    body = {"object": "instagram", **fixture("instagram", "webhook__text_test_event")}
    assert deliver(adapter, body).envelopes == []


def test_entries_addressed_to_the_linked_page_are_this_channels_too(adapter):
    assert one(deliver(adapter, ig_body(item_of("webhook__text"), account=PAGE))).text


def test_a_story_reply_says_which_story(adapter):
    envelope = one(deliver(adapter, ig_body(item_of("webhook__story_reply"))))
    assert envelope.text == "This is the story reply\n[reply to your story] https://chatwoot-assets.local/sample.png"


@pytest.mark.parametrize("name", ["webhook__share_attachment", "webhook__story_mention"])
def test_shares_and_story_mentions_carry_their_image(adapter, name):
    [attachment] = one(deliver(adapter, ig_body(item_of(name)))).attachments
    assert (attachment.name, attachment.content_type, attachment.ref) == (
        "test.jpeg",
        "image/jpeg",
        "https://www.example.com/test.jpeg",
    )


def test_echoes_are_skipped(adapter):
    assert deliver(adapter, ig_body(item_of("webhook__story_mention_echo"))).envelopes == []
    own = item_of("webhook__text")
    own["sender"] = {"id": IG_USER}
    assert deliver(adapter, ig_body(own)).envelopes == []


def test_an_unsent_message_is_deleted(adapter):
    envelope = one(deliver(adapter, ig_body(item_of("webhook__unsend_is_deleted"))))
    assert (envelope.kind, envelope.external_id, envelope.target_id, envelope.thread_key) == (
        EnvelopeKind.DELETE,
        "message-id-to-delete:delete",
        "message-id-to-delete",
        f"dm:{PERSON}",
    )


def test_seen_reports_one_message_read(adapter):
    envelope = one(deliver(adapter, ig_body(item_of("webhook__messaging_seen"))))
    assert (envelope.kind, envelope.external_id, envelope.target_id, envelope.meta) == (
        EnvelopeKind.STATUS,
        "message-id-1:read",
        "message-id-1",
        {"status": "read"},
    )


def test_standby_messages_arrive(adapter):
    envelope = one(deliver(adapter, ig_body(item_of("webhook__standby"), field="standby")))
    assert envelope.text.startswith("This is the first standby message")


def test_reactions_and_edits(adapter):
    """Instagram sends the Messenger shapes for ``message_reactions`` and ``message_edits``."""
    reaction = {
        "sender": {"id": PERSON},
        "recipient": {"id": IG_USER},
        "timestamp": 1631082844000,
        "reaction": {"mid": "message-id-1", "action": "react", "reaction": "love", "emoji": "❤️"},
    }
    edit = {
        "sender": {"id": PERSON},
        "recipient": {"id": IG_USER},
        "timestamp": 1631082845000,
        "message_edit": {"mid": "message-id-1", "text": "fixed typo", "num_edit": 1},
    }
    result = deliver(adapter, ig_body(reaction, edit))
    assert [(e.kind, e.target_id) for e in result.envelopes] == [
        (EnvelopeKind.REACTION, "message-id-1"),
        (EnvelopeKind.EDIT, "message-id-1"),
    ]
    assert result.envelopes[0].meta == {"emoji": "❤️", "removed": False}
    assert result.envelopes[1].text == "fixed typo"


# Comments -----------------------------------------------------------------------------------


def comment_change(**value):
    """A ``comments`` change as Meta's webhook reference for Instagram shows it (no recording with ``from`` and
    ``media`` exists under a licence we can use)."""
    return {
        "field": "comments",
        "value": {
            "id": "17865799348089039",
            "from": {"id": "232323232", "username": "maya.dev"},
            "media": {"id": "17846368219941692", "media_product_type": "FEED"},
            "text": "My order never arrived",
            **value,
        },
    }


def comments(adapter, *changes):
    return deliver(adapter, body_of(IG_USER, *changes, field="changes", obj="instagram", time=1631082844))


def test_a_comment_is_a_public_thread_of_its_own(adapter):
    envelope = one(comments(adapter, comment_change()))
    assert (envelope.kind, envelope.external_id, envelope.thread_key) == (
        EnvelopeKind.MESSAGE,
        "comment:17865799348089039",
        "comment:17865799348089039",
    )
    assert (envelope.public, envelope.reopens, envelope.starts_thread) == (True, True, True)
    assert envelope.meta == {"comment_id": "17865799348089039", "media_id": "17846368219941692"}
    assert (envelope.sender.external_id, envelope.sender.handle) == ("232323232", "@maya.dev")
    assert envelope.sent_at == datetime(2021, 9, 8, 6, 34, 4, tzinfo=UTC)


def test_a_reply_joins_its_parents_thread(adapter):
    envelope = one(comments(adapter, comment_change(id="17900000000000001", parent_id="17865799348089039")))
    assert envelope.thread_key == "comment:17865799348089039"
    assert not envelope.starts_thread


def test_the_accounts_own_comments_are_skipped(adapter):
    by_id = comment_change(**{"from": {"id": IG_USER, "username": "someone"}})
    by_username = comment_change(**{"from": {"id": "99", "username": "ithelp"}})
    assert comments(adapter, by_id, by_username).envelopes == []


def test_the_dashboards_test_comment_without_author_is_rejected(adapter):
    recorded = fixture("instagram", "change__comments_dashboard_test")
    result = comments(adapter, recorded)
    assert result.envelopes == []
    [rejected] = result.rejected
    assert (rejected.raw, rejected.reference) == (recorded, "17865799348089039")


def test_other_fields_are_ignored_with_a_log_line(adapter, caplog):
    with caplog.at_level(logging.INFO, logger="channel_adapters.meta.instagram"):
        result = comments(adapter, {"field": "story_insights", "value": {"media_id": "1"}})
    assert (result.envelopes, result.rejected) == ([], [])
    assert "story_insights" in caplog.text


# Replies ---------------------------------------------------------------------------------------

WROTE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def modes_at(adapter, now, thread_key=f"dm:{PERSON}"):
    with time_machine.travel(now, tick=False):
        return {m.key: m for m in adapter.reply_modes(ReplyTarget(thread_key=thread_key, last_inbound_at=WROTE))}


def test_instagram_limits(adapter):
    dm = modes_at(adapter, WROTE + timedelta(hours=1))
    assert dm[""].max_length == 1000
    comment = modes_at(adapter, WROTE + timedelta(hours=1), thread_key="comment:1")
    assert (comment["public"].max_length, comment["private"].max_length) == (2200, 1000)


def test_the_24h_window_and_the_human_agent_tag():
    adapter = instagram_adapter(IG_USER, PAGE, human_agent=True)
    assert modes_at(adapter, WROTE + timedelta(hours=23, minutes=59))[""].allowed
    late = modes_at(adapter, WROTE + timedelta(hours=24, minutes=1))
    assert not late[""].allowed
    assert "The 24-hour reply window closed" in late[""].reason
    assert "Use the human agent reply" in late[""].reason
    assert late["human_agent"].allowed


@pytest.mark.parametrize(
    ("file", "message"),
    [
        (OutboundFile("report.pdf", "application/pdf", b"%PDF"), "images, video and audio only"),
        (OutboundFile("big.png", "image/png", b"\0" * (8 * 1024 * 1024 + 1)), "8 MB"),
    ],
)
def test_files_instagram_does_not_take_are_refused_before_any_call(adapter, file, message):
    with pytest.raises(PermanentError, match=message):
        adapter.send_attachment(target=ReplyTarget(thread_key=f"dm:{PERSON}"), file=file)


def test_too_long_replies_are_refused_before_any_call(adapter):
    with pytest.raises(PermanentError, match="at most 1000"):
        adapter.send(target=ReplyTarget(thread_key=f"dm:{PERSON}"), text="x" * 1001, key="k")
    with pytest.raises(PermanentError, match="at most 2200"):
        adapter.send(target=ReplyTarget(thread_key="comment:1", mode="public"), text="x" * 2201, key="k")


def test_threads_are_described():
    assert InstagramAdapter.describe_thread("dm:1") == "Instagram DM"


GOOD_CONFIG = {
    "ig_user_id": IG_USER,
    "page_id": PAGE,
    "page_access_token": "t",
    "app_secret": APP_SECRET,
    "verify_token": VERIFY_TOKEN,
}


@pytest.mark.parametrize("missing", ["ig_user_id", "page_id", "page_access_token", "app_secret", "verify_token"])
def test_split_config_needs_the_account_its_page_and_the_secrets(missing):
    with pytest.raises(ConfigError, match=missing):
        InstagramAdapter.split_config({k: v for k, v in GOOD_CONFIG.items() if k != missing})


def test_split_config_keeps_secrets_apart():
    config, secrets = InstagramAdapter.split_config(GOOD_CONFIG)
    assert set(secrets) == {"page_access_token", "app_secret", "verify_token"}
    assert config["ig_user_id"] == IG_USER
    assert "media" in InstagramAdapter.polling_limits(config)


# On the Meta emulator -----------------------------------------------------------------------------

EMU_PAGE, EMU_IG = "1001", "17841400000000001"


@pytest.fixture
def emu_page(meta_emulator):
    return meta_emulator.add_page(EMU_PAGE, name="IT Help")


@pytest.fixture
def emu_account(meta_emulator, emu_page):
    return meta_emulator.add_instagram(EMU_PAGE, EMU_IG, username="ithelp")


@pytest.fixture
def emu_adapter(meta_emulator, emu_page, emu_account):
    return emulator_instagram(meta_emulator, emu_account, emu_page)


def test_polled_dms_carry_the_persons_username(emu_adapter, meta_emulator):
    igsid = meta_emulator.dm(EMU_IG, "locked out", username="maya.dev")["sender_id"]
    [envelope] = envelopes_of(emu_adapter.poll({}))
    assert (envelope.external_id, envelope.thread_key, envelope.text) == (
        envelope.external_id,
        f"dm:{igsid}",
        "locked out",
    )
    assert (envelope.sender.namespace, envelope.sender.handle) == (f"instagram:{EMU_IG}", "@maya.dev")


def test_polled_comments_include_replies_to_older_comments(emu_adapter, meta_emulator):
    """Instagram nests replies under their comment: a new reply to a comment read by an earlier poll is found."""
    media = meta_emulator.add_post(EMU_IG, "new laptops")["id"]
    top = meta_emulator.comment(EMU_IG, media, "when?", username="maya.dev", at=hours_ago(2))["comment_id"]
    pages = list(emu_adapter.poll({}))
    assert [e.text for e in envelopes_of(pages)] == ["when?"]
    emu_adapter.send(target=ReplyTarget(thread_key=f"comment:{top}", mode="public"), text="Monday", key="r")
    meta_emulator.comment(EMU_IG, media, "thanks!", username="maya.dev", parent_id=top)
    [reply] = envelopes_of(emu_adapter.poll(pages[-1].cursor))
    assert (reply.text, reply.thread_key, reply.meta["media_id"]) == ("thanks!", f"comment:{top}", media)
    assert reply.sender.handle == "@maya.dev"


def test_a_public_reply_goes_under_the_first_comment(emu_adapter, meta_emulator):
    media = meta_emulator.add_post(EMU_IG, "news")["id"]
    top = meta_emulator.comment(EMU_IG, media, "q", username="maya.dev")["comment_id"]
    since = datetime.now(UTC) - timedelta(seconds=1)
    target = ReplyTarget(thread_key=f"comment:{top}", mode="public")
    sent = emu_adapter.send(target=target, text="A", key="k")
    [record] = meta_emulator.sent(EMU_IG)
    assert (record["kind"], record["parent_id"], sent.external_id) == ("comment_reply", top, f"comment:{record['id']}")
    assert emu_adapter.find_sent(target=target, text="A", key="k", since=since) == sent


def test_a_private_reply_opens_the_dm(emu_adapter, meta_emulator):
    media = meta_emulator.add_post(EMU_IG, "news")["id"]
    comment = meta_emulator.comment(EMU_IG, media, "my order?", username="maya.dev")
    target = ReplyTarget(
        thread_key=f"comment:{comment['comment_id']}",
        mode="private",
        reply_to=f"comment:{comment['comment_id']}",
        recipient=comment["sender_id"],
    )
    sent = emu_adapter.send(target=target, text="Let's look at it here", key="k")
    assert sent.thread_key == f"dm:{comment['sender_id']}"
    [record] = meta_emulator.sent(EMU_IG)
    assert (record["kind"], record["id"]) == ("private_reply", sent.external_id)


def test_instagrams_window_refusal_is_in_its_own_words(emu_adapter, meta_emulator):
    igsid = meta_emulator.dm(EMU_IG, "hi", username="maya.dev", at=hours_ago(25))["sender_id"]
    with pytest.raises(PermanentError, match=r"Outside Instagram's reply window: .*code 10/2534022"):
        emu_adapter.send(target=ReplyTarget(thread_key=f"dm:{igsid}"), text="late", key="k")


def test_an_image_goes_out_in_a_dm(emu_adapter, meta_emulator):
    igsid = meta_emulator.dm(EMU_IG, "hi", username="maya.dev")["sender_id"]
    target = ReplyTarget(thread_key=f"dm:{igsid}")
    assert emu_adapter.send_attachment(target=target, file=OutboundFile("a.jpg", "image/jpeg", b"\xff\xd8jpeg"))
    [record] = meta_emulator.sent(EMU_IG)
    assert record["attachments"][0]["type"] == "image"


@pytest.mark.django_db(transaction=True)
def test_webhooks_from_instagram_reach_the_desk_and_a_poll_fills_the_gaps(live_server, meta_emulator, emu_adapter):
    channel = channel_of(emu_adapter, "ig-pushed")
    url = live_server.url + reverse("channels_ingest:webhook", args=[channel.public_id])
    assert meta_emulator.set_webhook(EMU_IG, url)["handshake"]["passed"]
    meta_emulator.drop_webhooks(1)
    igsid = meta_emulator.dm(EMU_IG, "first (lost)", username="maya.dev")["sender_id"]
    meta_emulator.dm(EMU_IG, "second", sender_id=igsid)
    media = meta_emulator.add_post(EMU_IG, "news")["id"]
    meta_emulator.comment(EMU_IG, media, "a comment", username="leo.ops")
    assert meta_emulator.wait_for_webhooks()
    assert sorted(InboundMessage.objects.values_list("payload__text", flat=True)) == ["a comment", "second"]
    assert poll_as_worker(channel).stored == 1
    assert poll_as_worker(channel).stored == 0
    assert [m.body for m in Ticket.objects.get().messages.timeline()] == ["first (lost)", "second"]


@pytest.mark.django_db(transaction=True)
def test_a_reply_is_reported_read(live_server, meta_emulator, emu_adapter, agent):
    """Instagram has no delivery event; its read names the message."""
    channel = channel_of(emu_adapter, "ig-receipts")
    url = live_server.url + reverse("channels_ingest:webhook", args=[channel.public_id])
    assert meta_emulator.set_webhook(EMU_IG, url)["handshake"]["passed"]
    meta_emulator.dm(EMU_IG, "hello", username="maya.dev")
    assert meta_emulator.wait_for_webhooks()
    reply = reply_and_deliver(Ticket.objects.get(), agent, "Hi Maya")
    assert reply.delivery_status == Message.DeliveryStatus.SENT
    assert meta_emulator.wait_for_webhooks()
    reply.refresh_from_db()
    assert reply.delivery_status == Message.DeliveryStatus.READ


@pytest.mark.django_db(transaction=True)
def test_an_unsent_message_is_deleted_on_the_desk(live_server, meta_emulator, emu_adapter):
    channel = channel_of(emu_adapter, "ig-unsend")
    url = live_server.url + reverse("channels_ingest:webhook", args=[channel.public_id])
    assert meta_emulator.set_webhook(EMU_IG, url)["handshake"]["passed"]
    mid = meta_emulator.dm(EMU_IG, "wrong chat, sorry", username="maya.dev")["mid"]
    meta_emulator.unsend_dm(EMU_IG, mid)
    assert meta_emulator.wait_for_webhooks()
    assert Message.objects.get(external_id=mid).deleted_at is not None
