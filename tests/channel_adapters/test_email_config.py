"""An email channel's configuration: what an admin must give, what is defaulted, and every refusal in words."""

import pytest

from channel_adapters.base import ConfigError
from channel_adapters.email.adapter import EmailAdapter

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
