"""Connecting and operating channels from the command line; credentials stay secret."""

import json
import logging
import os
import subprocess
import sys
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from channels_ingest.models import Channel
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def channels(*args):
    out = StringIO()
    call_command("channels", *args, stdout=out)
    return out.getvalue()


def slack_config(emulator, **extra):
    return json.dumps(
        {
            "bot_token": "xoxb-emulator",
            "signing_secret": "emulator-secret",
            "conversations": ["C0GENERAL"],
            "base_url": emulator.base_url,
            **extra,
        }
    )


def test_add_list_poll_connects_a_workspace(slack_emulator):
    """The three commands are enough: add verifies the token, list shows health, poll stores and ingests."""
    output = channels("add", "slack", "it-help", "--config", slack_config(slack_emulator))
    assert "Added slack channel 'it-help'" in output
    assert "/webhooks/" in output
    assert "xoxb-emulator" not in output  # shown masked only
    channel = Channel.objects.get(name="it-help")
    assert channel.state == {"team_id": "T0EMU", "bot_user_id": "U0BOT", "bot_id": "B0BOT"}

    slack_emulator.post_many("C0GENERAL", [{"user": "U0ANN", "text": f"issue {i}"} for i in range(3)])
    assert "Stored 3 new messages from it-help" in channels("poll", "it-help")
    assert Ticket.objects.count() == 3
    listing = channels("list")
    assert "it-help\tslack\tenabled\thealthy" in listing
    assert "(stored 3)" in listing


def test_add_refuses_bad_credentials_unless_told_not_to_verify(slack_emulator):
    """A token Slack refuses is reported with Slack's error and nothing is saved."""
    with pytest.raises(CommandError, match="invalid_auth"):
        channels("add", "slack", "bad", "--config", slack_config(slack_emulator, bot_token="xoxb-nope"))
    assert not Channel.objects.exists()
    channels("add", "slack", "bad", "--no-verify", "--config", slack_config(slack_emulator, bot_token="xoxb-nope"))
    assert Channel.objects.filter(name="bad").exists()


@pytest.mark.parametrize(
    ("config", "error"),
    [("{oops", "not valid JSON"), ("[1]", "JSON object"), ('{"conversations": []}', "bot_token")],
)
def test_add_rejects_invalid_config_clearly(config, error):
    with pytest.raises(CommandError, match=error):
        channels("add", "slack", "x", "--config", config)


def test_poll_reports_an_unhealthy_channel(slack_emulator):
    """A poll with a revoked token exits with the platform's error and list shows the channel unhealthy."""
    channels("add", "slack", "it-help", "--config", slack_config(slack_emulator))
    slack_emulator.set_token("xoxb-emulator", revoked=True)
    with pytest.raises(CommandError, match="token_revoked"):
        channels("poll", "it-help")
    listing = channels("list")
    assert "UNHEALTHY" in listing
    assert "token_revoked" in listing


def test_poll_of_unknown_channel_is_a_clear_error():
    with pytest.raises(CommandError, match="No channel named 'ghost'"):
        channels("poll", "ghost")


def test_credentials_are_encrypted_at_rest_and_never_logged(slack_emulator, caplog):
    """The database holds a Fernet token, not the credential; logs of a failing poll never contain it."""
    caplog.set_level(logging.DEBUG)
    channels("add", "slack", "it-help", "--config", slack_config(slack_emulator))
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets, CAST(config AS TEXT) FROM channels_ingest_channel")
        stored_secrets, stored_config = cursor.fetchone()
    assert "xoxb-emulator" not in stored_secrets
    assert "emulator-secret" not in stored_secrets
    assert "xoxb-emulator" not in stored_config
    assert Channel.objects.get().secrets["bot_token"] == "xoxb-emulator"

    slack_emulator.set_token("xoxb-emulator", revoked=True)
    with pytest.raises(CommandError):
        channels("poll", "it-help")
    assert "xoxb-emulator" not in caplog.text
    assert "emulator-secret" not in caplog.text
    assert "xoxb-emulator" not in repr(Channel.objects.get())


def test_secrets_survive_key_rotation(settings, slack_emulator):
    """With a new key first in FIELD_ENCRYPTION_KEYS, secrets written with the old key still decrypt."""
    channels("add", "slack", "it-help", "--no-verify", "--config", slack_config(slack_emulator))
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]
    assert Channel.objects.get().secrets["bot_token"] == "xoxb-emulator"


def test_check_deploy_is_clean_under_production_settings():
    """`manage.py check --deploy` reports nothing with production environment variables."""
    dev_only = {"DJANGO_DEBUG", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {key: value for key, value in os.environ.items() if key not in dev_only}
    env.update(
        SECRET_KEY="x" * 20 + "-production-secret-key-with-enough-entropy-0123456789",
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="helpdesk.example.com",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=os.path.dirname(os.path.dirname(__file__)),
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = {key: value for key, value in os.environ.items() if key not in {"DJANGO_DEBUG", "SECRET_KEY"}}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=os.path.dirname(os.path.dirname(__file__)),
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_add_and_list_an_x_channel_with_its_spend(x_emulator):
    """An X account is connected the same way; list shows this month's estimated spend against the budget."""
    config = json.dumps({"bearer_token": "x-emulator-bearer", "base_url": x_emulator.url, "monthly_budget_usd": 20})
    assert "Added x channel 'x-help'" in channels("add", "x", "x-help", "--config", config)
    assert Channel.objects.get(name="x-help").state == {"account_id": x_emulator.store.account_id, "username": "ithelp"}
    x_emulator.post_many([{"author_id": x_emulator.people["maya"], "text": f"@ithelp {i}"} for i in range(30)])
    assert "Stored 30 new messages" in channels("poll", "x-help")
    assert "estimated spend this month: $0.03 of $20.00 budget" in channels("list")
