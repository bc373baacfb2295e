"""The Facebook Page adapter: Messenger DMs and Page comments, from recorded webhook payloads
(``fixtures/messenger``, ``fixtures/facebook``), reply modes and their windows, configuration."""

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from channel_adapters.base import (
    ConfigError,
    CredentialsError,
    EnvelopeKind,
    InvalidWebhook,
    OutboundFile,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    ReplyTarget,
    Sender,
    Sent,
    TransientError,
)
from channel_adapters.meta.facebook import FacebookAdapter
from channels_ingest.channel_config import clean_channel_config
from channels_ingest.models import Channel, InboundMessage
from tests.channel_adapters.meta_pages import (
    APP_SECRET,
    VERIFY_TOKEN,
    body_of,
    channel_of,
    deliver,
    emulator_facebook,
    envelopes_of,
    facebook_adapter,
    fixture,
    hours_ago,
    sign,
)
from tests.helpers import poll_as_worker, reply_and_deliver
from tickets.models import Message, Ticket
from tickets.replies import reply_modes

#: The Page the recorded ``event__*`` items were sent to, and the person who wrote them.
PAGE = "404217156637689"
PERSON = "1423587017700273"
#: The Page of the recorded feed changes.
FEED_PAGE = "137542570280222"


def event(name):
    return fixture("messenger", name)


def change(name):
    return fixture("facebook", name)


@pytest.fixture
def adapter():
    return facebook_adapter(PAGE)


def one(result):
    assert not result.rejected, result.rejected
    [envelope] = result.envelopes
    return envelope


# Signatures and the subscription handshake -----------------------------------------


def test_unsigned_webhook_is_refused_before_its_body_is_read(adapter):
    with pytest.raises(InvalidWebhook) as refused:
        adapter.handle_webhook(headers={}, body=b"not even json")
    assert refused.value.status == 401


@pytest.mark.parametrize(
    "headers",
    [
        sign(b"{}", secret="another-apps-secret"),
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": "garbage"},
    ],
    ids=["signed-with-another-secret", "forged", "malformed"],
)
def test_forged_or_foreign_signatures_are_refused(adapter, headers):
    body = json.dumps(body_of(PAGE, event("event__text"))).encode()
    with pytest.raises(InvalidWebhook) as refused:
        adapter.handle_webhook(headers=headers, body=body)
    assert refused.value.status == 403


def test_a_signature_of_another_body_is_refused(adapter):
    """A valid signature replayed over a changed body (the person's words altered on the way)."""
    original = json.dumps(body_of(PAGE, event("event__text"))).encode()
    altered = original.replace(b"Sharp tools", b"Blunt tools")
    with pytest.raises(InvalidWebhook) as refused:
        adapter.handle_webhook(headers=sign(original), body=altered)
    assert refused.value.status == 403


def test_a_channel_without_app_secret_refuses_every_webhook():
    adapter = facebook_adapter(PAGE)
    adapter.secrets.pop("app_secret")
    body = json.dumps(body_of(PAGE, event("event__text"))).encode()
    with pytest.raises(InvalidWebhook) as refused:
        adapter.handle_webhook(headers=sign(body), body=body)
    assert refused.value.status == 403


def test_subscription_handshake_echoes_the_challenge(adapter):
    result = adapter.verify_subscription(
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    )
    assert (result.status, result.body) == (200, "1158201444")


def test_subscription_handshake_with_another_token_is_refused(adapter):
    with pytest.raises(InvalidWebhook) as refused:
        adapter.verify_subscription({"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    assert refused.value.status == 403
    with pytest.raises(InvalidWebhook) as refused:
        adapter.verify_subscription({"hub.verify_token": VERIFY_TOKEN})
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", json.dumps({"object": "instagram", "entry": []}).encode(), b'{"object": "page"}'],
    ids=["not-json", "not-an-object", "another-product", "no-entries"],
)
def test_signed_but_unusable_bodies_are_400(adapter, body):
    with pytest.raises(InvalidWebhook) as refused:
        deliver(adapter, body)
    assert refused.value.status == 400


# Messenger DMs ------------------------------------------------------------------------


def test_a_text_becomes_a_dm_message(adapter):
    envelope = one(deliver(adapter, body_of(PAGE, event("event__text"))))
    assert envelope.kind == EnvelopeKind.MESSAGE
    assert envelope.external_id == "mid.$cAAE1UUyiiwthh0NPrVbVf4HFNDGl"
    assert envelope.thread_key == f"dm:{PERSON}"
    assert envelope.text == "Sharp tools make good work."
    assert envelope.sent_at == datetime(2017, 4, 10, 3, 52, 43, 181000, tzinfo=UTC)
    assert (envelope.sender.namespace, envelope.sender.external_id) == (f"facebook:{PAGE}", PERSON)
    assert not envelope.public
    assert not envelope.reopens


def test_a_whole_recorded_body_is_read(adapter):
    adapter = facebook_adapter("1895382890692545")
    envelope = one(deliver(adapter, fixture("messenger", "webhook__text")))
    assert (envelope.external_id, envelope.text, envelope.thread_key) == (
        "mid.1486464322190:cb04e5a654",
        "text",
        "dm:1412611362105802",
    )


def test_the_webhook_answers_what_meta_expects(adapter):
    result = deliver(adapter, body_of(PAGE, event("event__text")))
    assert (result.status, result.body) == (200, "EVENT_RECEIVED")


@pytest.mark.parametrize(
    ("name", "file_name", "content_type"),
    [
        ("event__image", "17887258_1429713783754592_1626047672_o.jpg", "image/jpeg"),
        ("event__audio", "audio.mp3", "audio/mpeg"),
        ("event__video", "video.mp4", "video/mp4"),
        ("event__file", "file.doc", "application/msword"),
        ("event__sticker_like", "sticker-369239263222822.png", "image/png"),
    ],
)
def test_attachments_are_files_fetched_from_their_url(adapter, name, file_name, content_type):
    item = event(name)
    envelope = one(deliver(adapter, body_of(PAGE, item)))
    [attachment] = envelope.attachments
    assert (attachment.name, attachment.content_type, attachment.size) == (file_name, content_type, 0)
    assert attachment.ref == item["message"]["attachments"][0]["payload"]["url"]
    assert envelope.text == ""


def test_every_attachment_of_a_message_is_kept():
    adapter = facebook_adapter("PAGE_ID")
    envelope = one(deliver(adapter, fixture("messenger", "webhook__image_two_attachments")))
    assert [a.ref for a in envelope.attachments] == [
        "http://facebookimage.com/image.png",
        "http://facebookimage.com/imageX.png",
    ]
    assert [a.content_type for a in envelope.attachments] == ["image/png", "image/png"]


def test_a_voice_clip_is_audio_even_in_an_mp4_file(adapter):
    item = event("event__audio")
    item["message"]["attachments"][0]["payload"]["url"] = "https://cdn.fbsbx.com/v/t59/audioclip-1491797604411.mp4?x=1"
    [attachment] = one(deliver(adapter, body_of(PAGE, item))).attachments
    assert (attachment.name, attachment.content_type) == ("audioclip-1491797604411.mp4", "audio/mp4")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("event__location", "[location: 0, 0]"),
        ("event__fallback_url_share", "[fallback] TITLE_OF_THE_URL_ATTACHMENT URL_OF_THE_ATTACHMENT"),
    ],
)
def test_what_is_not_a_file_is_told_in_the_text(adapter, name, text):
    envelope = one(deliver(adapter, body_of(PAGE, event(name))))
    assert envelope.text == text
    assert envelope.attachments == ()


def test_an_attachment_type_meta_added_later_is_named_not_dropped(adapter):
    item = event("event__text")
    item["message"]["attachments"] = [{"type": "hologram", "payload": {"id": "1"}}]
    assert one(deliver(adapter, body_of(PAGE, item))).text == "Sharp tools make good work.\n[hologram attachment]"


def test_quick_replies_and_postbacks_arrive_as_text(adapter):
    quick = one(deliver(adapter, body_of(PAGE, event("event__quick_reply"))))
    assert (quick.text, quick.meta["quick_reply"]) == ("Red", "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_RED")
    postback = one(deliver(adapter, body_of(PAGE, event("event__postback"))))
    assert (postback.kind, postback.text, postback.thread_key) == (
        EnvelopeKind.MESSAGE,
        "USER_DEFINED_PAYLOAD",
        f"dm:{PERSON}",
    )
    assert postback.external_id == f"postback:{PERSON}:1491798782090"
    started = one(
        deliver(
            facebook_adapter("707356222221168"),
            body_of("707356222221168", event("event__postback_get_started_with_referral")),
        )
    )
    assert (started.text, started.meta["postback"]) == ("Get Started", "__GET_STARTED__")


def test_a_postback_with_its_mid_uses_it(adapter):
    item = event("event__postback")
    item["postback"]["mid"] = "m_postback_1"
    assert one(deliver(adapter, body_of(PAGE, item))).external_id == "m_postback_1"


@pytest.mark.parametrize(
    ("page_id", "body"),
    [
        (PAGE, body_of(PAGE, event("event__echo"))),
        ("1134713619900975", fixture("messenger", "webhook__echo")),
        ("111899832631525", fixture("messenger", "webhook__echo_no_app_id")),
    ],
    ids=["event", "webhook", "echo-without-app-id"],
)
def test_echoes_of_our_own_messages_are_skipped(page_id, body):
    result = deliver(facebook_adapter(page_id), body)
    assert (result.envelopes, result.rejected) == ([], [])


def test_a_message_from_the_page_itself_is_skipped_even_without_is_echo(adapter):
    item = event("event__text")
    item["sender"], item["recipient"] = {"id": PAGE}, {"id": PERSON}
    assert deliver(adapter, body_of(PAGE, item)).envelopes == []


def test_delivery_reports_each_message_delivered(adapter):
    item = event("event__delivery")
    item["sender"], item["recipient"] = {"id": PERSON}, {"id": PAGE}  # the person's client reports to the Page
    item["delivery"]["mids"].append("mid.1458668856218:second")
    result = deliver(adapter, body_of(PAGE, item))
    assert [(e.kind, e.external_id, e.target_id, e.meta) for e in result.envelopes] == [
        (
            EnvelopeKind.STATUS,
            "mid.1458668856218:ed81099e15d3f4f233:delivered",
            "mid.1458668856218:ed81099e15d3f4f233",
            {"status": "delivered"},
        ),
        (
            EnvelopeKind.STATUS,
            "mid.1458668856218:second:delivered",
            "mid.1458668856218:second",
            {"status": "delivered"},
        ),
    ]
    assert {e.thread_key for e in result.envelopes} == {f"dm:{PERSON}"}


def test_a_recorded_delivery_body(adapter):
    adapter = facebook_adapter("111899832631525")
    envelope = one(deliver(adapter, fixture("messenger", "webhook__delivery")))
    assert (envelope.kind, envelope.target_id, envelope.thread_key) == (
        EnvelopeKind.STATUS,
        "mid.1458668856218:ed81099e15d3f4f233",
        "dm:USER_ID",
    )


def test_a_delivery_without_mids_covers_everything_up_to_its_watermark(adapter):
    item = event("event__delivery")
    item["sender"], item["recipient"] = {"id": PERSON}, {"id": PAGE}
    del item["delivery"]["mids"]
    envelope = one(deliver(adapter, body_of(PAGE, item)))
    assert (envelope.target_id, envelope.meta) == (
        "",
        {"status": "delivered", "up_to": "2016-03-22T17:47:36.253000+00:00"},
    )


def test_read_is_a_watermark_over_the_conversation():
    adapter = facebook_adapter("111899832631525")
    envelope = one(deliver(adapter, fixture("messenger", "webhook__read")))
    assert envelope.kind == EnvelopeKind.STATUS
    assert envelope.external_id == "read:USER_ID:1458668856253"
    assert (envelope.thread_key, envelope.target_id) == ("dm:USER_ID", "")
    assert envelope.meta == {"status": "read", "up_to": "2016-03-22T17:47:36.253000+00:00"}


def test_reactions_name_the_message_and_their_emoji():
    adapter = facebook_adapter("707356222221168")
    react = one(deliver(adapter, body_of("707356222221168", event("event__reaction_react"))))
    unreact = one(deliver(adapter, body_of("707356222221168", event("event__reaction_unreact"))))
    assert react.kind == unreact.kind == EnvelopeKind.REACTION
    assert react.target_id == unreact.target_id == "mid.$cAAE1UUyiiwthh0NPrVbVf4HFNDGl"
    assert react.meta == {"emoji": "❤️", "removed": False}
    assert unreact.meta == {"emoji": "❤️", "removed": True}
    assert react.external_id == "mid.$cAAE1UUyiiwthh0NPrVbVf4HFNDGl:reaction:1476077422222289:react:1469111400000"
    assert react.external_id != unreact.external_id


def test_an_edit_is_numbered_by_meta(adapter):
    """``message_edits`` (no recording exists; the shape is Meta's webhook reference for the field)."""
    item = {
        "sender": {"id": PERSON},
        "recipient": {"id": PAGE},
        "timestamp": 1458668856463,
        "message_edit": {"mid": "mid.$cAAE1UUyiiwthh0NPrVbVf4HFNDGl", "text": "Sharper tools", "num_edit": 2},
    }
    envelope = one(deliver(adapter, body_of(PAGE, item)))
    assert (envelope.kind, envelope.external_id, envelope.target_id, envelope.text) == (
        EnvelopeKind.EDIT,
        "mid.$cAAE1UUyiiwthh0NPrVbVf4HFNDGl:edit:2",
        "mid.$cAAE1UUyiiwthh0NPrVbVf4HFNDGl",
        "Sharper tools",
    )
    assert envelope.thread_key == f"dm:{PERSON}"


@pytest.mark.parametrize(
    "name",
    [
        "event__referral_shortlink",
        "event__referral_customer_chat_plugin",
        "event__optin",
        "event__pass_thread_control",
        "event__take_thread_control",
        "event__request_thread_control_from_page_inbox",
        "event__policy_enforcement",
        "event__app_roles",
    ],
)
def test_events_without_ticket_content_are_acknowledged_with_a_log_line(adapter, name, caplog):
    with caplog.at_level(logging.INFO, logger="channel_adapters.meta.pages"):
        result = deliver(adapter, body_of(PAGE, event(name)))
    assert (result.status, result.envelopes, result.rejected) == (200, [], [])
    assert "ignoring" in caplog.text


def test_an_unknown_event_is_acknowledged_with_a_warning(adapter, caplog):
    item = {"sender": {"id": PERSON}, "recipient": {"id": PAGE}, "timestamp": 1491796363181, "hologram": {"x": 1}}
    with caplog.at_level(logging.WARNING, logger="channel_adapters.meta.pages"):
        result = deliver(adapter, body_of(PAGE, item))
    assert (result.status, result.envelopes, result.rejected) == (200, [], [])
    assert "unknown messaging event ['hologram']" in caplog.text


def test_entries_for_other_pages_are_ignored(caplog):
    adapter = facebook_adapter("1895382890692545")
    with caplog.at_level(logging.INFO, logger="channel_adapters.meta.pages"):
        result = deliver(adapter, fixture("messenger", "webhook__batch_two_entries"))
    assert [e.text for e in result.envelopes] == ["test 1"]
    assert "189538289069256" in caplog.text


def test_the_dashboards_test_event_is_ignored(adapter):
    result = deliver(adapter, fixture("messenger", "webhook__test_event"))
    assert (result.envelopes, result.rejected) == ([], [])


def test_standby_messages_are_the_persons_words_too(adapter):
    result = deliver(adapter, body_of(PAGE, event("event__text"), field="standby"))
    assert [e.text for e in result.envelopes] == ["Sharp tools make good work."]


def malformed_items():
    good = event("event__text")

    def changed(**message):
        item = json.loads(json.dumps(good))
        item["message"].update(message)
        return item

    return [
        changed(mid=None),
        changed(mid="has spaces in it"),
        changed(text=["not", "text"]),
        changed(attachments="image"),
        {**good, "timestamp": "yesterday"},
        {**good, "timestamp": 99999999999999},  # year 5138
        {**good, "timestamp": 1000},  # 1970, before Facebook
        {**good, "sender": {"id": ["1"]}},
        {**good, "sender": "1423587017700273"},
        {**good, "message": "Sharp tools"},
        {"recipient": {"id": PAGE}, "timestamp": 1491796363181, "message": good["message"]},  # no sender
        "not an item",
    ]


def test_malformed_items_are_rejected_whole_and_the_good_one_beside_them_arrives(adapter):
    bad = malformed_items()
    odd_reaction = {"sender": {"id": PERSON}, "timestamp": 1469111400000, "reaction": {"mid": "m", "action": "smile"}}
    odd_edit = {"sender": {"id": PERSON}, "timestamp": 1, "message_edit": {"mid": "m", "text": "x", "num_edit": "two"}}
    odd_delivery = {"sender": {"id": PERSON}, "delivery": {"mids": "m", "watermark": 1458668856253}}
    odd_read = {"sender": {"id": PERSON}, "read": {"watermark": "soon"}}
    bad += [odd_reaction, odd_edit, odd_delivery, odd_read]
    result = deliver(adapter, body_of(PAGE, *bad, event("event__text")))
    assert [e.text for e in result.envelopes] == ["Sharp tools make good work."]
    assert [r.raw for r in result.rejected] == bad
    assert all(r.reason and r.reference for r in result.rejected)


def test_odd_entries_are_rejected_not_crashed_on(adapter):
    body = {
        "object": "page",
        "entry": ["odd", {"id": PAGE, "messaging": {"not": "a list"}}, {"id": PAGE, "changes": 3}],
    }
    result = deliver(adapter, body)
    assert result.envelopes == []
    assert [r.raw for r in result.rejected] == ["odd", {"not": "a list"}, 3]


def test_a_deeply_nested_body_is_refused(adapter):
    raw = b'{"object": "page", "entry": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(InvalidWebhook) as refused:
        deliver(adapter, raw)
    assert refused.value.status == 400


@pytest.mark.parametrize("text", ["שלום המדפסת 🖨️", "zero\u200bwidth\u200d", "<script>x</script>", "**not** markdown"])
def test_odd_text_is_kept_exactly(adapter, text):
    item = event("event__text")
    item["message"]["text"] = text
    assert one(deliver(adapter, body_of(PAGE, item))).text == text


# Page comments -----------------------------------------------------------------------


@pytest.fixture
def feed_adapter():
    return facebook_adapter(FEED_PAGE)


def feed(adapter, *changes):
    return deliver(adapter, body_of(adapter.config["page_id"], *changes, field="changes", time=1511951015))


def test_a_reply_to_a_comment_joins_its_parents_thread(feed_adapter):
    envelope = one(feed(feed_adapter, change("change__feed_comment_add")))
    assert envelope.kind == EnvelopeKind.MESSAGE
    assert envelope.external_id == "comment:139560936744456_139620233405726"
    assert envelope.thread_key == "comment:139560936744456_139562213411528"
    assert not envelope.starts_thread
    assert (envelope.public, envelope.reopens) == (True, True)
    assert envelope.meta == {
        "comment_id": "139560936744456_139620233405726",
        "post_id": "137542570280222_139560936744456",
    }
    assert envelope.text == "Good"
    assert envelope.sent_at == datetime(2017, 11, 29, 10, 23, 35, tzinfo=UTC)
    sender = envelope.sender
    assert (sender.namespace, sender.external_id, sender.display_name) == (
        f"facebook:{FEED_PAGE}",
        "139560936744123",
        "user",
    )


def test_a_comment_on_the_post_starts_its_own_thread(feed_adapter):
    envelope = one(feed(feed_adapter, change("change__feed_video_comment_add")))
    assert envelope.thread_key == "comment:139560936755999_140077616693321"
    assert envelope.starts_thread
    assert envelope.sender.display_name == "Hsuan-Yih Shawn Chu"


def test_an_edited_comment_is_an_edit_of_it(feed_adapter):
    envelope = one(feed(feed_adapter, change("change__feed_comment_edited")))
    assert (envelope.kind, envelope.external_id, envelope.target_id, envelope.text) == (
        EnvelopeKind.EDIT,
        "comment:139560936744456_139597043408045:edit:1511948891",
        "comment:139560936744456_139597043408045",
        "Great",
    )
    assert envelope.thread_key == "comment:139560936744456_139597043408045"


def test_a_removed_comment_is_a_deletion(feed_adapter):
    envelope = one(feed(feed_adapter, change("change__feed_comment_remove")))
    assert (envelope.kind, envelope.external_id, envelope.target_id) == (
        EnvelopeKind.DELETE,
        "comment:139560936744456_139597043408045:delete",
        "comment:139560936744456_139597043408045",
    )


def test_the_pages_own_comments_are_skipped():
    adapter = facebook_adapter("137542570280111")
    result = feed(adapter, change("change__feed_sent_by_page"))
    assert (result.envelopes, result.rejected) == ([], [])


@pytest.mark.parametrize(
    "name",
    [
        "change__feed_like_add",
        "change__feed_like_remove",
        "change__feed_page_like_add",
        "change__feed_reaction_add",
        "change__feed_reaction_edit",
        "change__feed_reaction_remove",
        "change__feed_post_remove",
        "change__feed_status_add",
        "change__feed_status_edited",
    ],
)
def test_likes_reactions_and_posts_on_the_feed_are_ignored(feed_adapter, name, caplog):
    with caplog.at_level(logging.INFO, logger="channel_adapters.meta.facebook"):
        result = feed(feed_adapter, change(name))
    assert (result.envelopes, result.rejected) == ([], [])
    assert "ignoring a feed" in caplog.text


def test_comment_webhooks_for_other_pages_are_ignored():
    adapter = facebook_adapter("PAGE_ID")
    body = fixture("facebook", "webhook__feed_comment_add_two_pages")
    body["entry"][0]["id"] = "PAGE_ID"
    assert [e.text for e in deliver(adapter, body).envelopes] == ["Good"]


def test_a_comment_with_a_photo_carries_it(feed_adapter):
    item = change("change__feed_comment_add")
    item["value"]["photo"] = "https://scontent.xx.fbcdn.net/v/t1/photo.jpg?oh=1"
    [attachment] = one(feed(feed_adapter, item)).attachments
    assert (attachment.name, attachment.content_type) == ("photo.jpg", "image/jpeg")


def test_malformed_comments_are_rejected(feed_adapter):
    good = change("change__feed_comment_add")
    odd = [
        {"field": "feed", "value": {**good["value"], "comment_id": None}},
        {"field": "feed", "value": {**good["value"], "from": None}},
        {"field": "feed", "value": {**good["value"], "created_time": "soon"}},
        {"field": "feed", "value": {**good["value"], "message": {"text": "x"}}},
        {"field": "feed", "value": "comment"},
    ]
    result = feed(feed_adapter, *odd, good)
    assert [e.text for e in result.envelopes] == ["Good"]
    assert [r.raw for r in result.rejected] == odd


def test_other_webhook_fields_are_ignored(feed_adapter, caplog):
    with caplog.at_level(logging.INFO, logger="channel_adapters.meta.facebook"):
        result = feed(feed_adapter, {"field": "ratings", "value": {"item": "rating"}})
    assert (result.envelopes, result.rejected) == ([], [])
    assert "ignoring webhook field 'ratings'" in caplog.text


# Reply modes and windows ---------------------------------------------------------------------

WROTE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def dm_modes(adapter, now, *, last=WROTE):
    with time_machine.travel(now, tick=False):
        return {m.key: m for m in adapter.reply_modes(ReplyTarget(thread_key=f"dm:{PERSON}", last_inbound_at=last))}


def test_a_reply_at_23h59_is_allowed_and_counts_down_to_24h(adapter):
    modes = dm_modes(adapter, WROTE + timedelta(hours=23, minutes=59))
    reply = modes[""]
    assert (reply.allowed, reply.label, reply.max_length) == (True, "Reply", 2000)
    assert reply.expires_at == WROTE + timedelta(hours=24)
    assert reply.attachments.max_bytes == 25 * 1024 * 1024
    assert not modes["human_agent"].allowed
    assert "Human Agent permission" in modes["human_agent"].reason


def test_a_reply_at_24h01_is_refused_with_when_the_window_closed(adapter):
    reply = dm_modes(adapter, WROTE + timedelta(hours=24, minutes=1))[""]
    assert not reply.allowed
    assert "The 24-hour reply window closed at 2026-03-03 09:00 UTC" in reply.reason
    assert "until the person writes again" in reply.reason


def test_the_human_agent_tag_answers_for_7_days_where_the_page_has_it():
    adapter = facebook_adapter(PAGE, human_agent=True)
    modes = dm_modes(adapter, WROTE + timedelta(hours=24, minutes=1))
    assert not modes[""].allowed
    assert "Use the human agent reply (allowed until 2026-03-09 09:00 UTC)" in modes[""].reason
    human = modes["human_agent"]
    assert (human.allowed, human.label, human.expires_at) == (True, "Human agent (7 days)", WROTE + timedelta(days=7))
    closed = dm_modes(adapter, WROTE + timedelta(days=7, minutes=1))
    assert not closed[""].allowed
    assert not closed["human_agent"].allowed
    assert "7-day human agent window closed at 2026-03-09 09:00 UTC" in closed["human_agent"].reason


def test_without_the_time_of_the_last_message_the_platform_decides(adapter):
    modes = dm_modes(adapter, WROTE, last=None)
    assert modes[""].allowed
    assert modes[""].expires_at is None


def comment_modes(adapter, now, **meta):
    target = ReplyTarget(
        thread_key="comment:1_2",
        reply_to="comment:1_3",
        reply_to_meta={"comment_id": "1_3", "post_id": "1", **meta},
        last_inbound_at=WROTE,
    )
    with time_machine.travel(now, tick=False):
        return {m.key: m for m in adapter.reply_modes(target)}


def test_a_comment_takes_a_public_reply_or_one_private_reply_within_7_days(adapter):
    modes = comment_modes(adapter, WROTE + timedelta(days=6, hours=23))
    assert list(modes) == ["public", "private"]
    assert (modes["public"].allowed, modes["public"].max_length, modes["public"].label) == (True, 8000, "Public reply")
    private = modes["private"]
    assert (private.allowed, private.label, private.max_length) == (True, "Private reply (DM)", 2000)
    assert private.expires_at == WROTE + timedelta(days=7)
    late = comment_modes(adapter, WROTE + timedelta(days=7, minutes=1))
    assert late["public"].allowed
    assert not late["private"].allowed
    assert "closed at 2026-03-09 09:00 UTC" in late["private"].reason


def test_a_second_private_reply_is_refused(adapter):
    private = comment_modes(adapter, WROTE + timedelta(hours=1), private_reply_sent=True)["private"]
    assert not private.allowed
    assert "already sent" in private.reason


def test_too_long_replies_are_refused_before_any_call(adapter):
    target = ReplyTarget(thread_key=f"dm:{PERSON}")
    with pytest.raises(PermanentError, match="at most 2000"):
        adapter.send(target=target, text="x" * 2001, key="k")
    comment = ReplyTarget(thread_key="comment:1_2", mode="public")
    with pytest.raises(PermanentError, match="at most 8000"):
        adapter.send(target=comment, text="x" * 8001, key="k")
    with pytest.raises(PermanentError, match="public or a private"):
        adapter.send(target=ReplyTarget(thread_key="comment:1_2", mode="dm"), text="x", key="k")


def test_comment_replies_carry_no_files(adapter):
    target = ReplyTarget(thread_key="comment:1_2", mode="public")
    assert not any(m.attachments for m in adapter.reply_modes(target))
    with pytest.raises(PermanentError, match="text only"):
        adapter.send_attachment(target=target, file=OutboundFile("log.txt", "text/plain", b"x"))


def test_files_are_fetched_only_from_meta_hosts(adapter):
    with pytest.raises(PermanentError, match="not fetched"):
        b"".join(adapter.fetch_attachment("https://attacker.example/files/a.jpg"))
    with pytest.raises(PermanentError, match="not fetched"):
        b"".join(adapter.fetch_attachment("file:///etc/passwd"))


def test_threads_are_described(adapter):
    assert FacebookAdapter.describe_thread(f"dm:{PERSON}") == "Messenger DM"
    assert FacebookAdapter.describe_thread("comment:1_2") == "comment thread"


# Configuration ----------------------------------------------------------------------------------

GOOD_CONFIG = {"page_id": PAGE, "page_access_token": "t", "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN}


def test_split_config_keeps_secrets_apart_and_defaults_to_meta():
    config, secrets = FacebookAdapter.split_config(GOOD_CONFIG)
    assert config == {"page_id": PAGE, "base_url": "https://graph.facebook.com/v25.0", "human_agent": False}
    assert secrets == {"page_access_token": "t", "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN}


def test_a_numeric_page_id_is_kept_as_meta_writes_it():
    config, _ = FacebookAdapter.split_config({**GOOD_CONFIG, "page_id": 404217156637689})
    assert config["page_id"] == PAGE


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"page_id": None}, "page_id"),
        ({"page_id": "../me"}, "page_id"),
        ({"page_access_token": ""}, "page_access_token"),
        ({"app_secret": None}, "app_secret"),
        ({"verify_token": " "}, "verify_token"),
        ({"base_url": "ftp://graph"}, "base_url"),
        ({"human_agent": "yes"}, "human_agent"),
        ({"timeout": 0}, "timeout"),
        ({"poll_media": -1}, "poll_media"),
        ({"poll_media": True}, "poll_media"),
    ],
)
def test_split_config_refuses_what_cannot_work(change, message):
    raw = {key: value for key, value in {**GOOD_CONFIG, **change}.items() if value is not None}
    with pytest.raises(ConfigError, match=message):
        FacebookAdapter.split_config(raw)


def test_polling_limits_say_what_only_webhooks_bring():
    limits = FacebookAdapter.polling_limits({"poll_media": 5})
    assert "5 most recent posts" in limits
    assert "only by webhook" in limits


# Through the pipeline: a signed POST to the channel's webhook URL ----------------------------------


@pytest.fixture
def facebook_channel(db):
    config, secrets = clean_channel_config("facebook", {**GOOD_CONFIG, "base_url": "http://127.0.0.1:9/v25.0"})
    return Channel.objects.create(
        kind="facebook", name="fb-help", config=config, secrets=secrets, state={"page_id": PAGE}
    )


@pytest.fixture
def post_webhook(client, facebook_channel, django_capture_on_commit_callbacks):
    def post(body, headers=None):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        signature = (headers if headers is not None else sign(raw)).get("X-Hub-Signature-256")
        extra = {"HTTP_X_HUB_SIGNATURE_256": signature} if signature else {}
        url = reverse("channels_ingest:webhook", args=[facebook_channel.public_id])
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, data=raw, content_type="application/json", **extra)

    return post


def test_a_messenger_dm_opens_a_ticket_once_however_often_meta_delivers_it(post_webhook):
    body = body_of(PAGE, event("event__text"))
    assert post_webhook(body).status_code == 200
    assert post_webhook(body).status_code == 200  # Meta redelivers what it thinks failed
    ticket = Ticket.objects.get()
    assert [m.body for m in ticket.messages.all()] == ["Sharp tools make good work."]
    identity = ticket.requester.identities.get()
    assert (identity.namespace, identity.external_id) == (f"facebook:{PAGE}", PERSON)
    assert InboundMessage.objects.count() == 1


def test_an_edit_through_the_webhook_updates_the_message(post_webhook):
    post_webhook(body_of(PAGE, event("event__text")))
    edit = {
        "sender": {"id": PERSON},
        "recipient": {"id": PAGE},
        "timestamp": 1491796463181,
        "message_edit": {"mid": "mid.$cAAE1UUyiiwthh0NPrVbVf4HFNDGl", "text": "Sharper tools", "num_edit": 1},
    }
    post_webhook(body_of(PAGE, edit))
    assert Message.objects.get().body == "Sharper tools"


def test_forged_webhooks_store_nothing(post_webhook):
    body = json.dumps(body_of(PAGE, event("event__text"))).encode()
    assert post_webhook(body, headers=sign(body, secret="not-ours")).status_code == 403
    assert post_webhook(body, headers={}).status_code == 401
    assert InboundMessage.objects.count() == 0


def test_a_malformed_item_is_kept_as_a_failed_row_beside_the_good_one(post_webhook):
    odd = {**event("event__text"), "timestamp": "yesterday"}
    assert post_webhook(body_of(PAGE, odd, event("event__image"))).status_code == 200
    failed = InboundMessage.objects.get(status=InboundMessage.Status.FAILED)
    assert failed.payload["raw"] == odd
    assert Ticket.objects.count() == 1


def test_a_page_comment_waits_for_triage(post_webhook, facebook_channel):
    facebook_channel.config["page_id"] = FEED_PAGE
    facebook_channel.save()
    item = change("change__feed_video_comment_add")
    post_webhook(body_of(FEED_PAGE, item, field="changes", time=1545829217))
    row = InboundMessage.objects.get()
    assert (row.status, row.external_id) == (InboundMessage.Status.TRIAGE, "comment:139560936755999_140077616693321")
    assert Ticket.objects.count() == 0


# On the Meta emulator: polling, sending, lookups, limits ----------------------------------------------

EMU_PAGE = "1001"


@pytest.fixture
def page(meta_emulator):
    return meta_emulator.add_page(EMU_PAGE, name="IT Help")


@pytest.fixture
def emu_adapter(meta_emulator, page):
    return emulator_facebook(meta_emulator, page, human_agent=True)


@pytest.fixture
def emu_channel(db, emu_adapter):
    return channel_of(emu_adapter, "fb-emulated")


def test_polled_dms_become_one_ticket_per_person_with_their_name(emu_channel, meta_emulator):
    meta_emulator.dm(EMU_PAGE, "my laptop won't boot", name="Ann Employee")
    meta_emulator.dm(EMU_PAGE, "it beeps three times", name="Ann Employee")
    meta_emulator.dm(EMU_PAGE, "VPN?", name="Ben Builder")
    assert poll_as_worker(emu_channel).stored == 3
    assert sorted(t.requester.display_name for t in Ticket.objects.all()) == ["Ann Employee", "Ben Builder"]
    ann = Ticket.objects.get(requester__display_name="Ann Employee")
    assert [m.body for m in ann.messages.timeline()] == ["my laptop won't boot", "it beeps three times"]
    assert poll_as_worker(emu_channel).stored == 0


def test_the_first_poll_imports_import_days_back_and_no_further(meta_emulator, page):
    meta_emulator.dm(EMU_PAGE, "last week", name="Ann Employee", at=hours_ago(24 * 6))
    meta_emulator.dm(EMU_PAGE, "last month", name="Ben Builder", at=hours_ago(24 * 30))
    adapter = emulator_facebook(meta_emulator, page)
    assert [e.text for e in envelopes_of(adapter.poll({}))] == ["last week"]
    adapter = emulator_facebook(meta_emulator, page, import_days=31)
    assert sorted(e.text for e in envelopes_of(adapter.poll({}))) == ["last month", "last week"]


def test_new_messages_in_an_old_conversation_are_polled_and_our_replies_are_not(emu_adapter, meta_emulator):
    meta_emulator.dm(EMU_PAGE, "printer jam", name="Ann Employee")
    pages = list(emu_adapter.poll({}))
    [envelope] = envelopes_of(pages)
    emu_adapter.send(target=ReplyTarget(thread_key=envelope.thread_key), text="Which floor?", key="r1")
    meta_emulator.dm(EMU_PAGE, "third floor", sender_id=envelope.sender.external_id)
    assert [e.text for e in envelopes_of(emu_adapter.poll(pages[-1].cursor))] == ["third floor"]


def test_polled_comments_thread_under_their_top_level_comment(emu_adapter, meta_emulator):
    post = meta_emulator.add_post(EMU_PAGE, "Maintenance tonight")["id"]
    top = meta_emulator.comment(EMU_PAGE, post, "will email be down?", name="Ann Employee")
    reply = meta_emulator.comment(EMU_PAGE, post, "same question", name="Ben Builder", parent_id=top["comment_id"])
    emu_adapter.send(
        target=ReplyTarget(thread_key=f"comment:{top['comment_id']}", mode="public"), text="No, only VPN.", key="r"
    )
    envelopes = envelopes_of(emu_adapter.poll({}))
    assert sorted((e.external_id, e.thread_key, e.text) for e in envelopes) == sorted(
        [
            (f"comment:{top['comment_id']}", f"comment:{top['comment_id']}", "will email be down?"),
            (f"comment:{reply['comment_id']}", f"comment:{top['comment_id']}", "same question"),
        ]
    )
    assert all(e.public and e.meta["post_id"] == post for e in envelopes)


@pytest.mark.django_db(transaction=True)
def test_a_poll_recovers_webhooks_lost_on_the_way_without_duplicates(live_server, meta_emulator, page):
    """The emulator registers the channel's URL after Meta's GET handshake, then loses two pushes on purpose."""
    channel = channel_of(emulator_facebook(meta_emulator, page), "fb-pushed")
    url = live_server.url + reverse("channels_ingest:webhook", args=[channel.public_id])
    assert meta_emulator.set_webhook(EMU_PAGE, url)["handshake"]["passed"]
    meta_emulator.drop_webhooks(2)
    for text in ["one", "two", "three", "four"]:
        meta_emulator.dm(EMU_PAGE, text, name="Ann Employee")
    post = meta_emulator.add_post(EMU_PAGE, "news")["id"]
    meta_emulator.comment(EMU_PAGE, post, "comment by webhook", name="Ben Builder")
    assert meta_emulator.wait_for_webhooks()
    assert sorted(InboundMessage.objects.values_list("payload__text", flat=True)) == [
        "comment by webhook",
        "four",
        "three",
    ]
    assert poll_as_worker(channel).stored == 2
    assert poll_as_worker(channel).stored == 0
    dm_ticket = Ticket.objects.get()  # the comment waits for triage
    assert [m.body for m in dm_ticket.messages.timeline()] == ["one", "two", "three", "four"]
    assert InboundMessage.objects.count() == 5


def test_a_reply_goes_out_as_a_response_and_a_human_agent_reply_with_its_tag(emu_adapter, meta_emulator):
    psid = meta_emulator.dm(EMU_PAGE, "help", name="Ann Employee", at=hours_ago(30))["sender_id"]
    target = ReplyTarget(thread_key=f"dm:{psid}", mode="human_agent")
    sent = emu_adapter.send(target=target, text="Sorry for the wait", key="r1")
    meta_emulator.dm(EMU_PAGE, "thanks", sender_id=psid)
    reply = emu_adapter.send(target=ReplyTarget(thread_key=f"dm:{psid}"), text="You're welcome", key="r2")
    dms = meta_emulator.sent(EMU_PAGE)
    assert [(d["id"], d["messaging_type"], d["tag"], d["text"]) for d in dms] == [
        (sent.external_id, "MESSAGE_TAG", "HUMAN_AGENT", "Sorry for the wait"),
        (reply.external_id, "RESPONSE", None, "You're welcome"),
    ]


def test_the_platform_refuses_what_its_windows_forbid_in_its_own_words(emu_adapter, meta_emulator):
    psid = meta_emulator.dm(EMU_PAGE, "help", name="Ann Employee", at=hours_ago(24 * 8))["sender_id"]
    with pytest.raises(PermanentError, match=r"Outside Messenger's reply window: .*allowed window.*code 10/2018278"):
        emu_adapter.send(target=ReplyTarget(thread_key=f"dm:{psid}"), text="hello?", key="r1")
    with pytest.raises(PermanentError, match="code 10/2018278"):
        emu_adapter.send(target=ReplyTarget(thread_key=f"dm:{psid}", mode="human_agent"), text="hello?", key="r2")
    assert meta_emulator.sent() == []


def test_a_page_without_the_human_agent_permission_is_refused(meta_emulator):
    page = meta_emulator.add_page("1002", human_agent=False)
    adapter = emulator_facebook(meta_emulator, page)
    psid = meta_emulator.dm("1002", "help", name="Ann Employee", at=hours_ago(30))["sender_id"]
    with pytest.raises(PermanentError, match="Human Agent"):
        adapter.send(target=ReplyTarget(thread_key=f"dm:{psid}", mode="human_agent"), text="hi", key="r")


def test_a_public_reply_answers_under_the_first_comment(emu_adapter, meta_emulator):
    post = meta_emulator.add_post(EMU_PAGE, "news")["id"]
    top = meta_emulator.comment(EMU_PAGE, post, "question", name="Ann Employee")["comment_id"]
    reply = meta_emulator.comment(EMU_PAGE, post, "me too", name="Ben Builder", parent_id=top)["comment_id"]
    target = ReplyTarget(thread_key=f"comment:{top}", mode="public", reply_to=f"comment:{reply}")
    sent = emu_adapter.send(target=target, text="Fixed now.", key="r")
    [record] = meta_emulator.sent(EMU_PAGE)
    assert (record["kind"], record["parent_id"], record["text"]) == ("comment_reply", top, "Fixed now.")
    assert sent == Sent(external_id=f"comment:{record['id']}")


def test_a_private_reply_moves_the_comment_to_dm_once(emu_adapter, meta_emulator):
    post = meta_emulator.add_post(EMU_PAGE, "news")["id"]
    comment = meta_emulator.comment(EMU_PAGE, post, "my account is locked", name="Ann Employee")
    target = ReplyTarget(
        thread_key=f"comment:{comment['comment_id']}",
        mode="private",
        reply_to=f"comment:{comment['comment_id']}",
        recipient=comment["sender_id"],
    )
    sent = emu_adapter.send(target=target, text="Let's sort it out here.", key="r1")
    [record] = meta_emulator.sent(EMU_PAGE)
    assert (record["kind"], record["comment_id"]) == ("private_reply", comment["comment_id"])
    assert sent == Sent(
        external_id=record["id"], thread_key=f"dm:{comment['sender_id']}", answered_meta={"private_reply_sent": True}
    )
    with pytest.raises(PermanentError, match="already has its private reply"):
        emu_adapter.send(target=target, text="again", key="r2")


def test_a_private_reply_after_7_days_is_refused(emu_adapter, meta_emulator):
    post = meta_emulator.add_post(EMU_PAGE, "news", at=hours_ago(24 * 9))["id"]
    comment = meta_emulator.comment(EMU_PAGE, post, "old", name="Ann Employee", at=hours_ago(24 * 8))
    target = ReplyTarget(
        thread_key=f"comment:{comment['comment_id']}", mode="private", reply_to=f"comment:{comment['comment_id']}"
    )
    with pytest.raises(PermanentError, match="Outside Messenger's reply window"):
        emu_adapter.send(target=target, text="late", key="r")


def test_replies_are_found_after_an_unknown_outcome(emu_adapter, meta_emulator):
    """Where each kind of reply went, ``find_sent`` looks: the conversation, the comment's replies, and the
    person's DM for a private reply."""
    since = datetime.now(UTC) - timedelta(seconds=1)
    psid = meta_emulator.dm(EMU_PAGE, "help", name="Ann Employee")["sender_id"]
    dm = ReplyTarget(thread_key=f"dm:{psid}")
    post = meta_emulator.add_post(EMU_PAGE, "news")["id"]
    comment = meta_emulator.comment(EMU_PAGE, post, "q", name="Ben Builder")
    public = ReplyTarget(thread_key=f"comment:{comment['comment_id']}", mode="public")
    private = ReplyTarget(
        thread_key=f"comment:{comment['comment_id']}",
        mode="private",
        reply_to=f"comment:{comment['comment_id']}",
        recipient=comment["sender_id"],
    )
    for target in (dm, public, private):
        assert emu_adapter.find_sent(target=target, text="answer", key="k", since=since) is None
        sent = emu_adapter.send(target=target, text="answer", key="k")
        assert emu_adapter.find_sent(target=target, text="answer", key="k", since=since) == sent
        assert emu_adapter.find_sent(target=target, text="other", key="k", since=since) is None


def test_an_answer_lost_after_the_send_is_an_unknown_outcome_and_then_found(emu_adapter, meta_emulator):
    psid = meta_emulator.dm(EMU_PAGE, "help", name="Ann Employee")["sender_id"]
    since = datetime.now(UTC)
    meta_emulator.fault_after_write("send", reset=True)
    target = ReplyTarget(thread_key=f"dm:{psid}")
    with pytest.raises(OutcomeUnknown):
        emu_adapter.send(target=target, text="on it", key="k")
    found = emu_adapter.find_sent(target=target, text="on it", key="k", since=since)
    assert found == Sent(external_id=meta_emulator.sent(EMU_PAGE)[0]["id"])


def test_throttling_codes_are_rate_limits_with_metas_wait(emu_adapter, meta_emulator):
    meta_emulator.set_budget(EMU_PAGE, calls=1, window_seconds=120)
    meta_emulator.dm(EMU_PAGE, "help", name="Ann Employee")
    with pytest.raises(RateLimited) as limited:
        list(emu_adapter.poll({}))
    assert "code 80001" in str(limited.value)
    assert 0 < limited.value.retry_after <= 121


@pytest.mark.parametrize("scope", [EMU_PAGE, "app"], ids=["page-usage", "app-usage"])
def test_usage_near_the_limit_stops_a_poll_after_the_page_in_hand(emu_adapter, meta_emulator, scope):
    """At 95% of a limit Meta still answers, and says no time to regain access (it is not lost yet): the poll
    keeps the page in hand and waits the default 5 minutes before it reads on."""
    for number in range(3):
        meta_emulator.dm(EMU_PAGE, f"message {number}", name=f"Person {number}")
    meta_emulator.set_usage(scope, 95)
    poll = emu_adapter.poll({})
    first = next(poll)  # the first conversation's page, kept
    with pytest.raises(RateLimited) as limited:
        next(poll)
    assert limited.value.retry_after == 300
    assert "95%" in str(limited.value)
    assert len(first.envelopes) == 1
    assert "dm_since" not in first.cursor  # the mark has not moved: the next poll reads it all again


def test_a_revoked_token_needs_reauthorizing(emu_adapter, meta_emulator, page):
    meta_emulator.revoke_token(page["token"])
    with pytest.raises(CredentialsError, match="re-authorize needed"):
        emu_adapter.check_credentials()
    with pytest.raises(CredentialsError):
        list(emu_adapter.poll({}))
    with pytest.raises(CredentialsError):
        emu_adapter.send(target=ReplyTarget(thread_key="dm:1"), text="hi", key="k")


def test_server_errors_are_transient(emu_adapter, meta_emulator):
    meta_emulator.fault("conversations", status=500, code=1, message="An unknown error occurred")
    with pytest.raises(TransientError):
        list(emu_adapter.poll({}))


def test_attachments_go_both_ways(emu_adapter, meta_emulator):
    image = b"\x89PNG\r\n\x1a\n" + b"pixels" * 1000
    meta_emulator.dm(
        EMU_PAGE, "screenshot", name="Ann Employee", attachments=[{"content": image, "mime_type": "image/png"}]
    )
    [envelope] = envelopes_of(emu_adapter.poll({}))
    [attachment] = envelope.attachments
    assert (attachment.content_type, attachment.size) == ("image/png", len(image))
    assert b"".join(emu_adapter.fetch_attachment(attachment.ref)) == image
    target = ReplyTarget(thread_key=envelope.thread_key)
    emu_adapter.send_attachment(target=target, file=OutboundFile("fix.pdf", "application/pdf", b"%PDF-1.4"))
    [record] = meta_emulator.sent(EMU_PAGE)
    assert record["attachments"][0]["type"] == "file"
    assert b"".join(emu_adapter.fetch_attachment(record["attachments"][0]["url"])) == b"%PDF-1.4"


def test_name_lookups_are_best_effort_and_never_raise(emu_adapter, meta_emulator, page):
    psid = meta_emulator.dm(EMU_PAGE, "hi", name="Ann Employee")["sender_id"]
    meta_emulator.revoke_token(page["token"])
    senders = [Sender(namespace=f"facebook:{EMU_PAGE}", external_id=psid), Sender(namespace="x", external_id="../me")]
    assert emu_adapter.describe_senders(senders) == {}


@pytest.mark.django_db(transaction=True)
def test_a_reply_is_reported_delivered_and_read(live_server, meta_emulator, page, agent):
    """Employee DM → ticket → agent reply → the emulator received it → Messenger's delivery and read webhooks."""
    channel = channel_of(emulator_facebook(meta_emulator, page), "fb-receipts")
    url = live_server.url + reverse("channels_ingest:webhook", args=[channel.public_id])
    assert meta_emulator.set_webhook(EMU_PAGE, url)["handshake"]["passed"]
    meta_emulator.dm(EMU_PAGE, "my screen flickers", name="Ann Employee")
    assert meta_emulator.wait_for_webhooks()
    reply = reply_and_deliver(Ticket.objects.get(), agent, "Which monitor?")
    [record] = meta_emulator.sent(EMU_PAGE)
    assert (reply.delivery_status, reply.external_id, record["text"]) == (
        Message.DeliveryStatus.SENT,
        record["id"],
        "Which monitor?",
    )
    assert meta_emulator.wait_for_webhooks()
    reply.refresh_from_db()
    assert reply.delivery_status == Message.DeliveryStatus.READ


@pytest.mark.django_db(transaction=True)
def test_edits_reactions_and_removed_comments_reach_the_stored_messages(live_server, meta_emulator, page):
    channel = channel_of(emulator_facebook(meta_emulator, page), "fb-changes")
    channel.config["triage"] = {"auto_ticket": "all"}  # comments open tickets at once here
    channel.save()
    url = live_server.url + reverse("channels_ingest:webhook", args=[channel.public_id])
    assert meta_emulator.set_webhook(EMU_PAGE, url)["handshake"]["passed"]
    dm = meta_emulator.dm(EMU_PAGE, "printer on flor 3", name="Ann Employee")
    meta_emulator.edit_dm(EMU_PAGE, dm["mid"], "printer on floor 3")
    meta_emulator.react(EMU_PAGE, dm["mid"], dm["sender_id"], emoji="👍")
    post = meta_emulator.add_post(EMU_PAGE, "news")["id"]
    comment = meta_emulator.comment(EMU_PAGE, post, "wifi down", name="Ben Builder")["comment_id"]
    meta_emulator.edit_comment(EMU_PAGE, comment, "wifi down in B")
    gone = meta_emulator.comment(EMU_PAGE, post, "oops, wrong page", name="Ben Builder")["comment_id"]
    meta_emulator.remove_comment(EMU_PAGE, gone)
    assert meta_emulator.wait_for_webhooks()
    message = Message.objects.get(external_id=dm["mid"])
    assert (message.body, message.edited_at is not None) == ("printer on floor 3", True)
    assert message.reactions == {f"facebook:{EMU_PAGE}:{dm['sender_id']}": "👍"}
    assert Message.objects.get(external_id=f"comment:{comment}").body == "wifi down in B"
    assert Message.objects.get(external_id=f"comment:{gone}").deleted_at is not None


def test_malformed_polled_items_are_failed_rows_and_the_poll_goes_on(db, canned_platform):
    """Odd conversations, messages and comments (ids, times, types) are kept failed with what Meta sent; the good
    ones beside them arrive, and the next poll stores nothing twice."""
    adapter = facebook_adapter(PAGE, base_url=canned_platform.url.rstrip("/"))
    channel = channel_of(adapter, "fb-canned")
    now = datetime.now(UTC)
    created = (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S+0000")
    good_conversation = {"id": "t_1", "updated_time": created}
    odd_conversations = [{"id": "t_2", "updated_time": "soon"}, {"id": "../me", "updated_time": created}, "t_3"]
    good_message = {
        "id": "m_good",
        "message": "vpn down",
        "from": {"id": PERSON, "name": "Ann"},
        "created_time": created,
    }
    odd_messages = [
        {**good_message, "id": "m_future", "created_time": "5138-11-16T09:46:40+0000"},
        {**good_message, "id": ["m_list"]},
        {**good_message, "id": "m_nofrom", "from": None},
        {**good_message, "id": "m_text", "message": {"text": "x"}},
        "not a message",
    ]
    good_comment = {"id": "1_2", "message": "help", "from": {"id": "77", "name": "Ben"}, "created_time": created}
    odd_comments = [
        {**good_comment, "id": "1_3", "created_time": 1665183228.5},
        {**good_comment, "id": "1_4", "parent": "1_2"},
    ]
    canned_platform.answer(f"/{PAGE}/conversations", {"data": [good_conversation, *odd_conversations]})
    canned_platform.answer("/t_1/messages", {"data": [good_message, *odd_messages]})
    canned_platform.answer(f"/{PAGE}/posts", {"data": [{"id": "1", "created_time": created}]})
    canned_platform.answer("/1/comments", {"data": [good_comment, *odd_comments]})

    outcome = poll_as_worker(channel)
    assert not outcome.error
    assert sorted(
        InboundMessage.objects.filter(status=InboundMessage.Status.PROCESSED).values_list("external_id", flat=True)
    ) == ["m_good"]
    assert InboundMessage.objects.get(external_id="comment:1_2").status == InboundMessage.Status.TRIAGE
    failed = InboundMessage.objects.filter(status=InboundMessage.Status.FAILED)
    assert sorted(json.dumps(row.payload["raw"], sort_keys=True) for row in failed) == sorted(
        json.dumps(item, sort_keys=True) for item in [*odd_conversations, *odd_messages, *odd_comments]
    )
    assert poll_as_worker(channel).stored == 0
    assert failed.count() == len(odd_conversations) + len(odd_messages) + len(odd_comments)


def test_a_page_without_its_data_list_is_a_failed_row_and_what_it_hid_is_read_next_time(db, canned_platform):
    """Meta's answer kept whole; the comments are still polled, and the DM mark stays where it was, so the
    conversations that page should have listed are read once Meta lists them again."""
    channel = channel_of(facebook_adapter(PAGE, base_url=canned_platform.url.rstrip("/")), "fb-canned")
    created = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S+0000")
    broken = {"data": {"id": "t_1"}, "paging": {}}
    canned_platform.answer(f"/{PAGE}/conversations", broken)
    canned_platform.answer(
        "/t_1/messages",
        {"data": [{"id": "m_1", "message": "vpn down", "from": {"id": PERSON}, "created_time": created}]},
    )
    canned_platform.answer(f"/{PAGE}/posts", {"data": [{"id": "1", "created_time": created}]})
    canned_platform.answer(
        "/1/comments", {"data": [{"id": "1_2", "message": "help", "from": {"id": "77"}, "created_time": created}]}
    )

    outcome = poll_as_worker(channel)
    assert not outcome.error
    failed = InboundMessage.objects.get(status=InboundMessage.Status.FAILED)
    assert failed.payload["raw"] == broken
    assert "without a data list" in failed.error
    assert InboundMessage.objects.filter(external_id="comment:1_2").exists()

    canned_platform.answer(f"/{PAGE}/conversations", {"data": [{"id": "t_1", "updated_time": created}]})
    assert not poll_as_worker(channel).error
    assert Message.objects.get(external_id="m_1").body == "vpn down"


@pytest.mark.django_db
def test_after_its_private_reply_a_comment_offers_only_a_public_one(meta_emulator, page, agent):
    """The desk remembers the private reply on the comment, so the composer says so before Meta would refuse."""
    channel = channel_of(emulator_facebook(meta_emulator, page), "fb-private")
    channel.config["triage"] = {"auto_ticket": "all"}
    channel.save(update_fields=["config"])
    post = meta_emulator.add_post(EMU_PAGE, "Maintenance tonight")["id"]
    meta_emulator.comment(EMU_PAGE, post, "will the VPN be down too?", name="Ann Employee")
    poll_as_worker(channel)
    ticket = Ticket.objects.get()
    comment_thread = ticket.threads.get()

    reply = reply_and_deliver(ticket, agent, "Yes, 22:00-23:00. Anything urgent?", mode="private")

    assert reply.delivery_status == Message.DeliveryStatus.SENT
    modes = {mode.key: mode for mode in reply_modes(ticket, comment_thread)}
    assert modes["public"].allowed
    assert not modes["private"].allowed
    assert "already sent" in modes["private"].reason
    assert sorted(key.split(":")[0] for key in ticket.threads.values_list("key", flat=True)) == ["comment", "dm"]


def test_people_are_named_from_their_profiles(emu_adapter, meta_emulator):
    psid = meta_emulator.dm(EMU_PAGE, "hi", name="Ann Employee")["sender_id"]
    namespace = f"facebook:{EMU_PAGE}"
    found = emu_adapter.describe_senders([Sender(namespace=namespace, external_id=psid)])
    assert found[psid].display_name == "Ann Employee"
