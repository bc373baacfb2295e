"""Test base for Slack Events API fixtures: a recorded payload in, the expected ticket out."""

import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
from django.urls import reverse

FIXTURES = Path(__file__).parent / "fixtures" / "slack"


def fixture(name):
    """A recorded payload, named ``<event>__<variant>``."""
    return (FIXTURES / f"{name}.json").read_bytes()


def sign(body, secret="emulator-secret", timestamp=None):
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"HTTP_X_SLACK_REQUEST_TIMESTAMP": timestamp, "HTTP_X_SLACK_SIGNATURE": f"v0={digest}"}


class SlackWebhookCase:
    """Posts fixtures to the channel's webhook, signed, and runs the on-commit ingestion."""

    @pytest.fixture(autouse=True)
    def _wire(self, client, slack_channel, django_capture_on_commit_callbacks):
        self.client = client
        self.channel = slack_channel
        self.capture = django_capture_on_commit_callbacks

    def url(self, channel=None):
        return reverse("channels_ingest:webhook", args=[(channel or self.channel).public_id])

    def post(self, body, headers=None):
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        headers = sign(body) if headers is None else headers
        with self.capture(execute=True):
            return self.client.post(self.url(), data=body, content_type="application/json", **headers)

    def send(self, name, expected_status=200):
        response = self.post(fixture(name))
        assert response.status_code == expected_status, response.content
        return response
