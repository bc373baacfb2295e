"""`manage.py channels add|list|poll|requeue-failed`."""

import io
import json

import pytest
from django.core.management import CommandError

from channels_ingest import polling
from channels_ingest.models import Channel, InboundMessage
from tests.factories import message
from tests.helpers import (
    channels_command,
    failed_inbound,
    slack_config_json,
)
from tickets.models import AuditEntry, Message, Ticket

pytestmark = pytest.mark.django_db


def test_add_list_poll_connects_a_workspace(slack_emulator):
    """The three commands are enough: add verifies the token, list shows health, poll stores and ingests."""
    output = channels_command("add", "slack", "it-help", "--config", slack_config_json(slack_emulator))
    assert "Added slack channel 'it-help'" in output
    assert "/webhooks/" in output
    assert "xoxb-emulator" not in output  # shown masked only
    channel = Channel.objects.get(name="it-help")
    assert channel.state == {
        "team_id": "T0EMU",
        "bot_user_id": "U0BOT",
        "bot_id": "B0BOT",
        "team": "Emulator",
        "bot_name": "helpdesk",
    }

    slack_emulator.post_many("C0GENERAL", [{"user": "U0ANN", "text": f"issue {i}"} for i in range(3)])
    assert "Stored 3 new messages from it-help" in channels_command("poll", "it-help")
    assert Ticket.objects.count() == 3
    listing = channels_command("list")
    assert "it-help\tslack\tenabled\thealthy" in listing
    assert "(stored 3)" in listing


def test_add_refuses_bad_credentials_unless_told_not_to_verify(slack_emulator):
    """A token Slack refuses is reported with Slack's error and nothing is saved."""
    with pytest.raises(CommandError, match="invalid_auth"):
        channels_command("add", "slack", "bad", "--config", slack_config_json(slack_emulator, bot_token="xoxb-nope"))
    assert not Channel.objects.exists()
    channels_command(
        "add", "slack", "bad", "--no-verify", "--config", slack_config_json(slack_emulator, bot_token="xoxb-nope")
    )
    assert Channel.objects.filter(name="bad").exists()


def test_add_is_in_the_audit_log_with_credentials_redacted(slack_emulator):
    channels_command("add", "slack", "it-help", "--config", slack_config_json(slack_emulator))
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.actor_label) == ("channel.create", None, "manage.py channels add")
    assert entry.after["config"]["bot_token"] == "set (…ator)"
    assert "emulator-secret" not in json.dumps(entry.after)
    with pytest.raises(CommandError):  # refused: no channel, and nothing logged
        channels_command("add", "slack", "bad", "--config", slack_config_json(slack_emulator, bot_token="xoxb-nope"))
    assert AuditEntry.objects.count() == 1


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ("{oops", "not valid JSON"),
        ("[1]", "JSON object"),
        ('{"conversations": []}', "bot_token"),
        ('{"bot_token": "xoxb-1", "thread_rereads_per_poll": -1}', "thread_rereads_per_poll must be a whole number"),
    ],
)
def test_add_rejects_invalid_config_clearly(config, error):
    with pytest.raises(CommandError, match=error):
        channels_command("add", "slack", "x", "--config", config)


def test_poll_reports_an_unhealthy_channel(slack_emulator):
    """A poll with a revoked token exits with the platform's error; list says the channel is broken and why, in
    the Channels page's words."""
    channels_command("add", "slack", "it-help", "--config", slack_config_json(slack_emulator))
    slack_emulator.set_token("xoxb-emulator", revoked=True)
    with pytest.raises(CommandError, match="token_revoked"):
        channels_command("poll", "it-help")
    listing = channels_command("list")
    assert "it-help\tslack\tenabled\tbroken\t" in listing
    assert "  The platform refused the credentials: re-authorize the channel.\n" in listing
    assert "token_revoked" in listing


def test_requeue_failed_puts_one_channels_failed_rows_back_and_ingests_them(
    locmem_channel, django_capture_on_commit_callbacks
):
    other = Channel.objects.create(kind="locmem", name="other", config={"inbox": "other"})
    failed_inbound(locmem_channel, [message("a"), message("b", minute=1)])
    failed_inbound(other, [message("c")])
    assert "failed inbound: 2" in channels_command("list")

    with django_capture_on_commit_callbacks(execute=True):
        output = channels_command("requeue-failed", "lm")

    assert "Re-queued 2 failed inbound messages of lm" in output
    assert set(Message.objects.values_list("external_id", flat=True)) == {"a", "b"}
    assert InboundMessage.objects.get(external_id="c").status == "failed"
    assert "Re-queued 0 failed inbound messages of lm" in channels_command("requeue-failed", "lm")


def test_requeue_failed_all_covers_every_channel(locmem_channel):
    other = Channel.objects.create(kind="locmem", name="other", config={"inbox": "other"})
    failed_inbound(locmem_channel, [message("a")])
    failed_inbound(other, [message("c")])
    output = channels_command("requeue-failed", "--all")
    assert "Re-queued 1 failed inbound messages of lm" in output
    assert "Re-queued 1 failed inbound messages of other" in output
    assert not InboundMessage.objects.filter(status="failed").exists()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["ghost"], "No channel named 'ghost'"),
        ([], "Name a channel, or use --all"),
        (["lm", "--all"], "Name a channel, or use --all"),
    ],
)
def test_requeue_failed_needs_one_channel_or_all(locmem_channel, args, error):
    with pytest.raises(CommandError, match=error):
        channels_command("requeue-failed", *args)


def test_poll_of_unknown_channel_is_a_clear_error():
    with pytest.raises(CommandError, match="No channel named 'ghost'"):
        channels_command("poll", "ghost")


def test_add_and_list_an_x_channel_with_its_spend(x_emulator):
    """An X account is connected the same way; list shows this month's estimated spend against the budget."""
    config = json.dumps({"bearer_token": "x-emulator-bearer", "base_url": x_emulator.url, "monthly_budget_usd": 20})
    assert "Added x channel 'x-help'" in channels_command("add", "x", "x-help", "--config", config)
    assert Channel.objects.get(name="x-help").state == {"account_id": x_emulator.store.account_id, "username": "ithelp"}
    x_emulator.post_many([{"author_id": x_emulator.people["maya"], "text": f"@ithelp {i}"} for i in range(30)])
    assert "Stored 30 new messages" in channels_command("poll", "x-help")
    assert "estimated spend this month: $0.03 of $20.00 budget" in channels_command("list")


def test_poll_of_a_budget_paused_channel_refuses_unless_forced(x_emulator):
    """A channel paused by its budget is not polled by hand either: the command says why and what was spent,
    and calls X only with --force."""
    config = json.dumps({"bearer_token": "x-emulator-bearer", "base_url": x_emulator.url, "monthly_budget_usd": 0.02})
    channels_command("add", "x", "x-help", "--config", config)
    maya = x_emulator.people["maya"]
    x_emulator.post_many([{"author_id": maya, "text": f"@ithelp {i}"} for i in range(30)])
    channels_command("poll", "x-help")
    assert Channel.objects.get(name="x-help").paused_reason.startswith("Monthly budget of $0.02 reached")
    x_emulator.post_many([{"author_id": maya, "text": f"@ithelp later {i}"} for i in range(5)])
    calls = x_emulator.stats()["calls"]

    with pytest.raises(CommandError) as refused:
        channels_command("poll", "x-help")
    assert "x-help is paused: Monthly budget of $0.02 reached" in str(refused.value)
    assert "Spent so far this month: $0.03" in str(refused.value)
    assert "--force" in str(refused.value)
    assert x_emulator.stats()["calls"] == calls
    assert "estimated spend this month: $0.03 of $0.02 budget" in channels_command("list")

    output = channels_command("poll", "x-help", "--force")
    assert "Stored 5 new messages" in output
    assert "polled although paused" in output
    assert Channel.objects.get(name="x-help").paused_reason.startswith("Monthly budget")


def test_add_reads_the_config_from_a_file_or_standard_input(slack_emulator, tmp_path, monkeypatch):
    """Tokens need not appear on a command line (where `ps` and shell history see them)."""
    config_file = tmp_path / "slack.json"
    config_file.write_text(slack_config_json(slack_emulator))
    channels_command("add", "slack", "from-file", "--config", f"@{config_file}")
    monkeypatch.setattr("sys.stdin", io.StringIO(slack_config_json(slack_emulator)))
    channels_command("add", "slack", "from-stdin", "--config", "-")
    assert {c.name: c.secrets["bot_token"] for c in Channel.objects.all()} == {
        "from-file": "xoxb-emulator",
        "from-stdin": "xoxb-emulator",
    }
    with pytest.raises(CommandError, match="No such file"):
        channels_command("add", "slack", "missing", "--config", f"@{tmp_path / 'missing.json'}")


def test_a_push_only_channel_is_not_polled(meta_emulator):
    """WhatsApp has no read API: added without --poll-interval it is not polled, and a poll is refused."""
    account = meta_emulator.add_whatsapp("106540352242922", waba_id="102290129340398")
    config = {
        "phone_number_id": account["id"],
        "waba_id": "102290129340398",
        "access_token": account["token"],
        "app_secret": account["app_secret"],
        "verify_token": account["verify_token"],
        "base_url": meta_emulator.base_url,
    }
    channels_command("add", "whatsapp", "wa", "--config", json.dumps(config))
    channel = Channel.objects.get(name="wa")
    assert channel.poll_interval_seconds == 0
    with pytest.raises(CommandError, match="whatsapp cannot be polled"):
        channels_command("add", "whatsapp", "wa-2", "--poll-interval", "60", "--config", json.dumps(config))
    Channel.objects.filter(pk=channel.pk).update(poll_interval_seconds=60)  # set by hand, e.g. in /admin/
    assert not polling.poll_channel(channel.pk).polled
