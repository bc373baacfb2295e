"""The 58 real-world messages of the corpus in a real mailbox, polled through the whole pipeline: nothing crashes,
noise opens no ticket, bounces are read as bounces, quoted replies are stored as their new text, and a mailbox
read again stores nothing twice. (test_email_parsing.py checks the parser on the same files; this checks what
the desk stores.)"""

import email
import email.policy
import json
from pathlib import Path

import pytest

from channels_ingest.models import InboundMessage
from tests.channel_adapters.email_mail import DESK, make_email_channel
from tests.helpers import poll_as_worker
from tickets.models import Message, Ticket

pytestmark = pytest.mark.django_db

CORPUS = Path(__file__).parent / "fixtures" / "email"
MESSAGES = sorted(path.name for path in CORPUS.glob("*.eml"))
EXPECTED_REPLIES = json.loads((CORPUS / "expected_reply_text.json").read_text())
NOISE_PREFIXES = ("autoreply_", "bounce_", "mdn_", "arf_")
#: A mailing-list post (Precedence: bulk), noise by its headers whatever its name says.
LIST_MAIL = {"charset_raw_latin1_in_from_display_name.eml"}
#: No From header at all: nobody to answer, so kept as a failed row with the raw bytes.
NO_SENDER = {"charset_big5_labelled_us_ascii_base64.eml", "malformed_encoded_word_unknown_charset.eml"}
#: The permanent failures whose bytes name the Message-ID of the mail they return.
BOUNCES_NAMING_THEIR_ORIGINAL = {
    "bounce_exim_no_mime_auto_submitted.eml",
    "bounce_gmail_plaintext_not_rfc3464.eml",
    "bounce_mailsite_quota_rfc822_headers.eml",
    "bounce_qmail_plaintext_original_iso2022jp.eml",
    "bounce_sun_ims_quota_via_mailing_list.eml",
}
#: mail-parser-reply has no Russian quote header ("написал:"), so this reply keeps that line (a known miss).
KNOWN_MISSES = {"reply_android_gmail_base64_russian_header.eml"}


def message_id(name):
    raw = (CORPUS / name).read_bytes()
    return str(email.message_from_bytes(raw, policy=email.policy.compat32).get("Message-ID", "")).strip()


def identity(name):
    """What makes two files one message: their Message-ID (a file without one is a message of its own)."""
    return message_id(name) or name


def _lines(text):
    """Line by line without outer spaces: mail-parser-reply strips them ("Hello " and "-- ")."""
    return "\n".join(line.strip() for line in text.strip().split("\n"))


def test_the_corpus_through_the_pipeline(dovecot, smtp_catcher):
    assert len(MESSAGES) == 58
    channel = make_email_channel(dovecot, smtp_catcher, batch_size=10)
    by_uid = {dovecot.deliver(DESK, (CORPUS / name).read_bytes()): name for name in MESSAGES}

    outcome = poll_as_worker(channel)
    assert not outcome.error, outcome
    noise = {name for name in MESSAGES if name.startswith(NOISE_PREFIXES)} | LIST_MAIL
    real = set(MESSAGES) - noise - NO_SENDER

    stored = {json.loads(m.meta["original"]["ref"])["uid"]: m for m in Message.objects.all()}
    assert len(stored) == Message.objects.count()
    stored_names = {by_uid[uid] for uid in stored}
    assert not stored_names & noise
    # Several corpus files share one Message-ID: one message to the desk, as a copy delivered twice would be.
    assert {identity(name) for name in stored_names} == {identity(name) for name in real}
    assert len(stored_names) == len({identity(name) for name in real})
    assert Ticket.objects.count() == len(stored_names)  # unrelated mail: one ticket each

    failed = InboundMessage.objects.filter(status=InboundMessage.Status.FAILED)
    assert {by_uid[row.payload["raw"]["uid"]] for row in failed} == NO_SENDER
    assert all(row.payload["raw"]["raw_base64"] and "no sender" in row.error for row in failed)

    reports = InboundMessage.objects.filter(payload__kind="status")
    assert reports.count() == len(BOUNCES_NAMING_THEIR_ORIGINAL)
    assert {message_id(name).strip("<>") for name in BOUNCES_NAMING_THEIR_ORIGINAL if message_id(name)} <= set(
        reports.values_list("external_id", flat=True)
    )
    assert set(reports.values_list("error", flat=True)) == {"the reported reply is not stored"}

    for name, expected in EXPECTED_REPLIES.items():
        [message] = [m for uid, m in stored.items() if by_uid[uid] == name]
        signature = message.meta["email"]["signature"]
        shown = message.body + ("\n\n" + signature if signature else "")
        if name in KNOWN_MISSES:
            assert _lines(shown) != _lines(expected["expected_new_text"]), f"{name} is read right now: unlist it"
            assert message.body.startswith("Hello")
        else:
            assert _lines(shown) == _lines(expected["expected_new_text"]), name
            assert message.body in message.meta["email"]["quoted"], name  # with the history, one click away

    counts = (InboundMessage.objects.count(), Message.objects.count(), Ticket.objects.count())
    assert not poll_as_worker(channel).stored
    channel.cursor = {}  # read the whole mailbox again, as after a UIDVALIDITY change
    channel.save()
    outcome = poll_as_worker(channel)
    assert not outcome.error, outcome
    assert outcome.stored == 0
    assert (InboundMessage.objects.count(), Message.objects.count(), Ticket.objects.count()) == counts
