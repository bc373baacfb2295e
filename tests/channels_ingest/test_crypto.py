"""Channel credentials: encrypted at rest, never logged, keys rotate."""

import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError
from django.db import connection

from channels_ingest.models import Channel
from tests.helpers import (
    channels_command,
    slack_config_json,
)

pytestmark = pytest.mark.django_db


def test_credentials_are_encrypted_at_rest_and_never_logged(slack_emulator, caplog):
    """The database holds a Fernet token, not the credential; logs of a failing poll never contain it."""
    caplog.set_level(logging.DEBUG)
    channels_command("add", "slack", "it-help", "--config", slack_config_json(slack_emulator))
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets, CAST(config AS TEXT) FROM channels_ingest_channel")
        stored_secrets, stored_config = cursor.fetchone()
    assert "xoxb-emulator" not in stored_secrets
    assert "emulator-secret" not in stored_secrets
    assert "xoxb-emulator" not in stored_config
    assert Channel.objects.get().secrets["bot_token"] == "xoxb-emulator"

    slack_emulator.set_token("xoxb-emulator", revoked=True)
    with pytest.raises(CommandError):
        channels_command("poll", "it-help")
    assert "xoxb-emulator" not in caplog.text
    assert "emulator-secret" not in caplog.text
    assert "xoxb-emulator" not in repr(Channel.objects.get())


def test_secrets_survive_key_rotation(settings, slack_emulator):
    """With a new key first in FIELD_ENCRYPTION_KEYS, secrets written with the old key still decrypt."""
    channels_command("add", "slack", "it-help", "--no-verify", "--config", slack_config_json(slack_emulator))
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]
    assert Channel.objects.get().secrets["bot_token"] == "xoxb-emulator"
