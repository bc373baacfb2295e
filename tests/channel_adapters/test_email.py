"""The email channel end to end: mail in a real Dovecot → tickets; replies → a real SMTP server, threaded."""

import pytest

from tests.channel_adapters.email_mail import DESK, mail, make_email_channel
from tests.helpers import poll_as_worker
from tickets.models import Message, Ticket
from tickets.replies import reply_to_ticket

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
