"""Email in a real browser: mail delivered into a real Dovecot is polled by a real Celery worker into a ticket;
the agent answers in the console, and the SMTP catcher receives the reply, threaded; the employee's answer to
it comes back into the same ticket."""

import json

import pytest
from playwright.sync_api import expect

from channels_ingest.models import Channel
from channels_ingest.queueing import TaskName, enqueue
from tests.channel_adapters.email_mail import DESK, email_config, mail
from tests.helpers import channels_command, open_ticket, wait_for
from tickets.models import Message, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def mailbox(dovecot, smtp_catcher, celery_worker_process):
    """The desk's mailbox, connected with ``manage.py channels add`` (which logs in to IMAP and SMTP)."""
    celery_worker_process()
    output = channels_command(
        "add", "email", "it-mail", "--poll-interval", "0", "--config", json.dumps(email_config(dovecot, smtp_catcher))
    )
    assert "it-mail" in output
    return Channel.objects.get(name="it-mail")


def poll(channel):
    enqueue(TaskName.POLL, channel.pk)


def test_mail_in_a_threaded_reply_out_and_the_answer_back(console, live_server, dovecot, smtp_catcher, mailbox):
    dovecot.deliver(
        DESK,
        mail(
            "Hi,\n\nMy VPN client says the certificate expired.\n\nThanks,\nMaya",
            subject="VPN certificate expired <script>alert(1)</script>",
            sender="Maya Patel <maya@corp.example>",
            message_id="<vpn-1@corp.example>",
        ),
    )
    poll(mailbox)
    ticket = wait_for(lambda: Ticket.objects.first(), message="the worker to open the ticket")

    console.goto(live_server.url + "/")
    console.get_by_role("link", name="VPN certificate expired <script>alert(1)</script>").click()
    expect(console.get_by_text("My VPN client says the certificate expired.")).to_be_visible()
    console.fill("#reply-body", "Please open the VPN app and press Renew.")
    console.get_by_role("button", name="Send reply").click()
    expect(console.get_by_text("Reply queued for delivery.")).to_be_visible()

    [caught] = smtp_catcher.wait_for(1)
    assert caught["To"] == "maya@corp.example"
    assert caught["Subject"] == f"Re: VPN certificate expired <script>alert(1)</script> [#{ticket.pk}]"
    assert caught["In-Reply-To"] == "<vpn-1@corp.example>"
    assert "Alex Agent" in caught["From"]
    assert caught.message.get_body(("plain",)).get_content().strip() == "Please open the VPN app and press Renew."
    reply = Message.objects.get(direction=Message.Direction.OUTBOUND)
    expect(console.locator(f"#message-{reply.pk} .badge.delivery-sent")).to_be_visible()

    dovecot.deliver(
        DESK,
        mail(
            "Renewed, it works now.\n\nOn Fri, IT Help wrote:\n> Please open the VPN app and press Renew.",
            subject=caught["Subject"],
            sender="Maya Patel <maya@corp.example>",
            in_reply_to=caught["Message-ID"],
            references=f"<vpn-1@corp.example> {caught['Message-ID']}",
        ),
    )
    poll(mailbox)
    wait_for(lambda: ticket.messages.filter(direction=Message.Direction.INBOUND).count() == 2, message="the answer")
    open_ticket(console, live_server, ticket)
    expect(console.get_by_text("Renewed, it works now.", exact=True)).to_be_visible()
    answer = ticket.messages.filter(direction=Message.Direction.INBOUND).last()
    quoted = console.locator(f"#message-{answer.pk} details.email-quoted")
    quoted.get_by_text("Show quoted text").click()
    expect(quoted).to_contain_text("> Please open the VPN app and press Renew.")
    assert Ticket.objects.count() == 1
