"""Email replies through an ESP instead of SMTP: django-anymail's Postmark backend, unchanged, pointed at a local
HTTP server that answers as Postmark's API does. What the ESP answers decides the reply's fate."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from channel_adapters.base import ConfigError
from channels_ingest.channel_config import clean_channel_config
from channels_ingest.delivery import deliver_message
from channels_ingest.models import Channel
from tests.channel_adapters.email_mail import DESK, email_config, mail, make_email_channel
from tests.helpers import poll_as_worker
from tickets.models import Message, Ticket
from tickets.replies import reply_to_ticket

pytestmark = pytest.mark.django_db

POSTMARK = "anymail.backends.postmark.EmailBackend"


class FakePostmark:
    """Postmark's ``POST /email``: keeps each request's JSON and answers with the status and body set next."""

    def __init__(self):
        self.requests, self.answers = [], []
        esp = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                esp.requests.append(
                    (self.path, self.headers, json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                )
                status, body = esp.answers.pop(0) if esp.answers else (200, None)
                sent = esp.requests[-1][2]
                body = body or {
                    "To": sent["To"],
                    "SubmittedAt": "2026-12-04T10:00:00Z",
                    "MessageID": "pm-1",
                    "ErrorCode": 0,
                    "Message": "OK",
                }
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def postmark(settings):
    esp = FakePostmark()
    settings.EMAIL_CHANNEL_BACKENDS = [*settings.EMAIL_CHANNEL_BACKENDS, POSTMARK]
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "pm-server-token", "POSTMARK_API_URL": esp.url}
    yield esp
    esp.server.shutdown()


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
    [(path, headers, sent)] = postmark.requests
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
