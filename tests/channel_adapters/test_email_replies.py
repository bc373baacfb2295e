"""What the desk's mail looks like once it reaches the SMTP server: acknowledgements, Cc'd followers, files."""

import pytest

from tests.channel_adapters.email_mail import DESK, mail, make_email_channel
from tests.helpers import poll_as_worker
from tickets.models import Message, Ticket
from tickets.replies import reply_to_ticket

pytestmark = pytest.mark.django_db

ACK = {"subject": "We got it: {subject}", "body": "Hello {name}, your request is ticket #{ticket}."}


def test_a_new_ticket_is_acknowledged_once_as_an_auto_reply(dovecot, smtp_catcher, django_capture_on_commit_callbacks):
    channel = make_email_channel(dovecot, smtp_catcher, auto_ack=ACK)
    dovecot.deliver(DESK, mail(message_id="<new@corp.example>"))
    with django_capture_on_commit_callbacks(execute=True):
        poll_as_worker(channel)
    ticket = Ticket.objects.get()
    [ack] = smtp_catcher.wait_for(1)
    assert ack["Subject"] == f"We got it: Laptop broken [#{ticket.pk}]"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["X-Auto-Response-Suppress"] == "All"
    assert ack["From"] == "IT Help <help@desk.example>"
    assert ack["In-Reply-To"] == "<new@corp.example>"
    assert ack.message.get_body(("plain",)).get_content().strip() == (
        f"Hello Ann Example, your request is ticket #{ticket.pk}."
    )

    # The requester's out-of-office answer to the acknowledgement opens nothing and is not acknowledged.
    dovecot.deliver(
        DESK,
        mail(
            "I am out of the office until Monday.",
            subject=f"Automatic reply: {ack['Subject']}",
            in_reply_to=ack["Message-ID"],
            headers={"Auto-Submitted": "auto-replied"},
        ),
    )
    with django_capture_on_commit_callbacks(execute=True):
        poll_as_worker(channel)
    assert Ticket.objects.count() == 1
    assert Message.objects.filter(direction=Message.Direction.INBOUND).count() == 1
    assert len(smtp_catcher.messages) == 1


def test_cc_people_follow_the_ticket_and_get_reply_all(
    dovecot, smtp_catcher, agent, django_capture_on_commit_callbacks
):
    channel = make_email_channel(dovecot, smtp_catcher)
    dovecot.deliver(
        DESK, mail(cc="Bo Boss <bo@corp.example>, IT Help <help@desk.example>", message_id="<cc@corp.example>")
    )
    poll_as_worker(channel)
    ticket = Ticket.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        reply_to_ticket(ticket=ticket, author=agent, body="Looking into it.")
    [reply] = smtp_catcher.wait_for(1)
    assert reply["To"] == "ann@corp.example"
    assert reply["Cc"] == "bo@corp.example"
    assert sorted(smtp_catcher.messages[0].rcpt_tos) == ["ann@corp.example", "bo@corp.example"]

    # Bo answers all: his mail joins the ticket, and the requester stays Ann.
    dovecot.deliver(
        DESK,
        mail(
            "Please prioritise, she presents tomorrow.",
            sender="Bo Boss <bo@corp.example>",
            subject=reply["Subject"],
            in_reply_to=reply["Message-ID"],
        ),
    )
    poll_as_worker(channel)
    ticket.refresh_from_db()
    assert Ticket.objects.count() == 1
    assert ticket.requester.display_name == "Ann Example"
    assert ticket.messages.filter(direction=Message.Direction.INBOUND).count() == 2

    smtp_catcher.reset()
    with django_capture_on_commit_callbacks(execute=True):
        reply_to_ticket(ticket=ticket, author=agent, body="Will do.", mode="sender")
    [only] = smtp_catcher.wait_for(1)
    assert only.rcpt_tos == ["bo@corp.example"]  # who wrote last, as a mail client's Reply
    assert only["Cc"] is None
