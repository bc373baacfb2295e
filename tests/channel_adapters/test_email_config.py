"""An email channel's configuration: what an admin must give, what is defaulted, and every refusal in words."""

import pytest

from channel_adapters.base import ConfigError, OutcomeUnknown, ReplyTarget, TransientError
from channel_adapters.email.adapter import EmailAdapter
from tests.helpers import emulated_mail_adapter

BASE = {"address": "Help@Example.com", "imap_host": "imap.example.com", "username": "help", "password": "pw"}


def test_defaults_and_secrets():
    config, secrets = EmailAdapter.split_config({**BASE, "smtp_password": "spw"})
    assert secrets == {"password": "pw", "smtp_password": "spw"}
    assert config["address"] == "help@example.com"
    assert (config["imap_port"], config["imap_security"]) == (993, "ssl")
    assert (config["smtp_host"], config["smtp_port"], config["smtp_security"]) == ("imap.example.com", 587, "starttls")
    assert (config["mailbox"], config["after_store"], config["batch_size"]) == ("INBOX", "seen", 100)
    assert config["reply_languages"] == ["en", "de", "fr", "es"]
    assert config["tag_template"] == "[#{number}]"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"address": "not an address"}, "address must be"),
        ({"imap_host": ""}, "imap_host is required"),
        ({"imap_security": "tls"}, "imap_security must be one of"),
        ({"smtp_port": 70000}, "smtp_port must be a port"),
        ({"after_store": "delete"}, "after_store must be one of"),
        ({"after_store": "move"}, "needs move_to"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"tag_template": "[#]"}, "tag_template must contain {number}"),
        ({"password": ""}, "password is required"),
        ({"auth": "oauth2", "password": ""}, "auth 'oauth2' needs access_token"),
        ({"auth": "kerberos"}, "auth must be"),
        ({"idle": "yes"}, "idle must be true or false"),
        ({"max_attachment_mb": 0}, "max_attachment_mb must be"),
        ({"reply_languages": ["en", "xx"]}, "reply_languages must be a list"),
        ({"aliases": "other@example.com"}, "aliases must be a list"),
    ],
)
def test_refusals_say_what_is_wrong(change, words):
    with pytest.raises(ConfigError, match=words):
        EmailAdapter.split_config({**BASE, **change})


def test_oauth_with_a_refresh_token():
    config, secrets = EmailAdapter.split_config(
        {
            **BASE,
            "password": "",
            "auth": "oauth2",
            "refresh_token": "rt",
            "client_secret": "cs",
            "oauth_token_url": "https://login.example.com/token",
            "oauth_client_id": "app",
        }
    )
    assert set(secrets) == {"password", "refresh_token", "client_secret"}
    assert "refresh_token" not in config


def test_timeout_is_a_positive_number_of_seconds():
    assert EmailAdapter.split_config({**BASE, "timeout": 5})[0]["timeout"] == 5
    for wrong in (0, -1, "30", True):
        with pytest.raises(ConfigError, match="timeout must be a positive number"):
            EmailAdapter.split_config({**BASE, "timeout": wrong})


def test_imap_and_smtp_wait_as_long_as_the_timeout_says(mail_emulator):
    """A server that answers after the channel's ``timeout`` is given up on (IMAP: retried later; SMTP after the
    message was handed over: perhaps sent), not waited for as long as the default 30 s."""
    adapter = emulated_mail_adapter(mail_emulator, timeout=0.5)
    mail_emulator.start_storm(rate=1.0, kinds=["slow"], keys=["imap:SELECT", "smtp:DATA"], slow_seconds=3)
    with pytest.raises(TransientError, match="IMAP"):
        list(adapter.poll({}))
    target = ReplyTarget(thread_key="a@example.com", recipient="ann@example.com", subject="VPN")
    with pytest.raises(OutcomeUnknown):
        adapter.send(target=target, text="Fixed.", key="1-1")
