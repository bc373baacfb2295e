"""What agents get of an email beyond its text: the original (.eml), read from the mailbox when asked, and a mail
that cannot be read, kept and explained on the Channels page."""

import base64

import pytest
from django.urls import reverse

from tests.channel_adapters.email_mail import DESK, mail, make_email_channel
from tests.helpers import poll_as_worker, text_of
from tickets.models import Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(dovecot, smtp_catcher):
    channel = make_email_channel(dovecot, smtp_catcher)
    raw = mail("Printer on floor 3 is jammed.", files=[("photo.png", b"\x89PNG fake", "image/png")])
    uid = dovecot.deliver(DESK, raw)
    poll_as_worker(channel)
    return Message.objects.get(direction=Message.Direction.INBOUND), raw, uid


def test_an_agent_downloads_the_original_byte_for_byte(agent_client, stored):
    message, raw, _uid = stored
    response = agent_client.get(reverse("console:message-original", args=[message.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="original.eml"'
    assert response["Content-Type"] == "message/rfc822"
    assert b"".join(response.streaming_content) == raw


def test_the_original_is_found_again_after_it_was_moved(agent_client, dovecot, smtp_catcher, stored):
    message, raw, uid = stored
    with dovecot.client(DESK) as imap:
        imap.select_folder("INBOX")
        imap.create_folder("Archive")
        imap.move([uid], "Archive")
    channel = message.thread.channel
    channel.config = {**channel.config, "after_store": "move", "move_to": "Archive"}
    channel.save()
    response = agent_client.get(reverse("console:message-original", args=[message.pk]))
    assert b"".join(response.streaming_content) == raw


def test_a_deleted_original_is_a_clear_error(agent_client, dovecot, stored):
    message, _raw, uid = stored
    with dovecot.client(DESK) as imap:
        imap.select_folder("INBOX")
        imap.delete_messages([uid])
        imap.expunge()
    response = agent_client.get(reverse("console:message-original", args=[message.pk]))
    assert response.status_code == 502
    assert "no longer in the mailbox" in response.content.decode()


def test_employees_cannot_read_originals(client, django_user_model, stored):
    message, _raw, _uid = stored
    client.force_login(django_user_model.objects.create_user("employee", password="x-pass-123"))
    response = client.get(reverse("console:message-original", args=[message.pk]))
    assert response.status_code in (302, 403)


def test_a_message_without_an_original_is_404(agent_client, stored):
    message, _raw, _uid = stored
    Message.objects.filter(pk=message.pk).update(meta={})
    assert agent_client.get(reverse("console:message-original", args=[message.pk])).status_code == 404


def test_mail_that_cannot_be_read_is_kept_and_its_reason_shown_on_the_channels_page(
    agent_client, dovecot, smtp_catcher
):
    channel = make_email_channel(dovecot, smtp_catcher, name="broken-mail")
    dovecot.deliver(DESK, b"\r\n\r\nno header block at all\r\n")
    dovecot.deliver(DESK, mail("The next mail still arrives."))
    poll_as_worker(channel)
    [failed] = channel.inbound.filter(status="failed")
    assert base64.b64decode(failed.payload["raw"]["raw_base64"]) == b"\r\n\r\nno header block at all\r\n"
    assert Message.objects.get().body == "The next mail still arrives."
    page = text_of(agent_client.get(reverse("console:channels")).content.decode())
    assert "1 failed inbound message" in page
    assert "Rejected by the email adapter: Not a readable mail message" in page
