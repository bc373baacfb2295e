"""What employees write in the portal travels the pipeline as the portal channel's messages: stored first,
exactly once, ingested into tickets, with their files; and the desk's replies come back through the portal
channel's adapter."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from channels_ingest import delivery, sweep
from channels_ingest.models import InboundMessage
from channels_ingest.portal_channel import UPLOAD_FOLDER
from tests.helpers import merge, portal_form, ticket_by_email
from tickets.models import Attachment, Message, Ticket, TicketThread
from tickets.replies import latest_thread, reply_to_ticket

pytestmark = pytest.mark.django_db

NEW = reverse("portal:ticket-new")


def reply_url(ticket):
    return reverse("portal:ticket-reply", args=[ticket.pk])


def files(*named):
    return [SimpleUploadedFile(name, content, content_type=kind) for name, content, kind in named]


@pytest.fixture
def post(maya_client, django_capture_on_commit_callbacks):
    """Post a portal form as Maya, running what the pipeline queues on commit (ingestion, downloads) inline."""

    def send(url, data):
        with django_capture_on_commit_callbacks(execute=True):
            return maya_client.post(url, data)

    return send


def test_a_new_request_with_files_becomes_a_ticket_through_the_pipeline(post, maya, portal_channel):
    response = post(
        NEW,
        portal_form(
            subject="VPN keeps dropping",
            description="Every ten minutes, since Monday.",
            files=files(("vpn.log", b"disconnected\n", "text/plain"), ("screen.png", b"\x89PNG fake", "image/png")),
        ),
    )
    inbound = InboundMessage.objects.get(channel=portal_channel)
    assert inbound.status == InboundMessage.Status.PROCESSED
    ticket = Ticket.objects.get()
    # Ingested after the request here (as by a worker): the employee is told it is on its way.
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:tickets")
    assert (ticket.subject, ticket.channel, ticket.requester.email) == (
        "VPN keeps dropping",
        portal_channel,
        maya.email,
    )
    message = ticket.messages.get()
    assert message.body == "Every ten minutes, since Monday."
    assert message.direction == Message.Direction.INBOUND
    kept = {a.name: (a.status, a.content_type, a.file.read()) for a in message.attachments.all()}
    assert kept == {
        "vpn.log": (Attachment.Status.STORED, "text/plain", b"disconnected\n"),
        "screen.png": (Attachment.Status.STORED, "image/png", b"\x89PNG fake"),
    }
    assert default_storage.listdir(UPLOAD_FOLDER)[1] == []  # the uploads kept for the pipeline are gone


def test_a_form_sent_twice_is_stored_once(post, portal_channel):
    form = portal_form(subject="Printer", description="Out of toner")
    first = post(NEW, form)
    again = post(NEW, {**form, "files": files(("late.txt", b"x", "text/plain"))})
    assert InboundMessage.objects.filter(channel=portal_channel).count() == 1
    assert Ticket.objects.count() == 1
    assert Message.objects.count() == 1
    assert first["Location"] == reverse("portal:tickets")
    assert again["Location"] == reverse("portal:ticket", args=[Ticket.objects.get().pk])  # ingested by then
    assert not Attachment.objects.exists()
    assert not default_storage.exists(UPLOAD_FOLDER) or default_storage.listdir(UPLOAD_FOLDER)[1] == []


def test_a_file_over_the_cap_is_refused_clearly_and_nothing_is_stored(post, portal_channel, settings):
    settings.ATTACHMENT_MAX_BYTES = 10
    response = post(
        NEW, portal_form(subject="Log", description="See file", files=files(("big.log", b"x" * 11, "text/plain")))
    )
    assert response.status_code == 200
    assert "big.log is too large (11 bytes); files may be at most 10 bytes." in response.content.decode()
    assert "Up to 10 files, each at most 10 bytes." in response.content.decode()
    assert not InboundMessage.objects.exists()


def test_a_forged_form_key_is_refused(post, portal_channel):
    response = post(NEW, {"key": "../../etc", "subject": "x", "description": "y"})
    assert response.status_code == 200
    assert "please reload the page" in response.content.decode()
    assert not InboundMessage.objects.exists()


def test_without_a_portal_channel_the_employee_is_told_so(post):
    response = post(NEW, portal_form(subject="x", description="y"))
    assert response.status_code == 503
    assert "not connected" in response.content.decode()


def test_a_reply_on_a_ticket_from_another_channel_joins_it_and_the_agent_answers_in_the_portal(
    post, maya_client, portal_channel, locmem_channel, agent, django_capture_on_commit_callbacks, mailoutbox
):
    ticket = ticket_by_email(locmem_channel, "m1", email="maya@example.com", text="Screen flickers")
    post(reply_url(ticket), portal_form(body="It started after the update", files=files(("a.txt", b"a", "text/plain"))))

    reply = Message.objects.get(body="It started after the update")
    assert reply.ticket == ticket
    assert reply.thread.channel == portal_channel
    assert reply.attachments.get().status == Attachment.Status.STORED
    assert Ticket.objects.count() == 1

    thread = latest_thread(ticket)  # the agent answers where Maya wrote last: the portal
    assert thread.channel == portal_channel
    with django_capture_on_commit_callbacks(execute=True):
        answer = reply_to_ticket(ticket=ticket, author=agent, body="Roll back the driver", thread=thread)
    answer.refresh_from_db()
    assert answer.delivery_status == Message.DeliveryStatus.SENT
    [notice] = mailoutbox  # Maya is told there is a reply, with a link to it (not its text)
    assert notice.to == ["maya@example.com"]
    assert reverse("portal:ticket", args=[ticket.pk]) in notice.body
    assert "Roll back" not in notice.body
    with django_capture_on_commit_callbacks(execute=True):
        page = maya_client.get(reverse("portal:ticket", args=[ticket.pk])).content.decode()
    assert "It started after the update" in page
    assert "Roll back the driver" in page
    answer.refresh_from_db()
    assert answer.delivery_status == Message.DeliveryStatus.READ  # she has seen it: the agent sees "read"
    with django_capture_on_commit_callbacks(execute=True):
        maya_client.get(reverse("portal:ticket", args=[ticket.pk]))
    assert InboundMessage.objects.filter(external_id__startswith="read:").count() == 1  # reported once


def test_an_answer_whose_worker_died_mid_send_is_confirmed_not_failed_or_sent_again(
    post, portal_channel, agent, mailoutbox
):
    """The portal shows a stored answer whatever became of its attempt: the sweep confirms a stalled one instead
    of failing it with "it may or may not have arrived", and the employee gets no second notice."""
    post(NEW, portal_form(subject="VPN", description="The VPN drops every hour"))
    ticket = Ticket.objects.get()
    answer = reply_to_ticket(ticket=ticket, author=agent, body="Update the VPN client")  # its task never runs
    started = timezone.now() - delivery.STALE_SENDING - timedelta(minutes=1)
    Message.objects.filter(pk=answer.pk).update(
        delivery_status=Message.DeliveryStatus.SENDING, delivery_started_at=started
    )

    assert sweep.sweep()["unknown"] == 1

    answer.refresh_from_db()
    assert answer.delivery_status == Message.DeliveryStatus.SENT
    assert answer.delivery_error == ""
    assert mailoutbox == []


def test_later_replies_continue_the_same_portal_conversation(post, maya, portal_channel):
    post(NEW, portal_form(subject="Keyboard", description="Keys stick"))
    ticket = Ticket.objects.get()
    post(reply_url(ticket), portal_form(body="Now the space bar too"))
    post(reply_url(ticket), portal_form(body="And the enter key"))
    assert ticket.messages.count() == 3
    assert TicketThread.objects.filter(ticket=ticket).count() == 1


def test_a_reply_reopens_a_resolved_ticket(post, portal_channel):
    post(NEW, portal_form(subject="Mouse", description="Broken"))
    Ticket.objects.update(status=Ticket.Status.RESOLVED)
    post(reply_url(Ticket.objects.get()), portal_form(body="Broken again"))
    assert Ticket.objects.get().status == Ticket.Status.OPEN


def test_an_empty_reply_is_refused_clearly(post, maya_client, portal_channel, locmem_channel):
    ticket = ticket_by_email(locmem_channel, "m1", email="maya@example.com")
    response = post(reply_url(ticket), portal_form(body=""))
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not InboundMessage.objects.exists()


def test_a_reply_never_joins_another_requesters_conversation_merged_into_the_ticket(
    post, maya, portal_channel, locmem_channel, agent, django_capture_on_commit_callbacks
):
    bobs_browser = Client()
    bobs_browser.force_login(User.objects.create_user("bob", email="bob@example.com"))
    with django_capture_on_commit_callbacks(execute=True):
        bobs_browser.post(NEW, portal_form(subject="VPN", description="Bob's VPN is down"))
    mine = ticket_by_email(locmem_channel, "m1", email="maya@example.com", text="VPN down here too")
    merge(agent, mine, Ticket.objects.get(subject="VPN"), keep=mine)

    post(reply_url(mine), portal_form(body="Still down at noon"))
    reply = Message.objects.get(body="Still down at noon")
    bobs = Message.objects.get(body="Bob's VPN is down")
    assert reply.ticket == mine
    assert reply.thread.channel == portal_channel
    assert reply.thread != bobs.thread
    post(reply_url(mine), portal_form(body="And now"))
    assert Message.objects.get(body="And now").thread == reply.thread
