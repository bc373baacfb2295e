"""Slack polling and replies through the real slack_sdk client, against the emulator."""

import pytest

from channels_ingest import delivery, polling
from channels_ingest.models import Channel, InboundMessage
from tests.conftest import poll_as_worker as poll
from tickets.models import Message, Ticket
from tickets.replies import reply_to_ticket

pytestmark = pytest.mark.django_db


def test_history_is_paged_and_each_message_stored_once(slack_channel, slack_emulator):
    """conversations.history is followed across next_cursor pages; a re-poll stores nothing new."""
    slack_channel.config["page_size"] = 3
    slack_channel.save()
    slack_emulator.post_many("C0GENERAL", [{"user": "U0ANN", "text": f"issue {i}"} for i in range(10)])

    assert poll(slack_channel).stored == 10
    assert slack_emulator.stats()["calls"]["conversations.history"] == 4
    assert poll(slack_channel).stored == 0
    assert Ticket.objects.count() == 10
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == sorted(f"issue {i}" for i in range(10))


def test_new_thread_replies_are_fetched_with_conversations_replies(slack_channel, slack_emulator):
    """A thread reply is not in history; the parent's latest_reply leads the poll to conversations.replies."""
    parent = slack_emulator.post("C0GENERAL", "U0ANN", "printer jammed")["ts"]
    poll(slack_channel)
    slack_emulator.post("C0GENERAL", "U0ANN", "still jammed", thread_ts=parent)
    slack_emulator.post("C0GENERAL", "U0BO", "mine too", thread_ts=parent)

    assert poll(slack_channel).stored == 2
    ticket = Ticket.objects.get()
    assert [m.body for m in ticket.messages.timeline()] == ["printer jammed", "still jammed", "mine too"]
    assert poll(slack_channel).stored == 0


def test_edits_seen_in_history_update_the_message(slack_channel, slack_emulator):
    """An edited message in the lookback window updates the stored text, once."""
    ts = slack_emulator.post("C0GENERAL", "U0ANN", "wifi slow")["ts"]
    poll(slack_channel)
    slack_emulator.edit("C0GENERAL", ts, "wifi down on floor 2")
    poll(slack_channel)
    poll(slack_channel)
    message = Message.objects.get()
    assert message.body == "wifi down on floor 2"
    assert message.edited_at
    assert InboundMessage.objects.count() == 2


def test_user_names_are_cached(slack_channel, slack_emulator):
    """users.info is called once per person, not once per message."""
    slack_emulator.post_many("C0GENERAL", [{"user": "U0ANN", "text": f"m{i}"} for i in range(5)])
    poll(slack_channel)
    slack_emulator.post("C0GENERAL", "U0ANN", "another")
    poll(slack_channel)
    assert slack_emulator.stats()["calls"]["users.info"] == 1
    assert set(Ticket.objects.values_list("requester__display_name", flat=True)) == {"Ann Employee"}


def test_reply_lands_in_the_thread_of_the_parent(
    slack_channel, slack_emulator, agent, django_capture_on_commit_callbacks
):
    """The agent's reply is posted with thread_ts = the thread's parent ts, even after a thread reply."""
    parent = slack_emulator.post("C0GENERAL", "U0ANN", "need a new badge")["ts"]
    poll(slack_channel)
    slack_emulator.post("C0GENERAL", "U0ANN", "it's urgent <b>really</b>", thread_ts=parent)
    poll(slack_channel)

    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_to_ticket(
            ticket=Ticket.objects.get(), author=agent, body="Printed: pick it up at <desk 4> & sign"
        )
    reply.refresh_from_db()
    [posted] = slack_emulator.bot_messages("C0GENERAL")
    assert posted["thread_ts"] == parent
    assert posted["text"] == "Printed: pick it up at &lt;desk 4&gt; &amp; sign"
    assert reply.delivery_status == Message.DeliveryStatus.SENT
    assert reply.external_id == f"C0GENERAL:{posted['ts']}"


def test_our_own_replies_are_not_ingested_back(
    slack_channel, slack_emulator, agent, django_capture_on_commit_callbacks
):
    """The bot's message in the thread (the echo of our reply) never becomes an inbound message."""
    slack_emulator.post("C0GENERAL", "U0ANN", "help")
    poll(slack_channel)
    with django_capture_on_commit_callbacks(execute=True):
        reply_to_ticket(ticket=Ticket.objects.get(), author=agent, body="hi")
    poll(slack_channel)
    assert Message.objects.filter(direction=Message.Direction.INBOUND).count() == 1


def test_revoked_token_marks_channel_unhealthy_and_others_keep_working(slack_channel, slack_emulator):
    """invalid_auth marks only that channel unhealthy with Slack's error."""
    from channel_adapters.slack import SlackAdapter

    config, secrets = SlackAdapter.split_config(
        {"bot_token": "xoxb-wrong", "conversations": ["C0GENERAL"], "base_url": slack_emulator.base_url}
    )
    broken = Channel.objects.create(kind="slack", name="broken", config=config, secrets=secrets)
    slack_emulator.post("C0GENERAL", "U0ANN", "hello")

    poll(broken)
    poll(slack_channel)
    assert not broken.healthy
    assert "invalid_auth" in broken.last_error
    assert slack_channel.healthy
    assert slack_channel.last_poll_stored == 1


def test_rate_limit_reschedules_the_poll_and_keeps_stored_pages(slack_channel, slack_emulator):
    """A 429 mid-poll keeps what was stored and waits Retry-After before the next poll."""
    slack_channel.config["page_size"] = 2
    slack_channel.save()
    polling.poll_channel(slack_channel.pk)  # learn the bot's identity first
    slack_emulator.post_many("C0GENERAL", [{"user": "U0ANN", "text": f"m{i}"} for i in range(4)])
    slack_emulator.fault("conversations.history", count=1, status=429, retry_after=42)

    outcome = poll(slack_channel)
    assert "rate limit" in outcome.error.lower()
    assert slack_channel.healthy
    assert (slack_channel.next_poll_at - slack_channel.last_poll_at).total_seconds() == pytest.approx(42)
    assert poll(slack_channel).stored == 4


def test_delivery_honours_retry_after_then_sends(
    slack_channel, slack_emulator, agent, django_capture_on_commit_callbacks
):
    """chat.postMessage 429 → the reply stays queued with the error and a retry no sooner than Retry-After."""
    slack_emulator.post("C0GENERAL", "U0ANN", "help")
    poll(slack_channel)
    slack_emulator.fault("chat.postMessage", count=1, status=429, retry_after=7)
    from helpdesk.celery import app

    app.conf.task_always_eager = False
    reply = reply_to_ticket(ticket=Ticket.objects.get(), author=agent, body="hi")
    outcome = delivery.deliver_message(reply.pk)
    assert outcome.status == "retry"
    assert outcome.retry_in >= 7
    reply.refresh_from_db()
    assert reply.delivery_status == Message.DeliveryStatus.QUEUED
    assert "rate limit" in reply.delivery_error
    assert delivery.deliver_message(reply.pk).status == "sent"
    assert len(slack_emulator.bot_messages("C0GENERAL")) == 1


def test_permanent_slack_error_fails_the_reply_visibly(slack_channel, slack_emulator, agent):
    """channel_not_found is not retried: the reply is failed with Slack's error."""
    slack_emulator.post("C0GENERAL", "U0ANN", "help")
    poll(slack_channel)
    slack_emulator.fault("chat.postMessage", count=1, error="channel_not_found")
    from helpdesk.celery import app

    app.conf.task_always_eager = False
    reply = reply_to_ticket(ticket=Ticket.objects.get(), author=agent, body="hi")
    assert delivery.deliver_message(reply.pk).status == "failed"
    reply.refresh_from_db()
    assert reply.delivery_error == "Slack error: channel_not_found"


def test_slack_server_errors_are_transient(slack_channel, slack_emulator, agent):
    """HTTP 503 from Slack is retried, not failed."""
    slack_emulator.post("C0GENERAL", "U0ANN", "help")
    poll(slack_channel)
    slack_emulator.fault("chat.postMessage", count=1, status=503)
    from helpdesk.celery import app

    app.conf.task_always_eager = False
    reply = reply_to_ticket(ticket=Ticket.objects.get(), author=agent, body="hi")
    assert delivery.deliver_message(reply.pk).status == "retry"
