"""The WhatsApp Cloud API adapter: recorded webhooks in (signed as Meta signs them), envelopes out; reply windows
and templates; sends, uploads and error words against a Graph API that answers what each test says."""

import hashlib
import hmac
import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import time_machine
from django.urls import reverse

from channel_adapters.base import (
    ConfigError,
    CredentialsError,
    DeliveryReport,
    Envelope,
    EnvelopeKind,
    InvalidWebhook,
    OutboundFile,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    ReplyTarget,
    TransientError,
)
from channel_adapters.meta.whatsapp import WhatsAppAdapter
from channels_ingest.channel_config import clean_channel_config
from channels_ingest.models import Channel, InboundMessage
from tests.helpers import PushInbox, reply_and_deliver
from tickets.models import Attachment, Message, Ticket
from tickets.replies import ReplyError, reply_modes, reply_to_ticket

FIXTURES = Path(__file__).parent / "fixtures" / "whatsapp"
SECRET = "test-app-secret"
#: The pywa test that recorded webhook__text_signed.raw.json gives this (already reset) app secret and header.
RECORDED_SECRET = "1222e786b144d0e85b9f365372d93676"
RECORDED_SIGNATURE = "sha256=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441"
NUMBER_ID, WABA_ID = "1122334455667", "1234567890987654321"


def fixture(name) -> bytes:
    """A recorded payload, byte for byte (``<event>__<variant>``; ``.raw.json`` ones are kept exact)."""
    path = FIXTURES / f"{name}.json"
    return (path if path.exists() else FIXTURES / f"{name}.raw.json").read_bytes()


def sign(body: bytes, secret=SECRET) -> dict:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def adapter(number_id=NUMBER_ID, waba_id=WABA_ID, state=None, base_url="https://graph.facebook.com/v25.0"):
    config, secrets = WhatsAppAdapter.split_config(
        {
            "phone_number_id": number_id,
            "waba_id": waba_id,
            "access_token": "EAAG-test",
            "app_secret": SECRET,
            "verify_token": "verify-me",
            "base_url": base_url,
        }
    )
    return WhatsAppAdapter(config=config, secrets=secrets, state=state)


def recorded_on(body: bytes) -> WhatsAppAdapter:
    """A channel for the account and number a fixture was recorded on (the sources use several, and
    placeholders, which an admin could not configure: the adapter is built without ``split_config``)."""
    entry = json.loads(body)["entry"][0]
    metadata = entry["changes"][0]["value"].get("metadata", {})
    return WhatsAppAdapter(
        config={"phone_number_id": metadata.get("phone_number_id", NUMBER_ID), "waba_id": entry["id"]},
        secrets={"app_secret": SECRET, "access_token": "t", "verify_token": "v"},
    )


def receive(name, channel=None):
    body = fixture(name)
    result = (channel or recorded_on(body)).handle_webhook(headers=sign(body), body=body)
    assert result.status == 200
    for envelope in result.envelopes:
        assert Envelope.from_json(json.loads(json.dumps(envelope.to_json()))) == envelope
    return result


def only(name, channel=None) -> Envelope:
    result = receive(name, channel)
    assert not result.rejected
    [envelope] = result.envelopes
    return envelope


def message_body(*messages, number_id=NUMBER_ID, waba_id=WABA_ID, contacts=None, statuses=None) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": number_id},
        "contacts": contacts if contacts is not None else [{"profile": {"name": "Ana"}, "wa_id": "4915112345678"}],
        "messages": list(messages),
    }
    if statuses is not None:
        value["statuses"] = statuses
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": [{"value": value, "field": "messages"}]}],
        }
    ).encode()


def text_message(body="printer on fire", wamid="wamid.A1", sender="4915112345678", timestamp="1730231903"):
    return {"from": sender, "id": wamid, "timestamp": timestamp, "type": "text", "text": {"body": body}}


def push(channel, body):
    return channel.handle_webhook(headers=sign(body), body=body)


# Signatures ---------------------------------------------------------------------------------------


def test_the_recorded_signed_body_verifies_with_its_real_secret():
    """Meta signs the raw bytes: the recorded header verifies against the fixture exactly as stored."""
    body = fixture("webhook__text_signed")
    channel = WhatsAppAdapter(
        config={"phone_number_id": "277321005464405", "waba_id": "264937493375603"},
        secrets={"app_secret": RECORDED_SECRET},
    )
    result = channel.handle_webhook(headers={"X-Hub-Signature-256": RECORDED_SIGNATURE}, body=body)

    [envelope] = result.envelopes
    assert envelope.external_id == "wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA"
    assert envelope.kind == EnvelopeKind.MESSAGE
    assert envelope.text == "Hey there! I am using PyWa."
    assert envelope.thread_key == "wa:972544401243"
    assert envelope.sent_at == datetime(2024, 10, 29, 19, 58, 23, tzinfo=UTC)
    assert (envelope.sender.namespace, envelope.sender.external_id) == ("whatsapp:277321005464405", "972544401243")
    assert (envelope.sender.handle, envelope.sender.display_name) == ("+972544401243", "PyWa Tests")
    assert envelope.reopens is False


def test_a_changed_byte_or_another_secret_is_forged():
    body = fixture("webhook__text_signed")
    channel = WhatsAppAdapter(
        config={"phone_number_id": "277321005464405", "waba_id": "264937493375603"},
        secrets={"app_secret": RECORDED_SECRET},
    )
    with pytest.raises(InvalidWebhook) as tampered:
        channel.handle_webhook(headers={"X-Hub-Signature-256": RECORDED_SIGNATURE}, body=body.replace(b"Hey", b"Hay"))
    assert tampered.value.status == 403
    with pytest.raises(InvalidWebhook) as other_secret:
        channel.handle_webhook(headers=sign(body, "another-secret"), body=body)
    assert other_secret.value.status == 403


def test_an_unsigned_body_is_refused_before_it_is_read():
    with pytest.raises(InvalidWebhook) as unsigned:
        adapter().handle_webhook(headers={}, body=fixture("webhook__text"))
    assert unsigned.value.status == 401
    # Not JSON, and forged: refused as forged, never parsed.
    with pytest.raises(InvalidWebhook) as forged:
        adapter().handle_webhook(headers={"X-Hub-Signature-256": "sha256=00"}, body=b"{not json")
    assert forged.value.status == 403


def test_a_channel_without_an_app_secret_accepts_no_webhook():
    """An empty secret would let anyone sign (HMAC with an empty key)."""
    channel = WhatsAppAdapter(config={"phone_number_id": NUMBER_ID, "waba_id": WABA_ID}, secrets={"app_secret": ""})
    body = fixture("webhook__text")
    with pytest.raises(InvalidWebhook) as refused:
        channel.handle_webhook(headers=sign(body, ""), body=body)
    assert refused.value.status == 403


def test_the_subscription_handshake_echoes_the_challenge_for_our_verify_token():
    channel = adapter()
    answer = channel.verify_subscription(
        {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "42"}
    )
    assert (answer.status, answer.body) == (200, "42")
    with pytest.raises(InvalidWebhook) as wrong:
        channel.verify_subscription({"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "42"})
    assert wrong.value.status == 403
    with pytest.raises(InvalidWebhook) as not_subscribe:
        channel.verify_subscription({"hub.verify_token": "verify-me"})
    assert not_subscribe.value.status == 400


# Messages -----------------------------------------------------------------------------------------


def test_every_recorded_webhook_is_acknowledged_and_none_is_rejected():
    """Meta stops delivering to an endpoint that keeps failing: every recorded shape gets a 200."""
    names = sorted(
        p.name.split(".")[0] for p in FIXTURES.glob("*.json") if p.name.startswith(("webhook__", "status__"))
    )
    assert len(names) == 42
    for name in names:
        assert not receive(name).rejected, name


def test_a_text_message_opens_a_chat_with_the_sender_named_from_contacts():
    envelope = only("webhook__text")
    assert (envelope.external_id, envelope.kind, envelope.text) == ("wamid.xyzxyz", EnvelopeKind.MESSAGE, "Body Text")
    assert envelope.thread_key == "wa:972987654321"
    assert envelope.starts_thread
    assert not envelope.public
    assert envelope.reopens is False
    assert envelope.sender.namespace == "whatsapp:1122334455667"
    assert (envelope.sender.external_id, envelope.sender.handle, envelope.sender.display_name) == (
        "972987654321",
        "+972987654321",
        "Test Name",
    )
    assert envelope.sent_at == datetime.fromtimestamp(1697043223, UTC)
    assert envelope.meta == {}


def test_wamids_are_base64_and_keep_their_slashes_and_pluses():
    [envelope] = push(
        adapter(), message_body(text_message(wamid="wamid.FQIAEhgUu7FvKWGAp3x7/ytN0nY/Bf8Y+SPR2H="))
    ).envelopes
    assert envelope.external_id == "wamid.FQIAEhgUu7FvKWGAp3x7/ytN0nY/Bf8Y+SPR2H="


def test_a_quoted_reply_and_forwards_are_kept_in_meta():
    assert only("webhook__text_reply_context").meta == {"in_reply_to": "wamid.xyzxyz=="}
    assert only("webhook__text_forwarded").meta == {"forwarded": True}
    assert only("webhook__text_forwarded_many_times").meta == {"forwarded": True, "frequently_forwarded": True}


def test_a_message_from_an_ad_keeps_where_it_came_from():
    envelope = only("webhook__text_ad_referral")
    assert envelope.text == "BODY"
    assert envelope.meta["referral"] == {
        "source_type": "ad or post",
        "source_url": "AD_OR_POST_FB_URL",
        "headline": "AD_TITLE",
    }


@pytest.mark.parametrize(
    ("name", "text", "file_name", "content_type", "ref"),
    [
        ("webhook__image", "", "image-65463453.jpg", "image/jpeg", "media:65463453"),
        ("webhook__image_with_url", "", "image-65463453.jpg", "image/jpeg", "media:65463453"),
        ("webhook__video", "caption", "video-765756756.mp4", "video/mp4", "media:765756756"),
        ("webhook__audio", "", "audio-1234567890987654321.ogg", "audio/ogg", "media:1234567890987654321"),
        ("webhook__voice", "", "voice-message-1234567890987654321.ogg", "audio/ogg", "media:1234567890987654321"),
        ("webhook__document_forwarded", "caption", "filename.pdf", "application/pdf", "media:1234567890987654321"),
        ("webhook__sticker", "", "sticker-1234567890987654321.webp", "image/webp", "media:1234567890987654321"),
        (
            "webhook__sticker_animated",
            "",
            "animated-sticker-1234567890987654321.webp",
            "image/webp",
            "media:1234567890987654321",
        ),
    ],
)
def test_media_arrive_as_files_fetched_by_media_id_with_the_caption_as_text(name, text, file_name, content_type, ref):
    envelope = only(name)
    assert envelope.kind == EnvelopeKind.MESSAGE
    assert envelope.text == text
    [attachment] = envelope.attachments
    assert (attachment.name, attachment.content_type, attachment.size, attachment.ref) == (
        file_name,
        content_type,
        0,  # WhatsApp's webhooks declare no size
        ref,
    )


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "webhook__location_chosen",
            "Shared a location: Facebook HQ, 1 Hacker Way, Menlo Park, CA 94025 (37.4611978, -122.2164385) "
            "https://maps.google.com/?cid=2000000000000000000",
        ),
        (
            "webhook__location_current",
            "Shared a location: (12.25089, 43.90539) https://maps.google.com/?q=12.25089,43.90539",
        ),
        (
            "webhook__contacts",
            "Shared contacts:\n- Chandler Bing: +1 555-555-5555 (CELL)\n- Monica: +1 666-666-6666 (HOME)\n"
            "- Rachel Green: +1 777-777-7777 (WORK)",
        ),
        ("webhook__interactive_button_reply", "Chose: title"),
        ("webhook__interactive_list_reply", "Chose: title (description)"),
        ("webhook__template_quick_reply_button", "Pressed the button: title"),
        ("webhook__system_identity_change", "[WhatsApp notice: User identity changed]"),
        ("webhook__system_phone_number_change", "[WhatsApp notice: User A changed from 972987654321 to 972912345678]"),
        (
            "webhook__unsupported",
            "[unsupported message type: unsupported (Message type unknown: Message type is currently not supported. "
            "(code 131051))]",
        ),
        (
            "webhook__unsupported_with_type",
            "[unsupported message type: pool (Message type unknown: Message type is currently not supported. "
            "(code 131051))]",
        ),
        (
            "webhook__unknown_type_131051",
            "[unsupported message type: unknown (Unsupported message type: Message type is not currently supported "
            "(code 131051))]",
        ),
        (
            "webhook__interactive_without_body",
            "[unsupported message type: interactive (Something went wrong: Unsupported webhook payload (code 131000))]",
        ),
    ],
)
def test_other_message_types_become_text_an_agent_reads(name, text):
    """Locations, contacts, button and list replies read as sentences; what WhatsApp could not pass on is
    said, never dropped."""
    envelope = only(name)
    assert envelope.kind == EnvelopeKind.MESSAGE
    assert envelope.text == text
    assert not envelope.attachments


def test_reactions_and_their_removal_target_the_message():
    added = only("webhook__reaction")
    assert added.kind == EnvelopeKind.REACTION
    assert added.target_id == "wamid.yzxyzx="
    assert added.meta == {"emoji": "😮", "removed": False}
    assert added.external_id == "wamid.yzxyzx=:reaction:972987654321:react:1697044456"
    assert added.thread_key == "wa:972987654321"
    removed = only("webhook__reaction_removed")
    assert removed.meta == {"emoji": "", "removed": True}
    assert removed.external_id == "wamid.yzxyzx=:reaction:972987654321:unreact:1697044456"


def test_an_edit_carries_the_new_caption_and_names_the_original():
    envelope = only("webhook__edit_image_caption")
    original = "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
    assert envelope.kind == EnvelopeKind.EDIT
    assert envelope.target_id == original
    assert envelope.external_id == f"{original}:edit:wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="
    assert envelope.text == "Updated image caption"
    assert envelope.thread_key == "wa:16505551234"


def test_an_edited_text_message_is_an_edit():
    edit = {
        "from": "4915112345678",
        "id": "wamid.E2",
        "timestamp": "1730232000",
        "type": "edit",
        "edit": {"original_message_id": "wamid.A1", "message": {"type": "text", "text": {"body": "printer fixed"}}},
    }
    [envelope] = push(adapter(), message_body(edit)).envelopes
    assert (envelope.kind, envelope.target_id, envelope.text) == (EnvelopeKind.EDIT, "wamid.A1", "printer fixed")


def test_a_revoked_message_is_a_deletion():
    envelope = only("webhook__revoke_deleted")
    assert envelope.kind == EnvelopeKind.DELETE
    assert envelope.target_id == "<ORIGINAL_WHATSAPP_MESSAGE_ID>"
    assert envelope.external_id == "<ORIGINAL_WHATSAPP_MESSAGE_ID>:delete"


def test_a_redelivered_webhook_gives_the_same_ids():
    """Ids come from the events, never from the delivery, so a retry by Meta is stored once."""
    first = [e.external_id for e in receive("webhook__reaction").envelopes + receive("status__read").envelopes]
    again = [e.external_id for e in receive("webhook__reaction").envelopes + receive("status__read").envelopes]
    assert first == again


# Noise, and what is not this channel's -----------------------------------------------------------


def test_echoes_of_the_business_app_are_skipped(caplog):
    with caplog.at_level("INFO"):
        result = receive("webhook__smb_message_echo_text")
    assert (result.envelopes, result.rejected) == ([], [])
    assert any("echo" in record.getMessage() for record in caplog.records)


def test_a_message_from_our_own_number_is_skipped():
    """The metadata names our number; a message from it is ours."""
    [envelope] = push(
        adapter(), message_body(text_message(sender="15550001111"), text_message(wamid="wamid.A2"))
    ).envelopes
    assert envelope.external_id == "wamid.A2"


@pytest.mark.parametrize("name", ["webhook__template_status_approved", "webhook__template_status_rejected"])
def test_template_status_updates_are_logged_not_stored(name, caplog):
    with caplog.at_level("INFO"):
        result = receive(name)
    assert (result.envelopes, result.rejected) == ([], [])
    assert any("template" in r.getMessage() and "Check credentials" in r.getMessage() for r in caplog.records)


def test_entries_for_another_number_or_account_are_ignored_with_a_log_line(caplog):
    with caplog.at_level("WARNING"):
        other_number = push(adapter(), message_body(text_message(), number_id="999"))
        other_account = push(adapter(), message_body(text_message(), waba_id="888"))
    assert other_number.envelopes == other_account.envelopes == []
    assert other_number.status == other_account.status == 200
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "phone number 999" in logged
    assert "account 888" in logged


def test_unknown_fields_are_acknowledged_and_logged(caplog):
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"field": "account_update", "value": {"event": "VERIFIED"}}]}],
        }
    ).encode()
    with caplog.at_level("INFO"):
        result = push(adapter(), body)
    assert (result.status, result.envelopes, result.rejected) == (200, [], [])
    assert any("account_update" in r.getMessage() for r in caplog.records)


# Delivery reports ---------------------------------------------------------------------------------


def test_sent_is_not_news():
    assert receive("status__sent").envelopes == []


def test_sent_with_our_key_is_a_report_that_can_confirm_an_unanswered_send():
    [envelope] = receive("status__sent_with_biz_opaque_callback_data").envelopes
    assert (envelope.kind, envelope.meta) == (EnvelopeKind.STATUS, {"status": DeliveryReport.SENT, "key": "some data"})
    assert envelope.target_id == "wamid.xyzxyz"


@pytest.mark.parametrize(
    ("name", "report"),
    [
        ("status__delivered", DeliveryReport.DELIVERED),
        ("status__read", DeliveryReport.READ),
        ("status__played", DeliveryReport.READ),
    ],
)
def test_delivered_and_read_reports_name_our_reply(name, report):
    envelope = only(name)
    state = json.loads(fixture(name))["entry"][0]["changes"][0]["value"]["statuses"][0]["status"]
    assert envelope.kind == EnvelopeKind.STATUS
    assert (envelope.target_id, envelope.external_id) == ("wamid.xyzxyz", f"wamid.xyzxyz:{state}")
    assert envelope.thread_key == "wa:972987654321"
    assert envelope.meta == {"status": report}
    assert envelope.sender is None


def test_a_failed_report_carries_whatsapps_words():
    envelope = only("status__failed")
    assert envelope.meta["status"] == DeliveryReport.FAILED
    assert envelope.meta["error"] == (
        "User's number is part of an experiment: Failed to send message because this user's phone number is "
        "part of an experiment (code 130472)"
    )
    assert envelope.meta["error_code"] == 130472
    terse = only("status__failed_131053")
    assert (terse.target_id, terse.thread_key) == ("amid.ID", "wa:CUSTOMER_PHONE_NUMBER")
    assert (terse.meta["error"], terse.meta["error_code"]) == ("ERROR_TITLE (code 131053)", 131053)


def test_a_report_on_a_group_message_is_ignored():
    """This channel never sends to groups."""
    assert receive("status__read_group").envelopes == []


def test_a_status_carries_the_delivery_key_sent_with_the_reply():
    status = {
        "id": "wamid.OUT1",
        "status": "delivered",
        "timestamp": "1730231903",
        "recipient_id": "4915112345678",
        "biz_opaque_callback_data": "reply-17",
    }
    [envelope] = push(adapter(), message_body(statuses=[status])).envelopes
    assert envelope.meta == {"status": DeliveryReport.DELIVERED, "key": "reply-17"}


# Malformed ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"object": "page", "entry": []}',
        b'{"object": "whatsapp_business_account"}',
        b'{"object": "whatsapp_business_account", "entry": {}}',
        b"[" * 100_000,
    ],
)
def test_a_body_that_is_no_whatsapp_webhook_is_a_400(body):
    with pytest.raises(InvalidWebhook) as refused:
        adapter().handle_webhook(headers=sign(body), body=body)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"from": "4915112345678", "id": "wamid.B", "timestamp": "1730231903", "type": "text"}, "text.body"),
        ({"from": "4915112345678", "id": "wamid.B", "timestamp": "soon", "type": "text"}, "timestamp"),
        ({"from": "4915112345678", "id": "wamid.B", "timestamp": "99999999999", "type": "text"}, "timestamp"),
        ({"from": ["x"], "id": "wamid.B", "timestamp": "1730231903", "type": "text"}, "from"),
        ({"from": "4915112345678", "id": "wamid.B", "timestamp": "1730231903"}, "type"),
        (
            {"from": "4915112345678", "id": "wamid.B", "timestamp": "1730231903", "type": "image", "image": {}},
            "media id",
        ),
        ({"from": "4915112345678", "id": "wamid.B", "timestamp": "1730231903", "type": "reaction"}, "message_id"),
        ({"from": "4915112345678", "id": "wamid.B", "timestamp": "1730231903", "type": "location"}, "coordinates"),
        ("a string", "not an object"),
    ],
)
def test_a_malformed_message_is_rejected_with_its_raw_item_and_the_rest_arrive(item, reason):
    result = push(adapter(), message_body(item, text_message(wamid="wamid.OK")))
    assert [e.external_id for e in result.envelopes] == ["wamid.OK"]
    [rejected] = result.rejected
    assert reason in rejected.reason
    assert rejected.raw == item


def test_malformed_entries_changes_and_statuses_are_rejected_not_fatal():
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                "odd",
                {"id": WABA_ID, "changes": ["odd", {"field": "messages", "value": None}]},
                json.loads(message_body(statuses=[{"id": "wamid.S", "status": "read"}]))["entry"][0],
            ],
        }
    ).encode()
    result = push(adapter(), body)
    assert result.status == 200
    assert [r.reference for r in result.rejected] == ["entry", "change", "change", "wamid.S"]


# Configuration ------------------------------------------------------------------------------------


def test_split_config_keeps_the_three_secrets_apart_and_fills_in_defaults():
    config, secrets = WhatsAppAdapter.split_config(
        {"phone_number_id": 1122334455667, "waba_id": "42", "access_token": "a", "app_secret": "b", "verify_token": "c"}
    )
    assert config == {
        "phone_number_id": "1122334455667",
        "waba_id": "42",
        "base_url": "https://graph.facebook.com/v25.0",
    }
    assert secrets == {"access_token": "a", "app_secret": "b", "verify_token": "c"}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"phone_number_id": None}, "phone_number_id"),
        ({"phone_number_id": "+1 555 0100"}, "not the phone number"),
        ({"waba_id": ""}, "waba_id"),
        ({"access_token": ""}, "access_token"),
        ({"app_secret": None}, "app_secret"),
        ({"verify_token": 7}, "verify_token"),
        ({"base_url": "graph.facebook.com"}, "base_url"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": True}, "timeout"),
    ],
)
def test_split_config_refuses_what_cannot_work(change, words):
    raw = {"phone_number_id": "1", "waba_id": "2", "access_token": "a", "app_secret": "b", "verify_token": "c"}
    with pytest.raises(ConfigError, match=words):
        WhatsAppAdapter.split_config({**raw, **change})


def test_polling_limits_say_that_whatsapp_cannot_be_polled():
    assert "no API to read messages" in WhatsAppAdapter.polling_limits({})
    assert "poll" not in {str(c) for c in WhatsAppAdapter.capabilities}
    assert WhatsAppAdapter.finds_sent is False


# Reply modes --------------------------------------------------------------------------------------

TEMPLATES = [
    {"name": "ticket_update", "language": "en_US", "category": "UTILITY", "body": "Hi {{1}}, ticket {{2}} is {{3}}."},
    {"name": "still_there", "language": "de", "category": "UTILITY", "body": "Sind Sie noch da?"},
]
WROTE = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def chat(**extra):
    return ReplyTarget(thread_key="wa:4915112345678", reply_to="wamid.A1", last_inbound_at=WROTE, **extra)


def test_inside_the_window_a_reply_is_allowed_until_it_closes():
    with time_machine.travel(WROTE + timedelta(hours=23, minutes=59), tick=False):
        [reply, *templates] = adapter(state={"templates": TEMPLATES}).reply_modes(chat())
    assert (reply.key, reply.label, reply.allowed, reply.max_length) == ("", "Reply", True, 4096)
    assert reply.expires_at == WROTE + timedelta(hours=24)
    assert reply.attachments.max_files > 0
    assert reply.attachments.max_bytes == 100 * 1024 * 1024
    assert [t.key for t in templates] == ["template:ticket_update:en_US", "template:still_there:de"]


def test_after_the_window_only_templates_are_allowed():
    with time_machine.travel(WROTE + timedelta(hours=24, minutes=1), tick=False):
        [reply, update, still] = adapter(state={"templates": TEMPLATES}).reply_modes(chat())
    assert not reply.allowed
    assert "closed at 2026-03-03 09:30 UTC" in reply.reason
    assert "template" in reply.reason
    assert (update.allowed, update.label, update.template_body) == (
        True,
        'Template "ticket_update" (en_US)',
        "Hi {{1}}, ticket {{2}} is {{3}}.",
    )
    assert update.attachments is None
    assert update.expires_at is None
    assert (still.label, still.template_body) == ('Template "still_there" (de)', "Sind Sie noch da?")


def test_after_the_window_without_templates_the_reason_says_what_to_do():
    with time_machine.travel(WROTE + timedelta(days=3), tick=False):
        [reply] = adapter().reply_modes(chat())
    assert not reply.allowed
    assert "has none" in reply.reason
    assert "Check credentials" in reply.reason


def test_without_a_known_last_message_the_reply_is_offered_and_whatsapp_decides():
    [reply] = adapter().reply_modes(ReplyTarget(thread_key="wa:4915112345678"))
    assert reply.allowed
    assert reply.expires_at is None


def test_a_templates_length_is_its_body_filled_with_the_agents_lines():
    channel = adapter(state={"templates": TEMPLATES})
    assert channel.reply_length("Ana\n#42\nsolved", "template:ticket_update:en_US") == len(
        "Hi Ana, ticket #42 is solved."
    )
    assert channel.reply_length("hello", "") == 5


# Sending, against a Graph API that answers what each test says -----------------------------------


class GraphStub:
    """Answers each request with the next (status, body) queued for its path's end, and records it."""

    def __init__(self):
        self.answers: dict[str, list] = {}
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                stub.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": raw}
                )
                queued = next((q for suffix, q in stub.answers.items() if path.endswith(suffix) and q), None)
                status, body = queued.pop(0) if queued else (404, {"error": {"message": "no answer", "code": 100}})
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v25.0"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, suffix, *answers):
        self.answers.setdefault(suffix, []).extend(answers)

    def sent(self):
        return [json.loads(r["body"]) for r in self.requests if r["path"].endswith("/messages")]


@pytest.fixture(scope="module")
def graph_server():
    stub = GraphStub()
    yield stub
    stub.server.shutdown()
    stub.server.server_close()


@pytest.fixture
def graph(graph_server):
    graph_server.answers.clear()
    graph_server.requests.clear()
    return graph_server


def sent_ok(wamid="wamid.OUT1"):
    return 200, {"messaging_product": "whatsapp", "contacts": [{"input": "4915112345678"}], "messages": [{"id": wamid}]}


def test_a_reply_quotes_the_message_it_answers(graph):
    graph.answer(f"/{NUMBER_ID}/messages", sent_ok())
    sent = adapter(base_url=graph.url).send(target=chat(), text="Turn it off and on.", key="reply-1")
    assert sent.external_id == "wamid.OUT1"
    [request] = graph.requests
    assert request["headers"]["Authorization"] == "Bearer EAAG-test"
    assert json.loads(request["body"]) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "4915112345678",
        "type": "text",
        "text": {"body": "Turn it off and on.", "preview_url": False},
        "context": {"message_id": "wamid.A1"},
        "biz_opaque_callback_data": "reply-1",
    }


def test_a_template_is_sent_with_the_agents_lines_as_its_parameters(graph):
    graph.answer(f"/{NUMBER_ID}/messages", sent_ok(), sent_ok("wamid.OUT2"))
    channel = adapter(base_url=graph.url, state={"templates": TEMPLATES})
    channel.send(target=chat(mode="template:ticket_update:en_US"), text="Ana\n #42 \nsolved\n", key="r-2")
    channel.send(target=chat(mode="template:still_there:de"), text="(sent as it is)", key="r-3")
    update, still = graph.sent()
    assert "context" not in update
    assert update["type"] == "template"
    assert update["template"] == {
        "name": "ticket_update",
        "language": {"code": "en_US"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "Ana"},
                    {"type": "text", "text": "#42"},
                    {"type": "text", "text": "solved"},
                ],
            }
        ],
    }
    assert still["template"] == {"name": "still_there", "language": {"code": "de"}}
    assert channel.usage == {"template_utility": 2}


def test_named_template_parameters_are_sent_by_name(graph):
    graph.answer(f"/{NUMBER_ID}/messages", sent_ok())
    templates = [{"name": "hello", "language": "en", "category": "UTILITY", "body": "Hi {{first_name}}, see {{link}}"}]
    adapter(base_url=graph.url, state={"templates": templates}).send(
        target=chat(mode="template:hello:en"), text="Ana\nhttps://help.example/42", key="r"
    )
    [message] = graph.sent()
    assert message["template"]["components"][0]["parameters"] == [
        {"type": "text", "text": "Ana", "parameter_name": "first_name"},
        {"type": "text", "text": "https://help.example/42", "parameter_name": "link"},
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Ana\n#42", "takes 3 values, one per line ({{1}}, {{2}}, {{3}}); the reply has 2"),
        ("", "the reply has 0"),
        ("Ana\n\n#42\nsolved", "the reply has 3"),
        ("Ana\n#42\nsolved\nthanks", "the reply has 4"),
    ],
)
def test_missing_or_extra_template_lines_are_refused_before_sending(graph, text, words):
    channel = adapter(base_url=graph.url, state={"templates": TEMPLATES})
    with pytest.raises(PermanentError, match=re.escape(words)):
        channel.send(target=chat(mode="template:ticket_update:en_US"), text=text, key="r")
    assert graph.requests == []


def test_a_template_no_longer_approved_is_refused(graph):
    with pytest.raises(PermanentError, match="no approved template"):
        adapter(base_url=graph.url).send(target=chat(mode="template:gone:en"), text="", key="r")


def test_a_reply_longer_than_whatsapp_takes_is_refused_before_sending(graph):
    with pytest.raises(PermanentError, match="4096"):
        adapter(base_url=graph.url).send(target=chat(), text="x" * 4097, key="r")
    assert graph.requests == []


def graph_error(code, message, subcode=None, details=None, status=400):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbC"}
    if subcode:
        error["error_subcode"] = subcode
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return status, {"error": error}


def recorded_error(name, status=400):
    """A recorded Graph error: the full body, or (where the source kept only that) the bare error object."""
    body = json.loads(fixture(name))
    return status, body if "error" in body else {"error": body}


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        (
            recorded_error("error__outside_window"),
            PermanentError,
            "only an approved template.*Re-engagement message: Message failed to send because more than 24 hours "
            "have passed since the customer last replied to this number. \\(code 131047\\)",
        ),
        (graph_error(131026, "Message undeliverable"), PermanentError, "could not deliver to this number"),
        (
            recorded_error("error__expired_token_190_463", status=401),
            CredentialsError,
            "Session has expired.*re-author",
        ),
        (recorded_error("error__invalid_token_190", status=401), CredentialsError, "Cannot parse access token"),
        (graph_error(130429, "Rate limit hit"), RateLimited, "Rate limit hit"),
        (
            recorded_error("error__media_upload_131053"),
            PermanentError,
            "could not process the file.*Downloading media from weblink failed",
        ),
        (graph_error(131031, "Business Account locked"), CredentialsError, "locked"),
        (graph_error(100, "Invalid parameter"), PermanentError, "Invalid parameter \\(code 100\\)"),
        ((500, {"error": {"message": "oops", "code": 1}}), TransientError, "oops"),
    ],
)
def test_whatsapps_refusals_become_the_contracts_errors_in_meta_s_words(graph, answer, error, words):
    graph.answer(f"/{NUMBER_ID}/messages", answer)
    channel = adapter(base_url=graph.url)
    with pytest.raises(error, match=words) as raised:
        channel.send(target=chat(), text="hello", key="r")
    assert "EAAG-test" not in str(raised.value)
    assert not channel.usage  # Meta bills delivered messages only


def test_an_answer_without_a_message_id_is_an_unknown_outcome(graph):
    graph.answer(f"/{NUMBER_ID}/messages", (200, {"messaging_product": "whatsapp"}))
    with pytest.raises(OutcomeUnknown):
        adapter(base_url=graph.url).send(target=chat(), text="hello", key="r")


def test_a_file_is_uploaded_then_sent_as_a_media_message(graph):
    graph.answer(f"/{NUMBER_ID}/media", (200, {"id": "MEDIA1"}), (200, {"id": "MEDIA2"}))
    graph.answer(f"/{NUMBER_ID}/messages", sent_ok("wamid.F1"), sent_ok("wamid.F2"))
    channel = adapter(base_url=graph.url)
    photo = OutboundFile("screen.png", "image/png", b"\x89PNG" + b"0" * 100)
    log = OutboundFile("boot.log", "text/plain", b"line\n")
    assert channel.send_attachment(target=chat(), file=photo) == "wamid.F1"
    assert channel.send_attachment(target=chat(), file=log) == "wamid.F2"
    upload = graph.requests[0]
    assert upload["path"].endswith(f"/{NUMBER_ID}/media")
    assert upload["headers"]["Content-Type"].startswith("multipart/form-data")
    assert b'name="messaging_product"\r\n\r\nwhatsapp' in upload["body"]
    assert b'filename="screen.png"' in upload["body"]
    assert b"\x89PNG" in upload["body"]
    image, document = graph.sent()
    assert (image["type"], image["image"], image["to"]) == ("image", {"id": "MEDIA1"}, "4915112345678")
    assert (document["type"], document["document"]) == ("document", {"id": "MEDIA2", "filename": "boot.log"})


def test_a_photo_over_whatsapps_image_limit_goes_as_a_document(graph):
    graph.answer(f"/{NUMBER_ID}/media", (200, {"id": "MEDIA1"}))
    graph.answer(f"/{NUMBER_ID}/messages", sent_ok())
    big = OutboundFile("scan.jpg", "image/jpeg", b"\xff" * (5 * 1024 * 1024 + 1))
    adapter(base_url=graph.url).send_attachment(target=chat(), file=big)
    [message] = graph.sent()
    assert message["type"] == "document"


def test_a_file_over_100_mb_or_with_a_template_is_refused_before_uploading(graph):
    channel = adapter(base_url=graph.url, state={"templates": TEMPLATES})
    with pytest.raises(PermanentError, match="carries no files"):
        channel.send_attachment(target=chat(mode="template:still_there:de"), file=OutboundFile("a", "text/plain", b"a"))
    huge = OutboundFile("dump.bin", "application/octet-stream", bytes(100 * 1024 * 1024 + 1))
    with pytest.raises(PermanentError, match="100 MB"):
        channel.send_attachment(target=chat(), file=huge)
    assert graph.requests == []


def test_a_refused_upload_says_why(graph):
    graph.answer(f"/{NUMBER_ID}/media", graph_error(131053, "Media upload error", details="Unsupported file type"))
    with pytest.raises(PermanentError, match=r"could not process the file.*Unsupported file type"):
        adapter(base_url=graph.url).send_attachment(
            target=chat(), file=OutboundFile("x.exe", "application/x-exe", b"MZ")
        )


def test_a_reply_to_something_that_is_no_whatsapp_chat_is_refused(graph):
    with pytest.raises(PermanentError, match="Not a WhatsApp chat"):
        adapter(base_url=graph.url).send(target=ReplyTarget(thread_key="dm:42/../x"), text="hi", key="r")


def test_check_credentials_learns_the_number_and_every_page_of_approved_templates(graph):
    graph.answer(f"/{NUMBER_ID}", (200, {"display_phone_number": "+1 555-000-1111", "verified_name": "IT Help"}))
    body = [{"type": "BODY", "text": "Hi {{1}}, ticket {{2}} is {{3}}."}, {"type": "FOOTER", "text": "IT"}]
    graph.answer(
        f"/{WABA_ID}/message_templates",
        (
            200,
            {
                "data": [
                    {"name": "ticket_update", "language": "en_US", "category": "UTILITY", "components": body},
                    {
                        "name": "promo",
                        "language": "en",
                        "category": "MARKETING",
                        "components": [{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Sale"}],
                    },
                ],
                "paging": {"cursors": {"after": "A"}, "next": f"{graph.url}/{WABA_ID}/message_templates?after=A"},
            },
        ),
        (
            200,
            {
                "data": [
                    {
                        "name": "still_there",
                        "language": "de",
                        "category": "UTILITY",
                        "status": "APPROVED",
                        "components": [{"type": "BODY", "text": "Sind Sie noch da?"}],
                    }
                ]
            },
        ),
    )
    state = adapter(base_url=graph.url).check_credentials()
    assert json.loads(json.dumps(state)) == {
        "phone_number": "+1 555-000-1111",
        "verified_name": "IT Help",
        "templates": TEMPLATES,
        "unusable_templates": [
            {"name": "promo", "reason": "its header needs a file or a value, which agents cannot give"}
        ],
    }
    first_page = graph.requests[1]["path"]
    assert "status=APPROVED" in first_page
    assert graph.requests[2]["path"].endswith("after=A")


def test_check_credentials_with_a_revoked_token_says_reauthorize(graph):
    graph.answer(f"/{NUMBER_ID}", graph_error(190, "Error validating access token", subcode=460, status=401))
    with pytest.raises(CredentialsError, match="re-authorize"):
        adapter(base_url=graph.url).check_credentials()


def test_a_file_is_fetched_by_asking_for_its_url_then_streaming_it_with_the_token(graph):
    content = bytes(range(256)) * 600
    file_url = graph.url.replace("/v25.0", "") + "/whatsapp_business/attachments/?mid=65463453"
    graph.answer("/65463453", (200, {"url": file_url, "mime_type": "image/jpeg", "id": "65463453"}))
    graph.answer("/whatsapp_business/attachments/", (200, content))
    envelope = only("webhook__image")
    channel = adapter(base_url=graph.url)
    assert b"".join(channel.fetch_attachment(envelope.attachments[0].ref)) == content
    lookup, download = graph.requests
    assert lookup["path"] == "/v25.0/65463453"
    assert download["headers"]["Authorization"] == "Bearer EAAG-test"


def test_a_file_whatsapp_no_longer_keeps_or_an_odd_ref_fails_as_permanent(graph):
    graph.answer("/404404", graph_error(100, "Unsupported get request. Object with ID '404404' does not exist"))
    channel = adapter(base_url=graph.url)
    with pytest.raises(PermanentError, match=r"30 days.*does not exist"):
        b"".join(channel.fetch_attachment("media:404404"))
    for ref in ("media:../../me", "media:..", "https://example.com/x", "media:"):
        with pytest.raises(PermanentError, match="Not a WhatsApp media reference"):
            b"".join(channel.fetch_attachment(ref))
    assert [r["path"] for r in graph.requests] == ["/v25.0/404404"]


# Through the pipeline: a signed POST to the channel's webhook, the ticket and its replies ---------

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def whatsapp_channel(db, graph):
    config, secrets = clean_channel_config(
        "whatsapp",
        {
            "phone_number_id": NUMBER_ID,
            "waba_id": WABA_ID,
            "access_token": "EAAG-test",
            "app_secret": SECRET,
            "verify_token": "verify-me",
            "base_url": graph.url,
        },
    )
    return Channel.objects.create(kind="whatsapp", name="whatsapp-help", config=config, secrets=secrets)


@pytest.fixture
def webhook(client, whatsapp_channel, django_capture_on_commit_callbacks):
    """POSTs a body to the channel's webhook, signed unless told otherwise, and runs the ingestion it queues."""

    def post(body, headers=None):
        headers = sign(body) if headers is None else headers
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                reverse("channels_ingest:webhook", args=[whatsapp_channel.public_id]),
                data=body,
                content_type="application/json",
                **{f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()},
            )

    return post


def at(moment):
    return str(int(moment.timestamp()))


@pytest.mark.django_db
def test_a_signed_text_webhook_opens_a_ticket_for_the_whatsapp_identity(webhook):
    response = webhook(fixture("webhook__text"))
    assert response.status_code == 200
    ticket = Ticket.objects.get()
    assert ticket.subject == "Body Text"
    identity = ticket.requester.identities.get()
    assert (identity.namespace, identity.external_id, identity.handle, identity.display_name) == (
        "whatsapp:1122334455667",
        "972987654321",
        "+972987654321",
        "Test Name",
    )


@pytest.mark.django_db
def test_a_redelivered_webhook_is_stored_once_and_a_forged_one_not_at_all(webhook):
    assert webhook(fixture("webhook__text")).status_code == 200
    assert webhook(fixture("webhook__text")).status_code == 200
    forged = fixture("webhook__text").replace(b"Body Text", b"Pay me")
    assert webhook(forged, headers=sign(fixture("webhook__text"))).status_code == 403
    assert webhook(fixture("webhook__text"), headers={}).status_code == 401
    assert InboundMessage.objects.count() == 1
    assert Message.objects.get().body == "Body Text"


@pytest.mark.django_db
def test_the_subscription_handshake_through_the_webhook_url(client, whatsapp_channel):
    url = reverse("channels_ingest:webhook", args=[whatsapp_channel.public_id])
    params = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    response = client.get(url, params)
    assert (response.status_code, response.content) == (200, b"1158201444")
    whatsapp_channel.refresh_from_db()
    assert whatsapp_channel.webhook_verified_at is not None
    assert client.get(url, {**params, "hub.verify_token": "guess"}).status_code == 403


@pytest.mark.django_db
def test_edits_revokes_and_reactions_change_the_stored_message(webhook):
    sent = NOW - timedelta(minutes=5)
    with time_machine.travel(NOW, tick=False):
        webhook(message_body(text_message("printer on fire", timestamp=at(sent))))
        edit = {
            "from": "4915112345678",
            "id": "wamid.E1",
            "timestamp": at(sent + timedelta(minutes=1)),
            "type": "edit",
            "edit": {
                "original_message_id": "wamid.A1",
                "message": {"type": "text", "text": {"body": "printer smokes"}},
            },
        }
        webhook(message_body(edit))
        react = {
            "from": "4915112345678",
            "id": "wamid.R1",
            "timestamp": at(sent + timedelta(minutes=2)),
            "type": "reaction",
            "reaction": {"message_id": "wamid.A1", "emoji": "🔥"},
        }
        webhook(message_body(react))
    message = Message.objects.get()
    assert message.body == "printer smokes"
    assert message.edited_at is not None
    assert list(message.reactions.values()) == ["🔥"]
    with time_machine.travel(NOW, tick=False):
        revoke = {
            "from": "4915112345678",
            "id": "wamid.D1",
            "timestamp": at(sent + timedelta(minutes=3)),
            "type": "revoke",
            "revoke": {"original_message_id": "wamid.A1"},
        }
        webhook(message_body(revoke))
    message.refresh_from_db()
    assert message.deleted_at is not None


def status_body(wamid, state, moment, **extra):
    status = {"id": wamid, "status": state, "timestamp": at(moment), "recipient_id": "4915112345678", **extra}
    return message_body(statuses=[status])


@pytest.mark.django_db
def test_a_reply_goes_out_quoting_the_question_and_whatsapps_reports_follow_it(webhook, graph, agent):
    graph.answer(f"/{NUMBER_ID}/messages", sent_ok("wamid.OUT1"), sent_ok("wamid.OUT2"))
    with time_machine.travel(NOW, tick=False):
        webhook(message_body(text_message("VPN drops", timestamp=at(NOW - timedelta(minutes=2)))))
        ticket = Ticket.objects.get()
        [reply_mode] = reply_modes(ticket)
        assert reply_mode.expires_at == NOW - timedelta(minutes=2) + timedelta(hours=24)
        first = reply_and_deliver(ticket, agent, "Which office are you in?")
        second = reply_and_deliver(ticket, agent, "And which laptop?")
        assert (first.delivery_status, first.external_id) == ("sent", "wamid.OUT1")
        webhook(status_body("wamid.OUT1", "sent", NOW))
        webhook(status_body("wamid.OUT1", "read", NOW + timedelta(seconds=20)))
        webhook(status_body("wamid.OUT1", "delivered", NOW + timedelta(seconds=10)))  # late: never moves it back
        failure = {"code": 131026, "title": "Message undeliverable", "error_data": {"details": "Unknown recipient"}}
        webhook(status_body("wamid.OUT2", "failed", NOW + timedelta(seconds=30), errors=[failure]))
    [request, _] = graph.sent()
    assert request["context"] == {"message_id": "wamid.A1"}
    assert request["text"]["body"] == "Which office are you in?"
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.delivery_status == "read"
    assert (second.delivery_status, second.delivery_error) == (
        "failed",
        "Message undeliverable: Unknown recipient (code 131026)",
    )


@pytest.mark.django_db
def test_after_the_window_the_desk_answers_with_a_template(webhook, graph, agent, whatsapp_channel):
    whatsapp_channel.state = {"templates": TEMPLATES}
    whatsapp_channel.save()
    graph.answer(f"/{NUMBER_ID}/messages", sent_ok("wamid.T1"))
    with time_machine.travel(NOW, tick=False):
        webhook(message_body(text_message("laptop ready?", timestamp=at(NOW - timedelta(hours=30)))))
    ticket = Ticket.objects.get()
    with time_machine.travel(NOW, tick=False):
        [reply, update, _] = reply_modes(ticket)
        assert not reply.allowed
        with pytest.raises(ReplyError):
            reply_to_ticket(ticket=ticket, author=agent, body="Yes!", mode="")
        sent = reply_and_deliver(ticket, agent, "Ana\n#42\nready for pickup", mode=update.key)
    assert (sent.delivery_status, sent.external_id) == ("sent", "wamid.T1")
    [message] = graph.sent()
    assert [p["text"] for p in message["template"]["components"][0]["parameters"]] == ["Ana", "#42", "ready for pickup"]


# Against the Meta emulator: its signed pushes relayed to the channel's webhook --------------------

OGG = b"OggS\x00\x02" + b"voice" * 400


@pytest.fixture
def emulated(db, meta_emulator, client, django_capture_on_commit_callbacks):
    """A WhatsApp channel on the emulator. ``relay()`` POSTs what the emulator pushed (its own signed bytes) to
    the channel's webhook URL and runs the ingestion and downloads that queues."""
    config, secrets = clean_channel_config(
        "whatsapp",
        {
            "phone_number_id": NUMBER_ID,
            "waba_id": WABA_ID,
            "access_token": "EAAG-emulated",
            "app_secret": "emulated-secret",
            "verify_token": "emulated-verify",
            "base_url": meta_emulator.base_url,
        },
    )
    channel = Channel.objects.create(kind="whatsapp", name="whatsapp-emulated", config=config, secrets=secrets)
    inbox = PushInbox(channel.adapter())
    meta_emulator.add_whatsapp(
        phone_number_id=NUMBER_ID,
        waba_id=WABA_ID,
        token="EAAG-emulated",
        app_secret="emulated-secret",
        verify_token="emulated-verify",
        webhook_url=inbox.url,
    )
    url = reverse("channels_ingest:webhook", args=[channel.public_id])

    def relay():
        for headers, body in inbox.raw(meta_emulator):
            with django_capture_on_commit_callbacks(execute=True):
                response = client.post(
                    url,
                    data=body,
                    content_type="application/json",
                    HTTP_X_HUB_SIGNATURE_256=headers["X-Hub-Signature-256"],
                )
            assert response.status_code == 200, response.content

    channel.relay = relay
    yield channel
    inbox.stop()


@pytest.mark.django_db
def test_a_person_writes_and_the_reply_quotes_them_then_is_delivered_and_read(emulated, meta_emulator, agent):
    wrote = meta_emulator.whatsapp(NUMBER_ID, "VPN drops every 5 min", wa_id="4915112345678", name="Ana Lima")
    emulated.relay()
    ticket = Ticket.objects.get()
    assert ticket.subject == "VPN drops every 5 min"
    assert ticket.requester.display_name == "Ana Lima"

    reply = reply_and_deliver(ticket, agent, "Which office are you in?")
    [sent] = meta_emulator.sent(NUMBER_ID)
    assert (sent["to"], sent["text"], sent["context_id"]) == (
        "4915112345678",
        "Which office are you in?",
        wrote["wamid"],
    )
    assert reply.external_id == sent["id"]
    emulated.relay()  # the receipts: sent, delivered, read
    reply.refresh_from_db()
    assert reply.delivery_status == "read"


@pytest.mark.django_db
def test_a_reply_whatsapp_reports_failed_shows_its_words(emulated, meta_emulator, agent):
    meta_emulator.whatsapp(NUMBER_ID, "printer?", wa_id="4915112345678")
    emulated.relay()
    meta_emulator.fail_next_whatsapp(NUMBER_ID, code=131026)
    reply = reply_and_deliver(Ticket.objects.get(), agent, "Which printer?")
    assert reply.delivery_status == "sent"  # WhatsApp accepted it; the failure comes later
    emulated.relay()
    reply.refresh_from_db()
    assert reply.delivery_status == "failed"
    assert "131026" in reply.delivery_error


@pytest.mark.django_db
def test_a_voice_note_is_kept_as_a_file_downloaded_with_the_token(emulated, meta_emulator):
    sent = meta_emulator.whatsapp(NUMBER_ID, wa_id="4915112345678", type="audio", content=OGG, voice=True)
    emulated.relay()
    attachment = Attachment.objects.get()
    assert (attachment.status, attachment.name) == ("stored", f"voice-message-{sent['media_id']}.ogg")
    assert attachment.file.read() == OGG


@pytest.mark.django_db
def test_edits_reactions_and_revokes_from_the_emulator(emulated, meta_emulator):
    wrote = meta_emulator.whatsapp(NUMBER_ID, "screen flickers", wa_id="4915112345678")
    meta_emulator.whatsapp_edit(NUMBER_ID, "4915112345678", wrote["wamid"], "screen flickers on battery")
    meta_emulator.whatsapp_react(NUMBER_ID, "4915112345678", wrote["wamid"], "👀")
    emulated.relay()
    message = Message.objects.get()
    assert message.body == "screen flickers on battery"
    assert list(message.reactions.values()) == ["👀"]
    meta_emulator.whatsapp_revoke(NUMBER_ID, "4915112345678", wrote["wamid"])
    emulated.relay()
    message.refresh_from_db()
    assert message.deleted_at is not None


@pytest.mark.django_db
def test_after_a_day_of_silence_the_desk_sends_a_template_from_the_refreshed_list(emulated, meta_emulator, agent):
    meta_emulator.add_template(WABA_ID, "ticket_update", "Hi {{1}}, ticket {{2}} is {{3}}.")
    meta_emulator.add_template(WABA_ID, "draft", "Not yet", status="PENDING")
    emulated.state = emulated.adapter().check_credentials()
    emulated.save()
    meta_emulator.whatsapp(NUMBER_ID, "laptop ready?", wa_id="4915112345678", at=time.time() - 25 * 3600)
    emulated.relay()
    ticket = Ticket.objects.get()
    reply, template = reply_modes(ticket)
    assert not reply.allowed
    assert template.key == "template:ticket_update:en_US"
    sent = reply_and_deliver(ticket, agent, "Ana\n#42\nready for pickup", mode=template.key)
    assert sent.delivery_status == "sent"
    [out] = meta_emulator.sent(NUMBER_ID)
    assert out["text"] == "Hi Ana, ticket #42 is ready for pickup."


def emulated_adapter(meta_emulator, person_wrote_hours_ago=0.0):
    meta_emulator.add_whatsapp(phone_number_id=NUMBER_ID, waba_id=WABA_ID, token="EAAG-test", app_secret=SECRET)
    meta_emulator.whatsapp(NUMBER_ID, "hi", wa_id="4915112345678", at=time.time() - person_wrote_hours_ago * 3600)
    return adapter(base_url=meta_emulator.base_url)


def test_the_emulator_refuses_a_reply_after_the_window_in_plain_words(meta_emulator):
    """Where the desk could not count the window (no known last message), WhatsApp's 131047 says it."""
    channel = emulated_adapter(meta_emulator, person_wrote_hours_ago=25)
    with pytest.raises(PermanentError, match=r"only an approved template.*131047"):
        channel.send(target=ReplyTarget(thread_key="wa:4915112345678"), text="hello?", key="r")


def test_a_revoked_token_needs_reauthorizing(meta_emulator):
    channel = emulated_adapter(meta_emulator)
    meta_emulator.revoke_token("EAAG-test")
    with pytest.raises(CredentialsError, match="re-authorize"):
        channel.send(target=chat(), text="hello", key="r")
    with pytest.raises(CredentialsError):
        channel.check_credentials()


def test_throttling_waits_as_whatsapp_says(meta_emulator):
    channel = emulated_adapter(meta_emulator)
    meta_emulator.set_budget(WABA_ID, 0)
    with pytest.raises(RateLimited) as throttled:
        channel.send(target=chat(), text="hello", key="r")
    assert throttled.value.retry_after > 0


def test_a_photo_goes_up_then_out_as_an_image_message(meta_emulator):
    channel = emulated_adapter(meta_emulator)
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    wamid = channel.send_attachment(target=chat(), file=OutboundFile("screen.png", "image/png", png))
    [sent] = meta_emulator.sent(NUMBER_ID)
    assert (sent["id"], sent["type"]) == (wamid, "image")
    assert b"".join(channel.fetch_attachment(f"media:{sent['content']['id']}")) == png
