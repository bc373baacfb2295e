"""Reply delivery: sent once, retried with backoff, or visibly failed; files after the text."""

import logging
import re
from datetime import timedelta

import pytest
from django.db import OperationalError as DatabaseOperationalError
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from channel_adapters import locmem
from channel_adapters.base import CredentialsError, OutcomeUnknown, PermanentError, RateLimited, TransientError
from channels_ingest import delivery, ingest, polling, sweep
from channels_ingest.models import ApiUsage
from channels_ingest.tasks import deliver_message
from helpdesk.celery import app
from tests.factories import message
from tests.helpers import (
    PNG,
    SLACK_HELP_CHANNEL,
    database_refuses,
    detail_url,
    poll_as_worker,
    reply_and_deliver,
    send_reply,
    upload,
)
from tickets.models import Message, Ticket
from tickets.replies import reply_to_ticket


def thread_replies(slack_emulator, parent_ts):
    return [
        m
        for m in slack_emulator.messages(SLACK_HELP_CHANNEL)
        if m.get("thread_ts") == parent_ts and m["ts"] != parent_ts
    ]


@pytest.fixture
def ticket(locmem_channel):
    locmem.inbox["lm"] = [message("a", text="my laptop won't boot"), message("a.1", thread="a", minute=1)]
    polling.poll_channel(locmem_channel.pk)
    ingest.ingest_channel(locmem_channel.pk)
    return Ticket.objects.get()


@pytest.mark.django_db
def test_reply_with_files_arrives_in_the_thread_after_its_text(
    agent_client, slack_ticket, slack_emulator, django_capture_on_commit_callbacks
):
    response = send_reply(
        agent_client,
        slack_ticket,
        "Here is the log",
        upload(),
        upload("screen.png", PNG, "image/png"),
        capture=django_capture_on_commit_callbacks,
    )
    assert response.status_code == 302

    reply = Message.objects.get(direction="outbound")
    assert reply.delivery_status == "sent"
    text, first, second = thread_replies(slack_emulator, slack_ticket.parent_ts)
    assert text["text"] == "Here is the log"
    assert "files" not in text
    assert [first["files"][0]["name"], second["files"][0]["name"]] == ["boot.log", "screen.png"]
    attachments = list(reply.attachments.order_by("id"))
    assert [a.external_id for a in attachments] == [first["files"][0]["id"], second["files"][0]["id"]]
    assert all(a.delivered_at and a.status == "stored" for a in attachments)
    assert attachments[1].file.read() == PNG
    html = agent_client.get(detail_url(slack_ticket)).content.decode()
    assert "boot.log" in html
    assert html.count("delivery-sent") >= 3


@pytest.mark.django_db
def test_a_failed_upload_is_retried_without_reposting(
    agent_client, slack_ticket, slack_emulator, django_capture_on_commit_callbacks
):
    """The text went out, the file's upload failed: the retry sends the file alone, once."""
    slack_emulator.fault("files.completeUploadExternal", status=500)
    send_reply(agent_client, slack_ticket, "Here is the log", upload(), capture=django_capture_on_commit_callbacks)

    reply = Message.objects.get(direction="outbound")
    assert reply.delivery_status == "sent"
    assert reply.delivery_attempts == 2
    text, file = thread_replies(slack_emulator, slack_ticket.parent_ts)
    assert text["text"] == "Here is the log"
    assert file["files"][0]["name"] == "boot.log"
    assert slack_emulator.stats()["calls"]["chat.postMessage"] == 1


@pytest.mark.django_db
def test_a_failed_reply_retried_by_the_agent_sends_only_what_is_missing(
    agent_client, slack_ticket, slack_emulator, settings, django_capture_on_commit_callbacks
):
    settings.DELIVERY_MAX_ATTEMPTS = 1
    slack_emulator.fault("files.getUploadURLExternal", status=200, error="internal_error", count=1)
    send_reply(
        agent_client,
        slack_ticket,
        "Two files",
        upload("a.txt"),
        upload("b.txt"),
        capture=django_capture_on_commit_callbacks,
    )
    reply = Message.objects.get(direction="outbound")
    assert reply.delivery_status == "failed"
    assert reply.delivery_error.startswith("The text was sent, but not every file: a.txt:")
    html = agent_client.get(detail_url(slack_ticket)).content.decode()
    assert "The text was sent, but not every file" in html
    assert "Retry" in html

    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(reverse("console:message-retry", args=[reply.pk]))
    reply.refresh_from_db()
    assert reply.delivery_status == "sent"
    replies = thread_replies(slack_emulator, slack_ticket.parent_ts)
    assert [m.get("text") for m in replies] == ["Two files", "", ""]
    assert [m["files"][0]["name"] for m in replies[1:]] == ["a.txt", "b.txt"]

    # And a second Retry of a sent reply sends nothing.
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(reverse("console:message-retry", args=[reply.pk]))
    assert len(thread_replies(slack_emulator, slack_ticket.parent_ts)) == 3


@pytest.mark.django_db
def test_reply_goes_to_the_thread_it_came_from(ticket, agent, django_capture_on_commit_callbacks):
    """An agent reply is delivered to the ticket's conversation and marked sent with the platform id."""
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_to_ticket(ticket=ticket, author=agent, body="On it")
    reply.refresh_from_db()
    assert locmem.outbox == [{"thread_key": "a", "text": "On it"}]
    assert reply.delivery_status == Message.DeliveryStatus.SENT
    assert reply.external_id == "a:out1"
    assert reply.delivered_at is not None
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN
    assert ticket.message_count == 3


@pytest.mark.django_db
def test_transient_failure_is_retried_with_backoff_honouring_retry_after(queued_reply):
    """A 429 keeps the reply queued, records the error, and schedules the retry no sooner than Retry-After."""
    locmem.failures.append(RateLimited("ratelimited", retry_after=30))
    outcome = delivery.deliver_message(queued_reply.pk)
    queued_reply.refresh_from_db()
    assert outcome.status == "retry"
    assert outcome.retry_in >= 30
    assert queued_reply.delivery_status == Message.DeliveryStatus.QUEUED
    assert "ratelimited" in queued_reply.delivery_error
    assert queued_reply.delivery_next_attempt_at > timezone.now() + timedelta(seconds=29)

    assert delivery.deliver_message(queued_reply.pk).status == "sent"
    queued_reply.refresh_from_db()
    assert queued_reply.delivery_status == Message.DeliveryStatus.SENT
    assert queued_reply.delivery_attempts == 2
    assert len(locmem.outbox) == 1


@pytest.mark.django_db
def test_backoff_grows_exponentially(queued_reply):
    """Without Retry-After, each attempt waits about twice as long as the one before."""
    delays = []
    for _ in range(3):
        locmem.failures.append(TransientError("HTTP 503"))
        delays.append(delivery.deliver_message(queued_reply.pk).retry_in)
    assert delays[0] < delays[1] < delays[2]
    assert delays[2] >= 4


@pytest.mark.django_db
def test_reply_fails_visibly_after_the_last_attempt(queued_reply, settings):
    """After DELIVERY_MAX_ATTEMPTS transient failures the reply is failed, with the platform's error."""
    settings.DELIVERY_MAX_ATTEMPTS = 3
    locmem.failures.extend([TransientError("HTTP 503")] * 3)
    outcomes = [delivery.deliver_message(queued_reply.pk).status for _ in range(3)]
    queued_reply.refresh_from_db()
    assert outcomes == ["retry", "retry", "failed"]
    assert queued_reply.delivery_status == Message.DeliveryStatus.FAILED
    assert "HTTP 503" in queued_reply.delivery_error
    assert "3 attempts" in queued_reply.delivery_error


@pytest.mark.django_db
def test_permanent_error_fails_at_once_and_retry_resends(queued_reply, django_capture_on_commit_callbacks):
    """A permanent refusal is not retried; the agent's Retry really resends it."""
    locmem.failures.append(PermanentError("channel_not_found"))
    assert delivery.deliver_message(queued_reply.pk).status == "failed"
    queued_reply.refresh_from_db()
    assert queued_reply.delivery_error == "channel_not_found"

    app.conf.task_always_eager = True
    with django_capture_on_commit_callbacks(execute=True):
        assert delivery.retry_delivery(queued_reply) is True
    queued_reply.refresh_from_db()
    assert queued_reply.delivery_status == Message.DeliveryStatus.SENT
    assert len(locmem.outbox) == 1


@pytest.mark.django_db
def test_credentials_error_fails_the_reply_and_marks_the_channel_unhealthy(queued_reply, locmem_channel):
    """Revoked credentials fail the reply and flag the channel."""
    locmem.failures.append(CredentialsError("token_revoked"))
    delivery.deliver_message(queued_reply.pk)
    locmem_channel.refresh_from_db()
    assert not locmem_channel.healthy
    assert "token_revoked" in locmem_channel.last_error


@pytest.mark.django_db
def test_delivering_twice_sends_once(queued_reply):
    """A redelivered task finds the reply already sent and does nothing."""
    assert delivery.deliver_message(queued_reply.pk).status == "sent"
    assert delivery.deliver_message(queued_reply.pk).status == "noop"
    assert len(locmem.outbox) == 1


@pytest.mark.django_db
def test_reply_is_kept_and_later_sent_when_the_broker_is_down(
    ticket, agent, monkeypatch, django_capture_on_commit_callbacks
):
    """If queuing fails (broker down), the reply stays queued in the database and the sweep sends it later."""

    def broker_down(*args):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with monkeypatch.context() as patched:
        patched.setattr(deliver_message, "delay", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            reply = reply_to_ticket(ticket=ticket, author=agent, body="Looking into it")
    reply.refresh_from_db()
    assert reply.delivery_status == Message.DeliveryStatus.QUEUED
    assert locmem.outbox == []

    assert sweep.sweep(now=timezone.now() + timedelta(minutes=3))["redeliveries"] == 1
    reply.refresh_from_db()
    assert reply.delivery_status == Message.DeliveryStatus.SENT


@pytest.mark.django_db
def test_credentials_refused_at_delivery_do_not_count_as_a_poll(queued_reply, locmem_channel):
    """A delivery is not a poll: the channel turns unhealthy with the reason, its last poll time stays as it was."""
    locmem_channel.refresh_from_db()
    polled_at = locmem_channel.last_poll_at
    locmem.failures.append(CredentialsError("token_revoked"))
    delivery.deliver_message(queued_reply.pk)
    locmem_channel.refresh_from_db()
    assert not locmem_channel.healthy
    assert locmem_channel.last_error == "Credentials rejected: token_revoked"
    assert locmem_channel.last_error_at > polled_at
    assert locmem_channel.last_poll_at == polled_at


# Exactly once, out: an unknown outcome is looked up before anything is sent again ------------------------


def answer_within(channel, seconds=0.5):
    """The channel's client gives up waiting for an answer after ``seconds`` (15 by default)."""
    channel.config["timeout"] = seconds
    channel.save()


@pytest.mark.django_db
def test_a_slack_post_answered_after_the_timeout_is_posted_once(slack_channel, slack_ticket, slack_emulator, agent):
    """chat.postMessage is applied but answers after the client gave up: the retry finds it in the thread."""
    answer_within(slack_channel)
    slack_emulator.fault_after_write("chat.postMessage", delay=1.5)

    reply = reply_and_deliver(slack_ticket, agent, "Rebooting the server now")

    [posted] = thread_replies(slack_emulator, slack_ticket.parent_ts)
    assert posted["text"] == "Rebooting the server now"
    assert reply.delivery_status == Message.DeliveryStatus.SENT
    assert reply.external_id == f"{SLACK_HELP_CHANNEL}:{posted['ts']}"
    assert reply.delivery_attempts == 2
    assert reply.delivery_unconfirmed_since is None
    assert slack_emulator.stats()["calls"]["chat.postMessage"] == 1


@pytest.mark.django_db
def test_a_slack_post_whose_connection_resets_after_it_was_applied_is_posted_once(slack_ticket, slack_emulator, agent):
    slack_emulator.fault_after_write("chat.postMessage", reset=True)

    reply = reply_and_deliver(slack_ticket, agent, "Rebooting the server now")

    assert [m["text"] for m in thread_replies(slack_emulator, slack_ticket.parent_ts)] == ["Rebooting the server now"]
    assert reply.delivery_status == Message.DeliveryStatus.SENT
    assert slack_emulator.stats()["calls"]["chat.postMessage"] == 1


@pytest.mark.django_db
def test_a_slack_post_refused_before_it_was_applied_is_simply_sent_again(slack_ticket, slack_emulator, agent):
    """A 503 means Slack did not post: the retry posts without looking first."""
    slack_emulator.fault("chat.postMessage", status=503)

    reply = reply_and_deliver(slack_ticket, agent, "Rebooting the server now")

    assert [m["text"] for m in thread_replies(slack_emulator, slack_ticket.parent_ts)] == ["Rebooting the server now"]
    assert reply.delivery_status == Message.DeliveryStatus.SENT
    assert "conversations.replies" not in slack_emulator.stats()["calls"]


@pytest.mark.django_db
def test_the_agents_retry_after_an_unconfirmed_post_looks_before_posting(
    slack_channel, slack_ticket, slack_emulator, agent, settings, django_capture_on_commit_callbacks
):
    settings.DELIVERY_MAX_ATTEMPTS = 1
    answer_within(slack_channel)
    slack_emulator.fault_after_write("chat.postMessage", delay=1.5)
    reply = reply_and_deliver(slack_ticket, agent, "Rebooting the server now")
    assert reply.delivery_status == Message.DeliveryStatus.FAILED
    assert reply.delivery_unconfirmed_since is not None
    assert "it may have arrived. Retry looks for it before sending it again" in reply.delivery_error

    with django_capture_on_commit_callbacks(execute=True):
        assert delivery.retry_delivery(reply)

    reply.refresh_from_db()
    assert reply.delivery_status == Message.DeliveryStatus.SENT
    assert len(thread_replies(slack_emulator, slack_ticket.parent_ts)) == 1
    assert slack_emulator.stats()["calls"]["chat.postMessage"] == 1


def x_mention_ticket(x_emulator, channel):
    x_emulator.post(x_emulator.people["maya"], "@ithelp the VPN drops every hour")
    poll_as_worker(channel)
    return Ticket.objects.get()


def x_dm_ticket(x_emulator, channel):
    x_emulator.dm_from(x_emulator.people["maya"], "locked out of my account")
    poll_as_worker(channel)
    return Ticket.objects.get()


@pytest.mark.parametrize("failure", [{"delay": 1.5}, {"reset": True}], ids=["answered late", "connection reset"])
@pytest.mark.django_db
def test_an_x_public_reply_without_an_answer_is_posted_once(x_channel, x_emulator, agent, failure):
    answer_within(x_channel)
    ticket = x_mention_ticket(x_emulator, x_channel)
    x_emulator.fault_after_write("create_tweet", **failure)

    reply = reply_and_deliver(ticket, agent, "Looking at the VPN logs now", mode="public")

    [posted] = x_emulator.account_posts()
    assert posted["text"] == "Looking at the VPN logs now"
    assert reply.delivery_status == Message.DeliveryStatus.SENT
    assert reply.external_id == f"tweet:{posted['id']}"
    assert x_emulator.stats()["calls"]["POST /2/tweets"] == 1
    usage = dict(ApiUsage.objects.filter(channel=x_channel).values_list("operation", "units"))
    assert usage["post_create"] == 1, "the post is metered once, when it is found"
    assert usage["post_read_owned"] >= 1, "the lookup reads are metered"


@pytest.mark.parametrize("failure", [{"delay": 1.5}, {"reset": True}], ids=["answered late", "connection reset"])
@pytest.mark.django_db
def test_an_x_dm_without_an_answer_is_sent_once(x_channel, x_emulator, agent, failure):
    answer_within(x_channel)
    ticket = x_dm_ticket(x_emulator, x_channel)
    x_emulator.fault_after_write("dm_send", **failure)

    reply = reply_and_deliver(ticket, agent, "Reset link sent")

    [sent] = x_emulator.account_dms()
    assert sent["text"] == "Reset link sent"
    assert reply.delivery_status == Message.DeliveryStatus.SENT
    assert reply.external_id == f"dm:{sent['dm_event_id']}"
    calls = x_emulator.stats()["calls"]
    assert calls["POST /2/dm_conversations/:dm_conversation_id/messages"] == 1
    assert calls["GET /2/dm_conversations/:dm_conversation_id/dm_events"] == 1
    usage = dict(ApiUsage.objects.filter(channel=x_channel).values_list("operation", "units"))
    assert usage["dm_create"] == 1
    assert usage["dm_event_read"] >= 2  # the inbound DM polled, and the lookup


@pytest.mark.django_db
def test_an_unconfirmed_send_where_the_channel_cannot_look_fails_visibly(
    queued_reply, django_capture_on_commit_callbacks
):
    """locmem, like a platform without a lookup, cannot tell: never resent blindly, the agent decides."""
    locmem.applied_failures.append(OutcomeUnknown("read timeout"))
    assert delivery.deliver_message(queued_reply.pk).status == "failed"
    queued_reply.refresh_from_db()
    assert "may or may not have arrived" in queued_reply.delivery_error
    assert len(locmem.outbox) == 1

    app.conf.task_always_eager = True
    with django_capture_on_commit_callbacks(execute=True):
        assert delivery.retry_delivery(queued_reply)
    queued_reply.refresh_from_db()
    assert queued_reply.delivery_status == Message.DeliveryStatus.SENT
    assert len(locmem.outbox) == 2, "the agent's Retry, after the warning, sends it again"


@pytest.mark.django_db
def test_a_found_post_of_another_reply_with_the_same_words_is_not_taken_for_this_one(x_channel, x_emulator, agent):
    """X is searched by text: an earlier reply with the same words belongs to its own message, not this one."""
    ticket = x_mention_ticket(x_emulator, x_channel)
    first = reply_and_deliver(ticket, agent, "Thanks!", mode="public")
    second = reply_to_ticket(ticket=ticket, author=agent, body="Thanks!", mode="public")  # its delivery not run yet
    Message.objects.filter(pk=second.pk).update(delivery_unconfirmed_since=first.created_at)

    assert delivery.deliver_message(second.pk).status == "sent"
    second.refresh_from_db()
    assert second.external_id != first.external_id
    assert len(x_emulator.account_posts()) == 2


@pytest.mark.django_db
def test_a_lookup_the_platform_refuses_fails_the_reply_with_the_warning(
    slack_channel, slack_ticket, slack_emulator, agent
):
    """If the platform will not say whether the reply arrived, nothing is resent blindly: the agent decides."""
    answer_within(slack_channel)
    slack_emulator.fault_after_write("chat.postMessage", delay=1.5)
    slack_emulator.fault("conversations.replies", error="channel_not_found")

    reply = reply_and_deliver(slack_ticket, agent, "Rebooting the server now")

    assert reply.delivery_status == Message.DeliveryStatus.FAILED
    assert reply.delivery_error.startswith("Could not check whether it arrived: Slack error: channel_not_found")
    assert "may or may not have arrived" in reply.delivery_error
    assert len(thread_replies(slack_emulator, slack_ticket.parent_ts)) == 1


# Transactional: in a worker there is no outer transaction for the outage to break.
@pytest.mark.django_db(transaction=True)
def test_the_deliver_task_retries_a_database_outage_and_sends_once(queued_reply, caplog):
    """A deliver task that meets the database down (claiming the reply) retries with backoff rather than ending:
    the reply does not wait for the sweep's lost-task rule, and it is sent once when the database answers."""
    caplog.set_level(logging.INFO, logger="celery.app.trace")
    app.conf.task_always_eager = True
    outage = DatabaseOperationalError("server closed the connection unexpectedly")
    with database_refuses("tickets_message", outage, times=2):
        deliver_message.apply(args=[queued_reply.pk])

    assert len(re.findall(r"retry: Retry in ([\d.]+)s", caplog.text)) == 2
    queued_reply.refresh_from_db()
    assert queued_reply.delivery_status == Message.DeliveryStatus.SENT
    assert locmem.outbox == [{"thread_key": queued_reply.thread.key, "text": queued_reply.body}]
