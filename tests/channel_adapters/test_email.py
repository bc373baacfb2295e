"""The email channel end to end: mail in a real Dovecot → tickets; replies → a real SMTP server, threaded."""

import base64
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from channels_ingest import delivery, polling, sweep
from channels_ingest.models import InboundMessage
from channels_ingest.tasks import poll_channel
from helpdesk.celery import app as celery_app
from tests.channel_adapters.email_mail import DESK, html_only_mail, inline_image_mail, mail, make_email_channel
from tests.helpers import PNG, poll_as_worker, reply_and_deliver, wait_for
from tickets.models import Attachment, Message, Ticket
from tickets.replies import reply_to_ticket

CORPUS = Path(__file__).parent / "fixtures" / "email"

pytestmark = pytest.mark.django_db


def test_a_mail_opens_a_ticket_and_the_reply_goes_back_threaded(
    dovecot, smtp_catcher, agent, django_capture_on_commit_callbacks
):
    channel = make_email_channel(dovecot, smtp_catcher)
    dovecot.deliver(DESK, mail(message_id="<first@corp.example>"))
    outcome = poll_as_worker(channel)
    assert outcome.stored == 1, outcome
    ticket = Ticket.objects.get()
    assert ticket.subject == "Laptop broken"
    [inbound] = ticket.messages.all()
    assert inbound.body == "My laptop will not boot."
    assert inbound.external_id == "first@corp.example"

    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_to_ticket(ticket=ticket, author=agent, body="Hold the power button for 10 s.")
    reply.refresh_from_db()
    assert reply.delivery_status == Message.DeliveryStatus.SENT, reply.delivery_error
    [caught] = smtp_catcher.messages
    assert caught["Subject"] == f"Re: Laptop broken [#{ticket.pk}]"
    assert caught["In-Reply-To"] == "<first@corp.example>"
    assert caught["To"] == "ann@corp.example"
    assert caught["Message-ID"] == f"<{reply.external_id}>"

    dovecot.deliver(
        DESK,
        mail(
            "Thanks, it works.",
            subject="Re: Laptop broken",
            in_reply_to=caught["Message-ID"],
            message_id="<second@corp.example>",
        ),
    )
    poll_as_worker(channel)
    assert Ticket.objects.count() == 1
    assert ticket.messages.filter(direction=Message.Direction.INBOUND).count() == 2


# Fixture in, expected ticket out ------------------------------------------------------------------------------


@pytest.fixture
def channel(dovecot, smtp_catcher):
    return make_email_channel(dovecot, smtp_catcher)


def arrives(dovecot, channel, *raws):
    """Mail delivered into the desk's INBOX, then a poll as the worker runs it (ingestion and downloads too)."""
    for raw in raws:
        dovecot.deliver(DESK, raw)
    outcome = poll_as_worker(channel)
    assert not outcome.error, outcome
    return outcome


def test_a_new_mail_opens_a_ticket_named_by_its_subject(dovecot, channel):
    arrives(dovecot, channel, mail("The printer on floor 3 eats paper.", subject="Printer jam, floor 3"))
    ticket = Ticket.objects.get()
    assert ticket.subject == "Printer jam, floor 3"
    [message] = ticket.messages.all()
    assert message.body == "The printer on floor 3 eats paper."
    assert message.author_identity.external_id == "ann@corp.example"
    assert message.meta["email"]["from"] == {"email": "ann@corp.example", "name": "Ann Example"}
    assert message.meta["original"]["name"] == "original.eml"


def test_an_html_only_mail_is_read_as_text_and_its_html_kept_sanitized(dovecot, channel):
    raw = html_only_mail('<p>VPN <b>fails</b> since today</p><script>alert("x")</script><img src=x onerror=alert(1)>')
    arrives(dovecot, channel, raw)
    message = Message.objects.get()
    assert message.body == "VPN fails since today"
    assert "<b>fails</b>" in message.meta["email"]["html"]
    assert "script" not in message.meta["email"]["html"]
    assert "onerror" not in message.meta["email"]["html"]


def test_attachments_are_downloaded_byte_for_byte(dovecot, channel):
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 500  # several fetch chunks
    log = b"line 1\nline 2\r\nno newline at the end"
    arrives(
        dovecot,
        channel,
        mail("Logs attached.", files=[("report.pdf", pdf, "application/pdf"), ("boot.log", log, "text/plain")]),
    )
    stored = {a.name: (a.status, a.content_type, a.size, a.file.read()) for a in Attachment.objects.all()}
    assert stored == {
        "report.pdf": ("stored", "application/pdf", len(pdf), pdf),
        "boot.log": ("stored", "text/plain", len(log), log),
    }
    assert {a.message.body for a in Attachment.objects.all()} == {"Logs attached."}


def test_an_inline_cid_image_is_kept_and_named_by_its_content_id(dovecot, channel):
    arrives(dovecot, channel, inline_image_mail(PNG, cid="screen1@corp.example"))
    message = Message.objects.get()
    email_meta = message.meta["email"]
    assert 'src="cid:screen1@corp.example"' in email_meta["html"]
    index = email_meta["inline"]["screen1@corp.example"]
    attachment = list(message.attachments.order_by("id"))[index]
    assert (attachment.status, attachment.content_type, attachment.file.read()) == ("stored", "image/png", PNG)


def test_odd_text_is_stored_intact(dovecot, channel):
    subject = 'Łódź 🎉 <script>alert("s")</script> שלום\u200b'
    text = 'Emoji 👩🏽‍💻, RTL مرحبا بالعالم, zero\u200bwidth\u200d joiner, <script>alert("b")</script> & done'
    arrives(dovecot, channel, mail(text, subject=subject))
    ticket = Ticket.objects.get()
    assert ticket.subject == subject
    assert ticket.messages.get().body == text


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"X-Autoreply": "yes"},
        {"Precedence": "bulk"},
        {"Precedence": "list", "List-Id": "<staff.corp.example>"},
        {"X-Loop": DESK},
    ],
    ids=["auto-submitted", "x-autoreply", "bulk", "list", "x-loop"],
)
def test_noise_opens_no_ticket(dovecot, channel, headers):
    arrives(dovecot, channel, mail("I am out of office until Monday.", subject="Out of office", headers=headers))
    assert not Ticket.objects.exists()
    assert not InboundMessage.objects.exists()
    arrives(dovecot, channel, mail("A real request."))
    assert Ticket.objects.count() == 1  # the mailbox moved on past the noise


def test_our_own_mail_coming_back_opens_no_ticket(dovecot, channel):
    arrives(
        dovecot,
        channel,
        mail("a reply of ours", message_id="<helpdesk-12-1700000000000000@desk.example>"),
        mail("sent from the desk", sender=f"IT Help <{DESK}>", to="ann@corp.example"),
    )
    assert not Ticket.objects.exists()
    assert not InboundMessage.objects.exists()


def test_a_bounce_of_our_reply_marks_it_failed_with_the_servers_words(dovecot, channel, agent):
    arrives(dovecot, channel, mail())
    reply = reply_and_deliver(Ticket.objects.get(), agent, "Try a restart.")
    assert reply.delivery_status == Message.DeliveryStatus.SENT, reply.delivery_error
    bounce = (CORPUS / "bounce_exim_no_mime_auto_submitted.eml").read_bytes()
    assert b"E1P1ce6-000Egt-GZ@e1.example.org" in bounce
    arrives(dovecot, channel, bounce.replace(b"E1P1ce6-000Egt-GZ@e1.example.org", reply.external_id.encode()))

    reply.refresh_from_db()
    assert reply.delivery_status == Message.DeliveryStatus.FAILED
    assert "550 5.7.0" in reply.delivery_error
    assert "Please use the smtp server of your ISP" in reply.delivery_error
    assert Ticket.objects.count() == 1
    assert Message.objects.count() == 2


# Threading ---------------------------------------------------------------------------------------------------


def test_a_reply_joins_by_in_reply_to(dovecot, channel):
    arrives(dovecot, channel, mail(message_id="<a1@corp.example>"))
    arrives(dovecot, channel, mail("Still broken.", subject="something else", in_reply_to="<a1@corp.example>"))
    assert Ticket.objects.count() == 1
    assert Ticket.objects.get().messages.count() == 2


def test_a_message_id_with_bytes_that_are_not_utf8_opens_a_ticket_and_its_reply_joins(dovecot, channel):
    """Found by the damage corpus: such an id was the stored key as it was read, which PostgreSQL refuses, so the
    poll crashed on it and on every retry."""
    first = mail(message_id="<cafe-1@corp.example>").replace(b"cafe-1", b"caf\xe9-1")
    reply = mail("Still broken.", subject="other", in_reply_to="<cafe-1@corp.example>").replace(b"cafe-1", b"caf\xe9-1")
    arrives(dovecot, channel, first)
    arrives(dovecot, channel, reply)
    assert Ticket.objects.get().messages.count() == 2


def test_a_reply_joins_by_references_alone(dovecot, channel):
    arrives(dovecot, channel, mail(message_id="<a1@corp.example>"))
    arrives(
        dovecot,
        channel,
        mail("Still broken.", subject="Re: Laptop", references="<elsewhere@corp.example> <a1@corp.example>"),
    )
    assert Ticket.objects.count() == 1
    assert Ticket.objects.get().messages.count() == 2


def test_outlooks_reply_to_our_reply_without_references_joins(dovecot, channel, agent):
    arrives(dovecot, channel, mail(message_id="<a1@corp.example>"))
    ticket = Ticket.objects.get()
    reply = reply_and_deliver(ticket, agent, "Which model is it?")
    outlook = mail(
        "A ThinkPad T14.",
        subject="AW: Laptop broken",
        in_reply_to=f"<{reply.external_id}>",
        headers={"Thread-Index": "AdmPp3FxR0s2xUuXR0W0t1Zq3v1Gvw==", "X-Mailer": "Microsoft Outlook 16.0"},
    )
    assert b"References" not in outlook
    arrives(dovecot, channel, outlook)
    assert Ticket.objects.count() == 1
    assert ticket.messages.filter(direction=Message.Direction.INBOUND).count() == 2


def test_a_mail_naming_its_ticket_in_the_subject_joins_it(dovecot, channel):
    arrives(dovecot, channel, mail(message_id="<a1@corp.example>"))
    ticket = Ticket.objects.get()
    arrives(dovecot, channel, mail("Any news?", subject=f"Laptop [#{ticket.pk}]", message_id="<a2@corp.example>"))
    assert Ticket.objects.count() == 1
    assert ticket.messages.count() == 2


def test_never_threaded_by_subject_alone(dovecot, channel):
    arrives(dovecot, channel, mail(message_id="<a1@corp.example>"))
    arrives(dovecot, channel, mail("Mine too!", sender="Bob <bob@corp.example>", message_id="<b1@corp.example>"))
    arrives(dovecot, channel, mail("And again.", subject="Re: Laptop broken", message_id="<a2@corp.example>"))
    assert Ticket.objects.count() == 3
    assert set(Ticket.objects.values_list("subject", flat=True)) == {"Laptop broken", "Re: Laptop broken"}


# Bad input, mailbox handling ---------------------------------------------------------------------------------


def test_a_message_that_cannot_be_parsed_is_kept_raw_and_the_next_one_arrives(dovecot, channel):
    garbage = b"\r\n\r\nthis is not a mail message at all \xff\xfe"
    arrives(dovecot, channel, garbage, mail("The next one."))
    [failed] = InboundMessage.objects.filter(status=InboundMessage.Status.FAILED)
    assert "Not a readable mail message" in failed.error
    assert "no header block" in failed.error
    assert base64.b64decode(failed.payload["raw"]["raw_base64"]) == garbage
    assert Ticket.objects.get().messages.get().body == "The next one."
    poll_as_worker(channel)
    assert InboundMessage.objects.filter(status=InboundMessage.Status.FAILED).count() == 1


def flags(dovecot, folder="INBOX"):
    with dovecot.client(DESK) as imap:
        imap.select_folder(folder, readonly=True)
        return {uid: set(data[b"FLAGS"]) for uid, data in imap.fetch(imap.search(["ALL"]), ["FLAGS"]).items()}


def test_stored_mail_is_marked_seen(dovecot, channel):
    uid = dovecot.deliver(DESK, mail())
    assert b"\\Seen" not in flags(dovecot)[uid]
    poll_as_worker(channel)
    assert b"\\Seen" in flags(dovecot)[uid]


def test_stored_mail_is_moved_and_its_files_still_download(dovecot, smtp_catcher):
    channel = make_email_channel(dovecot, smtp_catcher, after_store="move", move_to="Processed")
    arrives(dovecot, channel, mail("see log", files=[("boot.log", b"kernel panic\n", "text/plain")]))
    assert flags(dovecot) == {}
    assert len(flags(dovecot, "Processed")) == 1
    assert Attachment.objects.get().file.read() == b"kernel panic\n"


# SMTP refusals and copies -------------------------------------------------------------------------------------


def test_a_reply_refused_with_550_fails_with_the_servers_words(dovecot, channel, smtp_catcher, agent):
    arrives(dovecot, channel, mail())
    smtp_catcher.refuse_next("550 5.7.1 Message rejected as spam by Content Filtering")
    reply = reply_and_deliver(Ticket.objects.get(), agent, "Try a restart.")
    assert reply.delivery_status == Message.DeliveryStatus.FAILED
    assert "550 5.7.1 Message rejected as spam by Content Filtering" in reply.delivery_error
    assert smtp_catcher.messages == []


def test_a_reply_refused_with_451_is_retried(dovecot, channel, smtp_catcher, agent):
    arrives(dovecot, channel, mail())
    smtp_catcher.refuse_next("451 4.3.0 Try again later")
    celery_app.conf.task_always_eager = False
    reply = reply_to_ticket(ticket=Ticket.objects.get(), author=agent, body="Try a restart.")
    outcome = delivery.deliver_message(reply.pk)
    assert outcome.status == "retry"
    reply.refresh_from_db()
    assert reply.delivery_status == Message.DeliveryStatus.QUEUED
    assert "451 4.3.0 Try again later" in reply.delivery_error
    assert reply.delivery_next_attempt_at > timezone.now()
    assert delivery.deliver_message(reply.pk).status == "sent"
    [caught] = smtp_catcher.messages
    assert caught["Message-ID"] == f"<{Message.objects.get(pk=reply.pk).external_id}>"


def test_a_copied_person_gets_the_reply(dovecot, channel, smtp_catcher, agent):
    arrives(dovecot, channel, mail(cc="Bob <bob@corp.example>"))
    reply = reply_and_deliver(Ticket.objects.get(), agent, "Looking into it.")
    assert reply.delivery_status == Message.DeliveryStatus.SENT, reply.delivery_error
    [caught] = smtp_catcher.messages
    assert caught["Cc"] == "bob@corp.example"
    assert sorted(caught.rcpt_tos) == ["ann@corp.example", "bob@corp.example"]


# Nothing lost, nothing twice ---------------------------------------------------------------------------------


def deliver_many(dovecot, texts):
    """Mail appended in one IMAP session (faster than a login per message)."""
    with dovecot.client(DESK) as imap:
        for text in texts:
            imap.append("INBOX", mail(text, subject=text))


def assert_each_stored_once(texts):
    assert sorted(InboundMessage.objects.values_list("payload__text", flat=True)) == sorted(texts)
    assert sorted(Message.objects.values_list("body", flat=True)) == sorted(texts)


def test_a_uidvalidity_change_loses_nothing_and_duplicates_nothing(dovecot, channel):
    before = [f"before {i}" for i in range(3)]
    arrives(dovecot, channel, *[mail(text, subject=text) for text in before])
    old = channel.cursor["uidvalidity"]
    dovecot.deliver(DESK, mail("unread at the change", subject="unread at the change"))
    assert dovecot.set_uidvalidity(DESK, "INBOX", old + 1000) == old + 1000
    dovecot.deliver(DESK, mail("after the change", subject="after the change"))

    arrives(dovecot, channel)
    assert channel.cursor["uidvalidity"] == old + 1000
    arrives(dovecot, channel)
    assert_each_stored_once([*before, "unread at the change", "after the change"])


def test_a_poll_that_dies_after_its_first_page_is_resumed_by_the_next(dovecot, smtp_catcher):
    channel = make_email_channel(dovecot, smtp_catcher, batch_size=2)
    texts = [f"mail {i}" for i in range(5)]
    deliver_many(dovecot, texts)
    inserts = []

    def die_at_the_second_page(execute, sql, params, many, context):
        if sql.startswith('INSERT INTO "channels_ingest_inboundmessage"'):
            inserts.append(sql)
            if len(inserts) == 2:
                raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(die_at_the_second_page), pytest.raises(OperationalError):
        poll_as_worker(channel)
    assert InboundMessage.objects.count() == 2
    channel.refresh_from_db()
    assert channel.cursor["uid"] == 2

    arrives(dovecot, channel)
    arrives(dovecot, channel)
    assert_each_stored_once(texts)
    assert all(b"\\Seen" in flagged for flagged in flags(dovecot).values())


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_poll_loses_nothing_and_duplicates_nothing(dovecot, smtp_catcher, celery_worker_process):
    """SIGKILL while a worker reads a mailbox one message per page: the next poll (started by beat's sweep once
    the dead worker's lease lapses) stores the rest, and each mail is one stored message."""
    channel = make_email_channel(dovecot, smtp_catcher, batch_size=1)
    texts = [f"mail {i}" for i in range(300)]
    deliver_many(dovecot, texts)
    doomed = celery_worker_process(concurrency=1)
    poll_channel.delay(channel.pk)
    wait_for(lambda: InboundMessage.objects.exists(), interval=0.01, message="the first stored page")
    doomed.kill()
    partial = InboundMessage.objects.count()
    assert partial < len(texts), "the worker finished before it could be killed; raise the total"

    celery_worker_process(concurrency=2)
    sweep.sweep(now=timezone.now() + polling.POLL_LEASE + timedelta(seconds=1))
    wait_for(lambda: InboundMessage.objects.count() == len(texts), timeout=60, message="every mail stored")
    sweep.sweep(now=timezone.now() + timedelta(seconds=11))  # ingestion the dead worker took with it
    wait_for(lambda: Message.objects.count() == len(texts), timeout=60, message="every mail ingested")
    assert_each_stored_once(texts)
    assert Ticket.objects.count() == len(texts)


def test_mail_left_behind_by_a_poll_that_stopped_before_moving_it_is_moved_next_time(dovecot, smtp_catcher):
    channel = make_email_channel(dovecot, smtp_catcher, after_store="move", move_to="Done", batch_size=1)
    for n in range(3):
        dovecot.deliver(DESK, mail(f"Problem {n}", message_id=f"<p{n}@corp.example>"))
    adapter = channel.adapter()
    pages = adapter.poll({})
    first = next(pages)  # stored (say), and the worker dies before the generator moves it
    pages.close()
    assert [e.text for e in first.envelopes] == ["Problem 0"]
    pages = list(adapter.poll(first.cursor))
    assert [e.text for page in pages for e in page.envelopes] == ["Problem 1", "Problem 2"]
    with dovecot.client(DESK) as imap:
        assert imap.select_folder("INBOX")[b"EXISTS"] == 0
        assert imap.select_folder("Done")[b"EXISTS"] == 3


def test_the_full_text_is_kept_only_when_it_holds_history(dovecot, smtp_catcher):
    """A signature alone is folded as the signature; "Show quoted text" is for quoted history."""
    channel = make_email_channel(dovecot, smtp_catcher)
    dovecot.deliver(
        DESK, mail("Hi,\n\nThe VPN is down.\n\nThanks,\nMaya\n-- \nMaya Patel, Finance", message_id="<a@x>")
    )
    dovecot.deliver(DESK, mail("Still down.\n\nOn Mon, IT wrote:\n> Try again.", message_id="<b@x>", subject="Re: VPN"))
    poll_as_worker(channel)
    signed, quoting = (Message.objects.get(external_id=key).meta["email"] for key in ("a@x", "b@x"))
    assert signed["signature"]
    assert signed["quoted"] == ""
    assert quoting["quoted"].endswith("> Try again.")
