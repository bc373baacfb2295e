"""Damaged mail in a real mailbox (Dovecot), polled through the real IMAP path and the pipeline: every message
is a ticket message or a failed row that keeps its raw bytes, the poll never stops, and the good messages
delivered beside the damaged ones arrive.

A deterministic corpus of damage, not a hypothesis fuzz: each example would need a mailbox of its own, an
IMAP APPEND and a whole poll, so 200 examples would cost half a minute; one mailbox holding every damaged
message is read by one poll in a few seconds, which also proves that one bad message never costs the others.
The damage: random byte edits (the parsing fuzz's, in ``test_email_parsing``) with fixed seeds on each message
of the corpus that a person wrote (noise and bounces are skipped by design), and named structural damage.
"""

import base64
import json
import random
import re
from pathlib import Path

import pytest

from channels_ingest.models import InboundMessage
from tests.channel_adapters.email_mail import DESK, forwarded_inside_itself, mail, make_email_channel
from tests.helpers import poll_as_worker
from tickets.models import Message

pytestmark = pytest.mark.django_db

CORPUS = Path(__file__).parent / "fixtures" / "email"
#: Skipped by design (auto-replies, bounces, receipts, abuse reports, a list post): damage would prove nothing.
NOISE = ("autoreply_", "bounce_", "mdn_", "arf_", "charset_raw_latin1_in_from_display_name")
WRITTEN = sorted(path for path in CORPUS.glob("*.eml") if not path.name.startswith(NOISE))
SEEDS_PER_MESSAGE = 2
MESSAGE_ID = re.compile(rb"^Message-ID:[^\r\n]*(\r?\n[ \t][^\r\n]*)*", re.IGNORECASE | re.MULTILINE)


def unique(raw: bytes, name: str) -> bytes:
    """The message with a Message-ID of its own: several corpus files share one, and a message stored once by
    its id would hide whether its copies arrived."""
    header = f"Message-ID: <damage-{name}@corp.example>".encode()
    return MESSAGE_ID.sub(lambda _: header, raw, count=1) if MESSAGE_ID.search(raw) else header + b"\r\n" + raw


def edited(raw: bytes, seed: int) -> bytes:
    """Up to 20 random byte edits: a byte changed, a run deleted, or a fragment that means something to MIME."""
    data = bytearray(raw)
    rng = random.Random(seed)
    for _ in range(rng.randrange(1, 21)):
        position = rng.randrange(len(data)) if data else 0
        action = rng.randrange(3)
        if action == 0 and data:
            data[position] = rng.randrange(256)
        elif action == 1 and data:
            del data[position : position + rng.randrange(1, 40)]
        else:
            data[position:position] = rng.choice([b"\r\n", b"\n--", b"=?", b"?=", b"<", b">", b";", b"\xff", b" "])
    return bytes(data)


def structural() -> dict[str, bytes]:
    good = mail("The printer on floor 3 is jammed again.", subject="Printer")
    head, _, body = good.partition(b"\r\n\r\n")
    return {
        "truncated in the headers": good[: len(head) // 2],
        "headers only": head + b"\r\n",
        "no blank line before the body": head + b"\r\n" + body,
        "bare LF line ends": good.replace(b"\r\n", b"\n"),
        "bare CR line ends": good.replace(b"\r\n", b"\r"),
        "NUL bytes": good.replace(b"jammed", b"ja\x00mm\x00ed"),
        "a 200 KB header line": head + b"\r\nX-Long: " + b"a" * 200_000 + b"\r\n\r\n" + body,
        "10,000 headers": head + b"\r\n" + b"X-H: v\r\n" * 10_000 + b"\r\n" + body,
        "an unknown charset": good.replace(b'charset="utf-8"', b'charset="x-no-such-charset"'),
        "base64 that is not": mail("x", files=[("a.pdf", b"%PDF", "application/pdf")]).replace(b"JVBERg==", b"!!*&"),
        "multipart without a boundary": good.replace(b"Content-Type: text/plain", b"Content-Type: multipart/mixed"),
        "boundary never closed": mail("x", html="<p>x</p>").rsplit(b"--", 2)[0],
        "forwarded 400 levels deep": forwarded_inside_itself(400),
        "8-bit garbage everywhere": bytes(range(256)) * 40,
    }


def corpus() -> dict[str, bytes]:
    damaged = {
        f"{path.name} seed {seed}": edited(unique(path.read_bytes(), f"{path.stem}-{seed}"), seed)
        for path in WRITTEN
        for seed in range(SEEDS_PER_MESSAGE)
    }
    return {**damaged, **{name: unique(raw, f"s{n}") for n, (name, raw) in enumerate(structural().items())}}


def served(dovecot, uid) -> bytes:
    """The message's bytes as the server hands them out (Dovecot ends bare LF lines with CRLF)."""
    with dovecot.client(DESK) as imap:
        imap.select_folder("INBOX", readonly=True)
        return bytes(imap.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"])


def test_every_damaged_message_is_a_ticket_message_or_a_failed_row_with_its_bytes(dovecot, smtp_catcher):
    channel = make_email_channel(dovecot, smtp_catcher, batch_size=25)
    damaged = corpus()
    by_uid = {dovecot.deliver(DESK, raw): name for name, raw in damaged.items()}
    good = [dovecot.deliver(DESK, mail(f"Still here {n}.", subject=f"Good {n}")) for n in range(3)]

    outcome = poll_as_worker(channel)

    assert not outcome.error, outcome
    stored_uids = {json.loads(m.meta["original"]["ref"])["uid"] for m in Message.objects.all()}
    failed = {row.payload["raw"]["uid"]: row for row in InboundMessage.objects.filter(status="failed")}
    assert set(good) <= stored_uids
    lost = {name for uid, name in by_uid.items() if uid not in stored_uids and uid not in failed}
    assert not lost
    for uid, row in failed.items():
        assert base64.b64decode(row.payload["raw"]["raw_base64"]) == served(dovecot, uid), by_uid[uid]
    assert not InboundMessage.objects.exclude(status__in=["processed", "failed"]).exists()
    assert {by_uid[uid] for uid in failed} >= {"8-bit garbage everywhere", "forwarded 400 levels deep"}

    rows = InboundMessage.objects.count()
    assert poll_as_worker(channel).stored == 0  # read past: nothing is read, or stored, twice
    assert InboundMessage.objects.count() == rows
