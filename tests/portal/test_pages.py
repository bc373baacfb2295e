"""The portal's pages: each person sees their own tickets only, from every channel, with the public
conversation (never an internal note), and the front door sends each role where its work is."""

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from tests.helpers import merge, portal_form, queries_for, thread_with_key, ticket_by_email
from tickets.models import Attachment, Contact, Message, Ticket
from tickets.replies import add_note, reply_to_ticket

pytestmark = pytest.mark.django_db

TICKETS = reverse("portal:tickets")


def ticket_url(ticket):
    return reverse("portal:ticket", args=[ticket.pk])


@pytest.fixture
def mayas_ticket(locmem_channel):
    return ticket_by_email(locmem_channel, "m1", email="maya@example.com", text="My laptop will not boot")


@pytest.fixture
def bobs_ticket(locmem_channel):
    return ticket_by_email(locmem_channel, "b1", email="bob@example.com", name="Bob", text="Bob's secret problem")


def stored_file(message, name="boot.log", content=b"line 1\n"):
    attachment = Attachment(message=message, name=name, content_type="text/plain", status=Attachment.Status.STORED)
    attachment.file.save("x", ContentFile(content))
    return attachment


def test_my_tickets_lists_only_my_own_from_every_channel(maya_client, mayas_ticket, bobs_ticket, locmem_channel):
    Ticket.objects.create(
        subject="Printer jam", requester=Contact.objects.create(display_name="Maya", email="MAYA@example.com")
    )
    page = maya_client.get(TICKETS).content.decode()
    assert "My laptop will not boot" in page
    assert "Printer jam" in page
    assert "secret problem" not in page
    assert page.index("Printer jam") < page.index("My laptop")  # newest activity first
    assert "via Locmem" in page


def test_another_persons_ticket_and_files_are_not_found(maya_client, bobs_ticket):
    attachment = stored_file(bobs_ticket.messages.get())
    assert maya_client.get(ticket_url(bobs_ticket)).status_code == 404
    assert maya_client.get(reverse("portal:attachment", args=[attachment.pk])).status_code == 404
    response = maya_client.post(reverse("portal:ticket-reply", args=[bobs_ticket.pk]), {"body": "hi"})
    assert response.status_code == 404


def test_the_conversation_shows_replies_but_never_internal_notes(maya_client, mayas_ticket, agent):
    add_note(ticket=mayas_ticket, author=agent, body="Maya's manager says no new laptop")
    reply_to_ticket(ticket=mayas_ticket, author=agent, body="Hold the power button for ten seconds")
    page = maya_client.get(ticket_url(mayas_ticket)).content.decode()
    assert "My laptop will not boot" in page
    assert "Hold the power button for ten seconds" in page
    assert "manager says" not in page
    assert Message.objects.filter(direction=Message.Direction.NOTE).count() == 1


def test_files_of_my_public_messages_download_but_not_those_of_notes(maya_client, mayas_ticket, agent):
    mine = stored_file(mayas_ticket.messages.get(), name="boot.log", content=b"boot failed\n")
    note = add_note(ticket=mayas_ticket, author=agent, body="see file")
    hidden = stored_file(note, name="notes.txt")
    page = maya_client.get(ticket_url(mayas_ticket)).content.decode()
    assert "boot.log" in page
    assert "notes.txt" not in page

    response = maya_client.get(reverse("portal:attachment", args=[mine.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"boot failed\n"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert maya_client.get(reverse("portal:attachment", args=[hidden.pk])).status_code == 404


def test_the_ticket_list_takes_the_same_queries_however_many_tickets(maya_client, locmem_channel):
    for n in range(3):
        ticket_by_email(locmem_channel, f"a{n}", email="maya@example.com")
    few = queries_for(maya_client, TICKETS)
    for n in range(3, 12):
        ticket_by_email(locmem_channel, f"a{n}", email="maya@example.com", minute=n)
    assert queries_for(maya_client, TICKETS) == few


def test_the_ticket_list_pages(maya_client, locmem_channel):
    for n in range(27):
        ticket_by_email(locmem_channel, f"a{n}", email="maya@example.com", text=f"Problem number {n}", minute=n)
    first = maya_client.get(TICKETS).content.decode()
    assert "Problem number 26" in first
    assert "Problem number 1<" not in first
    assert "Page 1 of 2" in first
    second = maya_client.get(TICKETS + "?page=2").content.decode()
    assert "Problem number 0" in second
    assert "Problem number 26" not in second
    assert maya_client.get(TICKETS + "?page=nonsense").status_code == 200


def test_the_conversation_takes_the_same_queries_however_many_messages(maya_client, mayas_ticket, agent):
    url = ticket_url(mayas_ticket)
    reply_to_ticket(ticket=mayas_ticket, author=agent, body="first")
    few = queries_for(maya_client, url)
    for n in range(5):
        stored_file(reply_to_ticket(ticket=mayas_ticket, author=agent, body=f"reply {n}"))
    assert queries_for(maya_client, url) == few


def test_anonymous_visitors_are_sent_to_the_portal_sign_in(client, mayas_ticket):
    response = client.get(ticket_url(mayas_ticket))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:sign-in"))


def test_the_front_door_sends_each_role_where_its_work_is(client, agent, maya):
    assert client.get("/")["Location"] == reverse("login")
    client.force_login(agent)
    assert client.get("/")["Location"] == reverse("console:ticket-list")
    client.force_login(maya)
    assert client.get("/")["Location"] == reverse("portal:tickets")


def test_an_employee_in_the_console_is_pointed_to_the_portal(maya_client):
    response = maya_client.get(reverse("console:ticket-list"))
    assert response.status_code == 403
    assert reverse("portal:tickets") in response.content.decode()


def test_an_account_without_an_email_address_sees_no_tickets_and_is_told_why(client, employee, locmem_channel):
    Ticket.objects.create(subject="Someone's", requester=Contact.objects.create(display_name="X", email=""))
    client.force_login(employee)
    page = client.get(TICKETS).content.decode()
    assert "Someone's" not in page
    assert "has no email address" in page


def test_an_account_without_an_email_address_cannot_open_requests_it_could_not_find_again(client, employee):
    client.force_login(employee)
    response = client.post(reverse("portal:ticket-new"), {"key": "0" * 32, "subject": "x", "description": "y"})
    assert response.status_code == 403
    assert "has no email address" in response.content.decode()
    assert not Ticket.objects.exists()


def test_a_reply_that_failed_to_go_out_is_not_shown(maya_client, mayas_ticket, agent):
    failed = reply_to_ticket(ticket=mayas_ticket, author=agent, body="Never arrived")
    Message.objects.filter(pk=failed.pk).update(delivery_status=Message.DeliveryStatus.FAILED)
    attachment = stored_file(failed)
    assert "Never arrived" not in maya_client.get(ticket_url(mayas_ticket)).content.decode()
    assert maya_client.get(reverse("portal:attachment", args=[attachment.pk])).status_code == 404


def test_the_consoles_channels_page_lists_the_portal(client, admin_user, portal_channel):
    client.force_login(admin_user)
    response = client.get(reverse("console:channels"))
    assert response.status_code == 200
    assert "portal" in response.content.decode()


def test_other_peoples_conversations_merged_into_my_ticket_stay_theirs(
    maya_client, mayas_ticket, bobs_ticket, agent, locmem_channel
):
    merge(agent, mayas_ticket, bobs_ticket, keep=mayas_ticket)
    bobs_file = stored_file(Message.objects.get(body="Bob's secret problem"), name="bob.txt")
    to_bob = reply_to_ticket(ticket=mayas_ticket, author=agent, body="Bob, your answer", thread=thread_with_key("b1"))
    reply_to_ticket(ticket=mayas_ticket, author=agent, body="Maya, your answer", thread=thread_with_key("m1"))
    page = maya_client.get(ticket_url(mayas_ticket)).content.decode()
    assert "My laptop will not boot" in page
    assert "Maya, your answer" in page
    assert "secret problem" not in page
    assert to_bob.body not in page
    assert maya_client.get(reverse("portal:attachment", args=[bobs_file.pk])).status_code == 404


def test_my_ticket_merged_into_someone_elses_stays_mine_with_only_my_conversation(
    maya_client, mayas_ticket, bobs_ticket, agent, client, employee
):
    """Bob asked first about the same outage, so an agent kept his ticket. Maya still finds hers, under its own
    number and words, with her conversation only; Bob's ticket's number brings her there; others get nothing."""
    mine = stored_file(mayas_ticket.messages.get(), name="boot.log", content=b"boot failed\n")
    merge(agent, mayas_ticket, bobs_ticket, keep=bobs_ticket)
    reply_to_ticket(ticket=bobs_ticket, author=agent, body="Maya, your answer", thread=thread_with_key("m1"))
    reply_to_ticket(ticket=bobs_ticket, author=agent, body="Bob, your answer", thread=thread_with_key("b1"))

    listing = maya_client.get(TICKETS).content.decode()
    assert f"#{mayas_ticket.pk}" in listing
    assert "secret problem" not in listing
    page = maya_client.get(ticket_url(mayas_ticket)).content.decode()
    assert "My laptop will not boot" in page
    assert "Maya, your answer" in page
    assert '<span class="status status-open">In progress</span>' in page  # the kept ticket's, not hers: "Closed"
    assert "secret problem" not in page
    assert "Bob, your answer" not in page
    response = maya_client.get(reverse("portal:attachment", args=[mine.pk]))
    assert b"".join(response.streaming_content) == b"boot failed\n"
    assert maya_client.get(ticket_url(bobs_ticket)).url == ticket_url(mayas_ticket)  # e.g. from a reply notice
    employee.email = "sam@example.com"
    employee.save(update_fields=["email"])
    client.force_login(employee)
    assert client.get(ticket_url(mayas_ticket)).status_code == 404
    assert client.get(ticket_url(bobs_ticket)).status_code == 404


def test_a_reply_on_my_merged_ticket_joins_the_ticket_it_lives_in(
    maya_client, mayas_ticket, bobs_ticket, agent, portal_channel, django_capture_on_commit_callbacks
):
    merge(agent, mayas_ticket, bobs_ticket, keep=bobs_ticket)
    with django_capture_on_commit_callbacks(execute=True):
        response = maya_client.post(
            reverse("portal:ticket-reply", args=[mayas_ticket.pk]), portal_form(body="Still down after lunch")
        )
    assert response.url == ticket_url(mayas_ticket)
    reply = Message.objects.get(body="Still down after lunch")
    assert reply.ticket == bobs_ticket
    assert reply.thread.channel == portal_channel
    assert "Still down after lunch" in maya_client.get(ticket_url(mayas_ticket)).content.decode()
