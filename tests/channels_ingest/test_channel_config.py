"""A channel's configuration: the adapter's own checks, then the pipeline's options, which any channel may carry."""

import pytest

from channel_adapters.base import ConfigError
from channels_ingest.channel_config import clean_channel_config

X = {"bearer_token": "x-token", "base_url": "http://127.0.0.1:9"}
SLACK = {"bot_token": "xoxb-token", "signing_secret": "s", "conversations": ["C1"]}


def test_secrets_are_split_from_the_settings():
    config, secrets = clean_channel_config(
        "x", {**X, "triage": {"auto_ticket": "keywords", "keywords": ["vpn"]}, "monthly_budget_usd": 5}
    )
    assert secrets == {"bearer_token": "x-token"}
    assert config["triage"] == {"auto_ticket": "keywords", "keywords": ["vpn"]}
    assert config["monthly_budget_usd"] == 5


@pytest.mark.parametrize(
    ("options", "refusal"),
    [
        ({"triage": "direct"}, "triage must be an object"),
        ({"triage": {"auto_ticket": "sometimes"}}, "triage.auto_ticket must be one of all, direct, keywords, none"),
        ({"triage": {"auto_ticket": "keywords"}}, "needs triage.keywords"),
        ({"triage": {"keywords": ["", "vpn"]}}, "triage.keywords must be a list of words"),
        ({"public_ack": "Thanks, we are on it!"}, r"public_ack must contain \{ticket\}"),
        ({"auto_ack": "Thanks, ticket {ticket}"}, 'auto_ack must be an object with a "body"'),
        ({"auto_ack": {"body": "{ticket}", "from": "desk@example.com"}}, "auto_ack must be an object"),
        ({"auto_ack": {"subject": "Ticket"}}, r"auto_ack.body must contain \{ticket\}"),
        ({"auto_ack": {"body": 7}}, "auto_ack.body must be text"),
        ({"auto_ack": {"subject": ["Re"], "body": "{ticket}"}}, "auto_ack.subject must be text"),
        ({"auto_ack": {"body": "{ticket} {ticket.__class__}"}}, r"unknown placeholder \{ticket.__class__\}"),
        ({"auto_ack": {"subject": "{agent}", "body": "{ticket}"}}, r"auto_ack.subject has an unknown placeholder"),
        ({"auto_ack": {"body": "{ticket} {"}}, "auto_ack.body is not a valid template"),
        ({"auto_ack": {"body": "{ticket:>{width}}"}}, "auto_ack.body is not a valid template"),
        ({"monthly_budget_usd": -1}, "monthly_budget_usd must be a non-negative number"),
        ({"monthly_budget_usd": "50"}, "monthly_budget_usd must be a non-negative number"),
        ({"import_days": -1}, "import_days must be a whole number of days from 0 to 90"),
        ({"import_days": 91}, "import_days must be a whole number of days from 0 to 90"),
        ({"import_days": "7"}, "import_days must be a whole number of days from 0 to 90"),
        ({"monthly_budget_usd": True}, "monthly_budget_usd must be a non-negative number"),
    ],
)
@pytest.mark.parametrize(("kind", "raw"), [("x", X), ("slack", SLACK)])
def test_pipeline_options_are_checked_for_every_kind(kind, raw, options, refusal):
    with pytest.raises(ConfigError, match=refusal):
        clean_channel_config(kind, {**raw, **options})


def test_the_adapter_checks_come_first():
    with pytest.raises(ConfigError, match="bot_token"):
        clean_channel_config("slack", {"conversations": [], "monthly_budget_usd": -1})


def test_an_unknown_kind_is_a_lookup_error():
    with pytest.raises(LookupError, match="No adapter is configured for channel kind 'fax'"):
        clean_channel_config("fax", {})


@pytest.mark.parametrize("kind", ["x", "slack"])
def test_how_far_back_the_first_poll_imports_is_kept_for_every_kind(kind):
    config, _ = clean_channel_config(kind, {**(X if kind == "x" else SLACK), "import_days": 30})
    assert config["import_days"] == 30


@pytest.mark.parametrize("kind", ["x", "slack"])
def test_an_automatic_acknowledgement_is_kept_for_every_kind(kind):
    ack = {"subject": "Re: {subject} [#{ticket}]", "body": "Hi {name}, we have your message as #{ticket}. {{ok}}"}
    config, _ = clean_channel_config(kind, {**(X if kind == "x" else SLACK), "auto_ack": ack})
    assert config["auto_ack"] == ack


@pytest.mark.parametrize(("kind", "raw"), [("x", X), ("slack", SLACK)])
@pytest.mark.parametrize("base_url", ["nonsense", "ftp://files.example/", 7])
def test_a_base_url_must_be_a_web_address(kind, raw, base_url):
    """Refused when the channel is configured, not later as an error the client library raises on every poll."""
    with pytest.raises(ConfigError, match=r"base_url must be an http\(s\) address"):
        clean_channel_config(kind, {**raw, "base_url": base_url})
