"""Odd text from a platform reaches the agent's ticket page intact and escaped, never as a crash: from Slack
webhooks, X polls, WhatsApp and Messenger webhooks, an Instagram comment, email (a real mailbox, polled) and
the portal (shown on the employee's page too).

Kept exactly: right-to-left text and overrides, zero-width characters, combining marks, 4-byte emoji,
markup. Visibly replaced: NUL, half of a UTF-16 surrogate pair and bytes that are not UTF-8, which
PostgreSQL cannot hold; each becomes U+FFFD (the "replacement character", shown as a diamond with a question
mark), so an agent sees that something was there. A message over ``Message.MAX_BODY_LENGTH`` is stored up to
that length with a visible note of how much was cut. In email, bytes the declared charset cannot read become
U+FFFD with a note (Dovecot stores a NUL as 0x80, so a NUL arrives as such a byte). The portal's forms refuse
a NUL and text over the limit with a message, as Django's forms do.
"""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from channels_ingest.channel_config import clean_channel_config
from channels_ingest.models import Channel
from tests.channel_adapters.email_mail import DESK, make_email_channel
from tests.channel_adapters.meta_pages import body_of
from tests.channel_adapters.meta_pages import sign as sign_for_meta
from tests.channel_adapters.slack_events import SlackWebhookCase, fixture
from tests.helpers import canned_x_channel, detail_url, portal_form
from tests.helpers import poll_as_worker as poll
from tickets.models import Message, Ticket
from tickets.replies import latest_thread, reply_to_ticket

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

#: JSON string literals a platform may send (as bytes), and what the agent is shown instead.
REPLACED = [
    (b'"before\\u0000after"', "before\ufffdafter"),
    (b'"half a pair \\ud83d here"', "half a pair \ufffd here"),
    (b'"caf\xe9 latin-1, not UTF-8"', "caf\ufffd latin-1, not UTF-8"),
]
REPLACED_IDS = ["NUL", "lone surrogate", "invalid UTF-8"]
FIXTURES = Path(__file__).parent.parent / "channel_adapters" / "fixtures"


def slack_escaped(text):
    """As Slack sends text: its three HTML entities escaped (the rest is its own markup)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def ticket_page(agent_client):
    return agent_client.get(detail_url(Ticket.objects.get())).content.decode()


def assert_kept_and_escaped(text, agent_client):
    """The one message holds ``text`` exactly, and the agent's ticket page shows it escaped, never as markup."""
    assert Message.objects.get().body == text
    html = ticket_page(agent_client)
    assert escape(text) in html
    assert "<script>alert" not in html
    assert "<img src=x" not in html


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

        assert_kept_and_escaped(text, agent_client)

    @pytest.mark.parametrize(("text_json", "shown"), REPLACED, ids=REPLACED_IDS)
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


# WhatsApp, Messenger and an Instagram comment: signed webhooks through the real view ---------------------------

META_SECRET = "odd-text-secret"
#: The Instagram account is not the recorded comment's author (the recording's own account): its own comments
#: are skipped.
FB_PAGE, IG_ACCOUNT, IG_PAGE = "404217156637689", "17841400008460056", "100200300"
WA_NUMBER, WA_WABA = "1122334455667", "1234567890987654321"


def placeholder(payload, set_text) -> bytes:
    """``payload`` as JSON with its text left as a placeholder, for ``text_json`` (a JSON string literal, which
    may hold what ``json.dumps`` would never write) to take its place."""
    set_text(payload, "TEXT")
    return json.dumps(payload).encode()


def whatsapp_body():
    def set_text(payload, text):
        payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = text

    return placeholder(recorded("whatsapp", "webhook__text"), set_text)


def messenger_body():
    def set_text(payload, text):
        payload["entry"][0]["messaging"][0]["message"]["text"] = text

    return placeholder(body_of(FB_PAGE, recorded("messenger", "event__text")), set_text)


def instagram_comment_body():
    """A comment as the ``comments`` field carries one (the recorded Graph comment's id, media and author), sent
    a minute ago."""
    comment = recorded("instagram", "graph__comment")
    value = {"id": comment["id"], "from": {"id": comment["user"]["id"], "username": comment["username"]}}
    change = {"field": "comments", "value": {**value, "media": comment["media"], "text": "TEXT"}}
    sent = int((timezone.now() - timedelta(minutes=1)).timestamp())
    return json.dumps(body_of(IG_ACCOUNT, change, field="changes", obj="instagram", time=sent)).encode()


def recorded(folder, name):
    return json.loads((FIXTURES / folder / f"{name}.json").read_text())


META_CHANNELS = {
    "whatsapp": (
        {"phone_number_id": WA_NUMBER, "waba_id": WA_WABA, "access_token": "t"},
        whatsapp_body,
    ),
    "facebook": ({"page_id": FB_PAGE, "page_access_token": "t"}, messenger_body),
    "instagram": (
        {"ig_user_id": IG_ACCOUNT, "page_id": IG_PAGE, "page_access_token": "t", "triage": {"auto_ticket": "all"}},
        instagram_comment_body,
    ),
}


@pytest.fixture(params=META_CHANNELS, ids=["whatsapp", "messenger", "instagram comment"])
def meta_says(request, client, django_capture_on_commit_callbacks):
    """Posts a signed webhook whose text is ``text_json`` (a JSON string literal) to a channel of the kind, and
    runs its ingestion; returns the response."""
    fields, build = META_CHANNELS[request.param]
    raw = {**fields, "app_secret": META_SECRET, "verify_token": "v", "base_url": "http://127.0.0.1:9/v25.0"}
    config, secrets = clean_channel_config(request.param, raw)
    channel = Channel.objects.create(kind=request.param, name="odd", config=config, secrets=secrets)
    url = reverse("channels_ingest:webhook", args=[channel.public_id])

    def say(text_json: bytes):
        body = build().replace(b'"TEXT"', text_json)
        signature = sign_for_meta(body, META_SECRET)["X-Hub-Signature-256"]
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, data=body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature)

    return say


@pytest.mark.parametrize("text", KEPT.values(), ids=KEPT.keys())
def test_odd_text_in_a_meta_webhook_is_shown_intact_and_escaped(meta_says, agent_client, text):
    assert meta_says(json.dumps(text).encode()).status_code == 200
    assert_kept_and_escaped(text, agent_client)


@pytest.mark.parametrize(("text_json", "shown"), REPLACED, ids=REPLACED_IDS)
def test_what_the_database_cannot_hold_in_a_meta_webhook_is_visibly_replaced(meta_says, agent_client, text_json, shown):
    assert meta_says(text_json).status_code == 200
    assert Message.objects.get().body == shown
    assert escape(shown) in ticket_page(agent_client)


def test_a_1_mb_meta_message_is_kept_up_to_the_limit_with_a_visible_note(meta_says, agent_client):
    text = "é" + "a" * (1024 * 1024 - 1)
    assert meta_says(json.dumps(text).encode()).status_code == 200
    cut = len(text) - Message.MAX_BODY_LENGTH
    assert Message.objects.get().body == text[: Message.MAX_BODY_LENGTH] + f"\n… [truncated {cut} characters]"
    assert f"[truncated {cut} characters]" in ticket_page(agent_client)


# Email: mail in a real mailbox (Dovecot), polled -------------------------------------------------------------------


def raw_mail(body: bytes, *, charset="utf-8", subject=b"Printer", number=1) -> bytes:
    """A mail whose body and Subject are these bytes as written (8-bit, so nothing re-encodes them)."""
    return b"\r\n".join(
        [
            b"From: Ann Example <ann@corp.example>",
            f"To: {DESK}".encode(),
            b"Subject: " + subject,
            f"Message-ID: <odd-{number}@corp.example>".encode(),
            b"MIME-Version: 1.0",
            f'Content-Type: text/plain; charset="{charset}"'.encode(),
            b"Content-Transfer-Encoding: 8bit",
            b"",
            body,
            b"",
        ]
    )


@pytest.fixture
def mailed(dovecot, smtp_catcher):
    """Delivers raw mails into the desk's mailbox and polls them as the worker would."""
    channel = make_email_channel(dovecot, smtp_catcher)

    def deliver(*raws):
        for raw in raws:
            dovecot.deliver(DESK, raw)
        assert not poll(channel).error

    return deliver


def test_odd_text_in_an_email_is_shown_intact_and_escaped(mailed, agent_client):
    """Subjects in raw UTF-8 (as SMTPUTF8 mail has them): the standard library's encoder drops the space before
    an encoded word that starts with the em dash, so a mail it built would not carry the text to begin with."""
    mailed(
        *(
            raw_mail(text.encode(), subject=f"{name}: {text}".encode(), number=n)
            for n, (name, text) in enumerate(KEPT.items())
        )
    )
    for name, text in KEPT.items():
        ticket = Ticket.objects.get(subject=f"{name}: {text}")
        assert ticket.messages.get().body == text
        html = agent_client.get(detail_url(ticket)).content.decode()
        assert escape(text) in html
        assert escape(f"{name}: {text}") in html
        assert "<script>alert" not in html
        assert "<img src=x" not in html


@pytest.mark.parametrize(
    ("charset", "body", "shown"),
    [
        ("utf-8", "Łódź: the printer is ".encode() + b"caf\xe9 broken", "Łódź: the printer is caf\ufffd broken"),
        ("shift_jis", "プリンタ".encode("shift_jis") + b" \x81\x7f end", "プリンタ \ufffd\x7f end"),
    ],
    ids=["UTF-8 with a Latin-1 byte", "Shift_JIS with an invalid pair"],
)
def test_a_body_with_bytes_its_charset_cannot_hold_is_shown_with_them_replaced(
    mailed, agent_client, charset, body, shown
):
    """What the declared charset reads is kept; only the bytes it cannot read become U+FFFD, with a note."""
    mailed(raw_mail(body, charset=charset))
    assert Message.objects.get().body == shown
    assert escape(shown) in ticket_page(agent_client)


@pytest.mark.parametrize(
    ("subject", "shown"),
    [("Łódź 🎉 שלום".encode(), "Łódź 🎉 שלום"), (b"Caf\xe9 cr\xe8me", "Café crème")],
    ids=["UTF-8", "Windows-1252"],
)
def test_an_8_bit_subject_is_read_and_shown(mailed, agent_client, subject, shown):
    mailed(raw_mail(b"The printer is broken.", subject=subject))
    assert Ticket.objects.get().subject == shown
    assert escape(shown) in ticket_page(agent_client)


def test_a_1_mb_email_is_kept_up_to_the_limit_with_a_visible_note(mailed, agent_client):
    text = "é" + "a" * (1024 * 1024 - 1)
    mailed(raw_mail(text.encode()))
    cut = len(text) - Message.MAX_BODY_LENGTH
    assert Message.objects.get().body == text[: Message.MAX_BODY_LENGTH] + f"\n… [truncated {cut} characters]"
    assert f"[truncated {cut} characters]" in ticket_page(agent_client)


# The portal: an employee's request and reply, and the agent's answer -------------------------------------------


@pytest.fixture
def portal_post(maya_client, portal_channel, django_capture_on_commit_callbacks):
    """Maya posts a portal form; ingestion runs as a worker would."""

    def post(url, data):
        with django_capture_on_commit_callbacks(execute=True):
            return maya_client.post(url, data)

    return post


@pytest.fixture
def agent_browser(agent):
    """The agent's own client (``maya_client`` is the test's client)."""
    browser = Client()
    browser.force_login(agent)
    return browser


@pytest.mark.parametrize("text", KEPT.values(), ids=KEPT.keys())
def test_odd_text_in_the_portal_is_shown_intact_and_escaped_to_both_sides(
    portal_post, maya_client, agent_browser, agent, django_capture_on_commit_callbacks, text
):
    portal_post(reverse("portal:ticket-new"), portal_form(subject=text[:100], description=f"asked: {text}"))
    ticket = Ticket.objects.get()
    portal_post(reverse("portal:ticket-reply", args=[ticket.pk]), portal_form(body=f"added: {text}"))
    with django_capture_on_commit_callbacks(execute=True):
        reply_to_ticket(ticket=ticket, author=agent, body=f"answered: {text}", thread=latest_thread(ticket))

    assert [m.body for m in ticket.messages.order_by("id")] == [
        f"{said}: {text}" for said in ("asked", "added", "answered")
    ]
    assert ticket.subject == text[:100]
    for page in (agent_browser.get(detail_url(ticket)), maya_client.get(reverse("portal:ticket", args=[ticket.pk]))):
        html = page.content.decode()
        for said in ("asked", "added", "answered"):
            assert escape(f"{said}: {text}") in html
        assert "<script>alert" not in html
        assert "<img src=x" not in html


def test_a_portal_form_with_a_nul_is_refused_clearly(portal_post):
    """A browser never sends one; Django's forms refuse it (PostgreSQL could not hold it), with a message."""
    response = portal_post(reverse("portal:ticket-new"), portal_form(subject="VPN", description="before\x00after"))
    assert response.status_code == 200
    assert "Null characters are not allowed." in response.content.decode()
    assert not Ticket.objects.exists()


def test_a_portal_form_with_bytes_that_are_not_utf8_arrives_with_them_replaced(
    maya_client, portal_channel, django_capture_on_commit_callbacks
):
    """A form posted in Latin-1 (``%E9``), as a misconfigured browser or script would."""
    body = f"key={portal_form()['key']}&subject=VPN&description=caf%E9+down".encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = maya_client.post(reverse("portal:ticket-new"), body, "application/x-www-form-urlencoded")
    assert response.status_code == 302
    assert Message.objects.get().body == "caf\ufffd down"


def test_a_portal_message_over_the_limit_is_refused_with_the_limit(portal_post):
    description = "a" * (Message.MAX_BODY_LENGTH + 1)
    response = portal_post(reverse("portal:ticket-new"), portal_form(subject="Log", description=description))
    assert response.status_code == 200
    assert "Ensure this value has at most" in response.content.decode()
    assert not Ticket.objects.exists()
