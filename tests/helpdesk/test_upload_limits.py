"""A request body over UPLOAD_MAX_BYTES is refused (413) from its Content-Length, before a byte of it is read: an
agent's upload never spools more than the cap to disk."""

import io

import pytest
from django.urls import reverse

from tests.helpers import reply_url, send_reply, upload
from tickets.models import Attachment


class EndlessBody(io.RawIOBase):
    """A request body that never ends, counting what the server reads of it."""

    def __init__(self):
        self.read_bytes = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        buffer[:] = b"x" * len(buffer)
        self.read_bytes += len(buffer)
        return len(buffer)


@pytest.fixture
def spool_dir(settings, tmp_path):
    """Every uploaded file goes to a temporary file here, however small."""
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    (tmp_path / "spool").mkdir()
    return tmp_path / "spool"


def test_a_huge_upload_is_refused_before_its_body_is_read(agent_client, ticket, settings):
    settings.UPLOAD_MAX_BYTES = 251 * 1024 * 1024
    body = EndlessBody()
    response = agent_client.generic(
        "POST",
        reply_url(ticket),
        content_type="multipart/form-data; boundary=b",
        CONTENT_LENGTH=str(50 * 1024**3),
        **{"wsgi.input": body},
    )
    assert response.status_code == 413
    assert "This request is too large: at most 251 MB may be sent at once. Nothing was saved." in response.text
    assert body.read_bytes == 0


def test_a_reply_over_the_cap_spools_nothing_and_one_under_it_is_sent(
    agent_client, slack_ticket, settings, spool_dir, django_capture_on_commit_callbacks
):
    settings.UPLOAD_MAX_BYTES = 4000
    refused = send_reply(
        agent_client, slack_ticket, "see", upload("big.bin", b"x" * 4000), capture=django_capture_on_commit_callbacks
    )
    assert refused.status_code == 413
    assert list(spool_dir.iterdir()) == []
    assert not Attachment.objects.exists()

    sent = send_reply(
        agent_client, slack_ticket, "see", upload("small.bin", b"x" * 3000), capture=django_capture_on_commit_callbacks
    )
    assert sent.status_code == 302
    assert Attachment.objects.get().name == "small.bin"


@pytest.mark.django_db
def test_a_bad_content_length_is_a_400(client):
    response = client.generic("POST", reverse("login"), b"", CONTENT_LENGTH="lots")
    assert response.status_code == 400
