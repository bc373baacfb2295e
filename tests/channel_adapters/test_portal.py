"""The portal's adapter: nothing to poll or push, replies confirmed as they are stored (the portal shows them),
and the employees' files read back from where the portal kept them."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from channel_adapters.base import Capability, OutboundFile, PermanentError, ReplyTarget
from channel_adapters.portal import PortalAdapter
from channels_ingest.models import Channel
from channels_ingest.portal_channel import keep_upload, read_upload
from channels_ingest.registry import adapter_class


def test_is_registered_and_only_replies():
    assert adapter_class("portal") is PortalAdapter
    assert PortalAdapter.capabilities == {Capability.REPLY}


def test_send_confirms_each_reply_under_its_own_stable_id():
    adapter = PortalAdapter(config={}, secrets={})
    target = ReplyTarget(thread_key="7:abc")
    first = adapter.send(target=target, text="on it", key="41-1", files=(OutboundFile("a.txt", "text/plain", b"a"),))
    assert first == adapter.send(target=target, text="on it", key="41-1")
    assert first.external_id != adapter.send(target=target, text="on it", key="42-1").external_id
    [mode] = adapter.reply_modes(target)
    assert mode.allowed
    assert mode.attachments
    assert mode.attachments.max_files >= 1


@pytest.mark.django_db
def test_a_reply_notice_goes_to_the_employee_whatever_the_mail_server_says(maya, mailoutbox, settings):
    adapter = Channel(kind="portal", name="portal").adapter()
    target = ReplyTarget(thread_key="k", recipient=f"{maya.pk}:1", ticket_number=7, author_name="Alex Agent")
    adapter.send(target=target, text="Done", key="1-1")
    assert mailoutbox[0].to == ["maya@example.com"]
    assert mailoutbox[0].subject == "A reply on your ticket #7"
    assert "Alex Agent replied" in mailoutbox[0].body
    settings.EMAIL_BACKEND = "tests.channel_adapters.test_portal.RefusingBackend"
    assert adapter.send(target=target, text="Done", key="2-1").external_id == "portal-reply:2-1"


class RefusingBackend:
    def __init__(self, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("the mail server is down")


@pytest.mark.django_db
def test_files_are_read_back_from_where_the_portal_kept_them():
    kept = keep_upload(SimpleUploadedFile("report.pdf", bytes(range(256)) * 600, content_type="application/pdf"))
    assert (kept.name, kept.content_type, kept.size) == ("report.pdf", "application/pdf", 256 * 600)
    adapter = Channel(kind="portal", name="portal").adapter()
    assert b"".join(adapter.fetch_attachment(kept.ref)) == bytes(range(256)) * 600


def test_an_adapter_built_without_the_pipeline_has_no_files_to_read():
    with pytest.raises(PermanentError):
        PortalAdapter(config={}, secrets={}).fetch_attachment("portal-uploads/abc")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "ref", ["attachments/2026/01/abc", "portal-uploads/../secret", "portal-uploads/", "/etc/passwd"]
)
def test_only_the_portals_own_uploads_are_read(ref):
    with pytest.raises(PermanentError):
        b"".join(read_upload(ref))


@pytest.mark.django_db
def test_a_missing_upload_is_a_permanent_error():
    with pytest.raises(PermanentError):
        b"".join(read_upload("portal-uploads/0123456789abcdef"))
