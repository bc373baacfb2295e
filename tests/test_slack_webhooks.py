"""Slack Events API: signed fixtures in, tickets out; bad input refused with a clear 4xx."""

import json

import pytest

from channels_ingest.models import InboundMessage
from tests.slack_webhooks import SlackWebhookCase, fixture, sign
from tickets.models import Message, Ticket

pytestmark = pytest.mark.django_db


class TestSlackEvents(SlackWebhookCase):
    def test_top_level_message_opens_a_ticket_named_after_the_user(self):
        """A top-level message opens a ticket; the requester's name comes from users.info."""
        self.send("message__top_level")
        ticket = Ticket.objects.get()
        assert ticket.subject == "My laptop won't connect to the VPN & Outlook is frozen"
        assert ticket.requester.display_name == "Ann Employee"
        assert ticket.requester.identities.get().handle == "ann"
        assert ticket.messages.get().external_id == "C0GENERAL:1764000000.000100"

    def test_thread_reply_joins_the_ticket_of_its_thread(self):
        """A reply in the thread lands on the same ticket."""
        self.send("message__top_level")
        self.send("message__thread_reply")
        ticket = Ticket.objects.get()
        assert [m.body for m in ticket.messages.timeline()][1] == "Restarted it, still broken"

    def test_edit_and_delete_update_the_stored_messages(self):
        """message_changed rewrites the text; message_deleted marks the message deleted; no new tickets."""
        for name in ["message__top_level", "message__thread_reply", "message__changed", "message__deleted"]:
            self.send(name)
        first, reply = Ticket.objects.get().messages.timeline()
        assert first.body == "My laptop won't connect to the VPN (Outlook is fine now)"
        assert first.edited_at
        assert reply.deleted_at is not None

    def test_redelivered_event_is_stored_once(self):
        """Slack's retry of the same event (same event_id) is acknowledged and ignored."""
        self.send("message__top_level")
        self.send("message__top_level")
        assert InboundMessage.objects.count() == 1
        assert Message.objects.count() == 1

    @pytest.mark.parametrize("name", ["message__bot_echo", "message__channel_join", "reaction_added__ignored"])
    def test_known_noise_is_acknowledged_and_skipped(self, name):
        """Our own echo, joins and reactions get 200 and create nothing."""
        response = self.send(name)
        assert response.json()["ignored"]
        assert not InboundMessage.objects.exists()
        assert not Ticket.objects.exists()

    def test_markup_is_turned_into_plain_text(self):
        """Slack's entities, links and mentions become what the person saw; script stays inert text."""
        self.send("message__markup")
        body = Message.objects.get().body
        assert body == "<script>alert(1)</script> see the status page (https://status.example.com) cc @ann @here"

    def test_url_verification_answers_the_challenge(self):
        """The Events API handshake echoes the challenge."""
        response = self.send("url_verification__challenge")
        assert response.json() == {"challenge": json.loads(fixture("url_verification__challenge"))["challenge"]}


class TestSlackBadInput(SlackWebhookCase):
    def test_unknown_event_type_is_refused_without_retries(self):
        """An undeclared event type gets 400 and X-Slack-No-Retry, and is logged."""
        response = self.send("emoji_changed__unknown", expected_status=400)
        assert "emoji_changed" in response.json()["error"]
        assert response["X-Slack-No-Retry"] == "1"

    def test_message_without_user_is_refused(self):
        """A message event that cannot be interpreted is a 400, not a 500."""
        response = self.send("message__no_user", expected_status=400)
        assert "ts or user" in response.json()["error"]

    def test_forged_signature_is_refused(self):
        """A body signed with the wrong secret gets 401 and stores nothing."""
        body = fixture("message__top_level")
        response = self.post(body, headers=sign(body, secret="not-the-secret"))
        assert response.status_code == 401
        assert not InboundMessage.objects.exists()

    def test_tampered_body_is_refused(self):
        """A valid signature over a different body gets 401."""
        headers = sign(fixture("message__top_level"))
        response = self.post(fixture("message__thread_reply"), headers=headers)
        assert response.status_code == 401

    def test_stale_timestamp_is_refused(self):
        """A correctly signed request older than five minutes is a replay: 401."""
        import time

        body = fixture("message__top_level")
        response = self.post(body, headers=sign(body, timestamp=int(time.time()) - 301))
        assert response.status_code == 401
        assert "Stale" in response.json()["error"]

    def test_missing_signature_is_refused(self):
        response = self.post(fixture("message__top_level"), headers={})
        assert response.status_code == 401

    @pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"[1, 2]"])
    def test_malformed_body_is_refused(self, body):
        """Malformed JSON gets 400 with a clear error, never a 500."""
        response = self.post(body)
        assert response.status_code == 400
        assert response["X-Slack-No-Retry"] == "1"

    def test_unknown_channel_is_404(self):
        """A webhook for a channel that does not exist is a 404."""
        import uuid

        body = fixture("message__top_level")
        response = self.client.post(
            f"/webhooks/{uuid.uuid4()}/", data=body, content_type="application/json", **sign(body)
        )
        assert response.status_code == 404

    def test_get_is_not_allowed(self):
        assert self.client.get(self.url()).status_code == 405

    def test_huge_text_is_stored_truncated_not_refused(self):
        """Text over 40,000 characters is kept (truncated with a note), the message is not lost."""
        payload = json.loads(fixture("message__top_level"))
        payload["event"]["text"] = "🙂" * 45_000
        assert self.post(payload).status_code == 200
        body = Message.objects.get().body
        assert body.startswith("🙂" * 40_000)
        assert "truncated 5000 characters" in body
