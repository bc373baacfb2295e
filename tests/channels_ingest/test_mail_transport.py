"""Email replies through an ESP instead of SMTP: django-anymail's Postmark backend, unchanged, pointed at a local
HTTP server that answers as Postmark's API does. What the ESP answers decides the reply's fate."""

import json

import pytest

from channel_adapters.base import ConfigError
from channels_ingest.channel_config import clean_channel_config
from channels_ingest.delivery import deliver_message
from channels_ingest.models import Channel
from tests.channel_adapters.email_mail import DESK, email_config, mail, make_email_channel
from tests.helpers import JsonApi, poll_as_worker
from tickets.models import Message, Ticket
from tickets.replies import reply_to_ticket

pytestmark = pytest.mark.django_db

POSTMARK = "anymail.backends.postmark.EmailBackend"


class FakePostmark(JsonApi):
    """Postmark's ``POST /email``: keeps each request and answers with the status and body set next (``answers``),
    else as Postmark accepts a message."""

    def __init__(self):
        self.answers: list[tuple[int, dict]] = []
        super().__init__(self._answer)

    @property
    def sent(self) -> list[tuple[str, object, dict]]:
        return [(path, headers, json.loads(body)) for path, headers, body in self.requests]

    def _answer(self, path, body):
        if self.answers:
            return self.answers.pop(0)
        return 200, {"To": json.loads(body)["To"], "MessageID": "pm-1", "ErrorCode": 0, "Message": "OK"}


@pytest.fixture
def postmark(settings):
    esp = FakePostmark()
    settings.EMAIL_CHANNEL_BACKENDS = [*settings.EMAIL_CHANNEL_BACKENDS, POSTMARK]
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "pm-server-token", "POSTMARK_API_URL": esp.url}
    yield esp
    esp.stop()


@pytest.fixture
def ticket(dovecot, smtp_catcher, postmark):
    channel = make_email_channel(dovecot, smtp_catcher, email_backend=POSTMARK)
    dovecot.deliver(DESK, mail(message_id="<esp@corp.example>"))
    poll_as_worker(channel)
    return Ticket.objects.get()


def reply(ticket, agent):
    """The agent's reply after its first delivery attempt."""
    message = reply_to_ticket(ticket=ticket, author=agent, body="Restart it, please.")
    deliver_message(message.pk)
    message.refresh_from_db()
    return message


def test_a_reply_goes_out_through_the_esp_with_its_threading_headers(
    ticket, agent, postmark, smtp_catcher, django_capture_on_commit_callbacks
):
    message = reply(ticket, agent)
    assert message.delivery_status == Message.DeliveryStatus.SENT, message.delivery_error
    [(path, headers, sent)] = postmark.sent
    assert path == "/email"
    assert headers["X-Postmark-Server-Token"] == "pm-server-token"
    assert sent["Subject"] == f"Re: Laptop broken [#{ticket.pk}]"
    assert sent["To"] == "ann@corp.example"
    assert sent["TextBody"].strip() == "Restart it, please."
    extra = {item["Name"]: item["Value"] for item in sent["Headers"]}
    assert extra["In-Reply-To"] == "<esp@corp.example>"
    assert extra["Message-ID"] == f"<{message.external_id}>"
    assert smtp_catcher.messages == []


@pytest.mark.parametrize(
    ("status", "body", "outcome", "words"),
    [
        (500, {"ErrorCode": 500, "Message": "Internal error"}, Message.DeliveryStatus.QUEUED, "500"),
        (
            422,
            {"ErrorCode": 300, "Message": "Invalid 'To' address: 'ann@corp.example'."},
            Message.DeliveryStatus.FAILED,
            "refused the recipients",
        ),
        (422, {"ErrorCode": 300, "Message": "Invalid 'From' address: 'x'."}, Message.DeliveryStatus.FAILED, "422"),
        (401, {"ErrorCode": 10, "Message": "Bad or missing API token"}, Message.DeliveryStatus.FAILED, "API key"),
    ],
)
def test_what_the_esp_answers_decides_the_reply(
    ticket, agent, postmark, django_capture_on_commit_callbacks, status, body, outcome, words
):
    postmark.answers.append((status, body))
    message = reply(ticket, agent)
    assert message.delivery_status == outcome
    assert words in message.delivery_error


def test_only_allowed_backends_may_be_named(dovecot, smtp_catcher, settings):
    with pytest.raises(ConfigError, match="email_backend must be one of"):
        clean_channel_config("email", email_config(dovecot, smtp_catcher, email_backend="os.system"))
    assert not Channel.objects.exists()
