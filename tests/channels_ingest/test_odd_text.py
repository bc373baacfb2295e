"""Odd text from a platform reaches the agent's ticket page intact and escaped, never as a crash.

Kept exactly: right-to-left text and overrides, zero-width characters, combining marks, 4-byte emoji,
markup. Visibly replaced: NUL, half of a UTF-16 surrogate pair and bytes that are not UTF-8, which
PostgreSQL cannot hold; each becomes U+FFFD (the "replacement character", shown as a diamond with a question
mark), so an agent sees that something was there. A message over ``Message.MAX_BODY_LENGTH`` is stored up to
that length with a visible note of how much was cut.
"""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from tests.channel_adapters.slack_events import SlackWebhookCase, fixture
from tests.helpers import canned_x_channel, detail_url
from tests.helpers import poll_as_worker as poll
from tickets.models import Message, Ticket

pytestmark = pytest.mark.django_db

#: Shown exactly as the person wrote it.
KEPT = {
    "rtl": "שלום, המדפסת לא עובדת — الطابعة لا تعمل",
    "rtl override": "invoice\u202efdp.exe",
    "zero width": "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom\u2060",
    "combining marks": "e\u0301\u0302\u0303 Z\u0338\u0321\u031ba\u0337l\u0336g\u0338o\u0334",
    "4-byte emoji": "🧑🏽‍💻 printer 🖨️🔥 \U0001d54f 𠜎 🏳️‍🌈",
    "markup": "<script>alert('x')</script><img src=x onerror=alert(1)> &amp; \"quoted\" {{ not_a_variable }}",
}


def slack_escaped(text):
    """As Slack sends text: its three HTML entities escaped (the rest is its own markup)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def ticket_page(agent_client):
    return agent_client.get(detail_url(Ticket.objects.get())).content.decode()


class TestFromASlackWebhook(SlackWebhookCase):
    def event_body(self, text_json):
        """The recorded top-level message with its text replaced by ``text_json`` (a JSON string literal)."""
        payload = json.loads(fixture("message__top_level"))
        payload["event"]["text"] = "TEXT"
        return json.dumps(payload).encode().replace(b'"TEXT"', text_json)

    @pytest.mark.parametrize("text", KEPT.values(), ids=KEPT.keys())
    def test_odd_text_is_shown_intact_and_escaped(self, agent_client, text):
        payload = json.loads(fixture("message__top_level"))
        payload["event"]["text"] = slack_escaped(text)
        assert self.post(payload).status_code == 200

        assert Message.objects.get().body == text
        html = ticket_page(agent_client)
        assert escape(text) in html
        assert "<script>alert" not in html
        assert "<img src=x" not in html

    @pytest.mark.parametrize(
        ("text_json", "shown"),
        [
            (b'"before\\u0000after"', "before\ufffdafter"),
            (b'"half a pair \\ud83d here"', "half a pair \ufffd here"),
            (b'"caf\xe9 latin-1, not UTF-8"', "caf\ufffd latin-1, not UTF-8"),
        ],
        ids=["NUL", "lone surrogate", "invalid UTF-8"],
    )
    def test_what_the_database_cannot_hold_is_visibly_replaced(self, agent_client, text_json, shown):
        """The message arrives (a 200, not a 400 that would lose it) with U+FFFD where the bad part was."""
        response = self.post(self.event_body(text_json))
        assert response.status_code == 200, response.content

        assert Message.objects.get().body == shown
        assert escape(shown) in ticket_page(agent_client)

    def test_a_1_mb_message_is_kept_up_to_the_limit_with_a_visible_note(self, agent_client):
        text = "é" + "a" * (1024 * 1024 - 1)
        payload = json.loads(fixture("message__top_level"))
        payload["event"]["text"] = text
        assert self.post(payload).status_code == 200

        body = Message.objects.get().body
        cut = len(text) - Message.MAX_BODY_LENGTH
        assert body == text[: Message.MAX_BODY_LENGTH] + f"\n… [truncated {cut} characters]"
        html = ticket_page(agent_client)
        assert f"[truncated {cut} characters]" in html
        assert Ticket.objects.get().subject.startswith("éaaa")

    def test_the_queue_shows_odd_subjects_escaped(self, agent_client):
        payload = json.loads(fixture("message__top_level"))
        payload["event"]["text"] = slack_escaped(KEPT["markup"])
        self.post(payload)
        html = agent_client.get(reverse("console:ticket-list")).content.decode()
        assert "&lt;script&gt;" in html
        assert "<script>alert" not in html


@pytest.mark.parametrize("text", KEPT.values(), ids=KEPT.keys())
def test_odd_text_in_an_x_mention_is_shown_intact(x_channel, x_emulator, agent_client, text):
    x_emulator.post(x_emulator.people["maya"], f"@ithelp {text}")
    poll(x_channel)
    assert Message.objects.get().body == f"@ithelp {text}"
    assert escape(f"@ithelp {text}") in ticket_page(agent_client)


def test_an_x_page_with_bytes_that_are_not_utf8_arrives_with_them_replaced(canned_platform, agent_client):
    """tweepy reads a body that is not UTF-8 with replacement characters; the DM still opens its ticket."""
    created = (timezone.now() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    dm = {
        "id": "1900000000000000010",
        "event_type": "MessageCreate",
        "text": "TEXT",
        "sender_id": "2",
        "dm_conversation_id": "1-2",
        "created_at": created,
    }
    canned_platform.answer("/2/dm_events", json.dumps({"data": [dm]}).encode().replace(b"TEXT", b"caf\xe9 \\u0000"))
    canned_platform.answer("/2/users/1/mentions", {"meta": {"result_count": 0}})
    channel = canned_x_channel(canned_platform)

    assert not poll(channel).error
    assert Message.objects.get().body == "caf\ufffd \ufffd"
    assert escape("caf\ufffd \ufffd") in ticket_page(agent_client)
