"""Replies: sent, retried with backoff (honouring Retry-After), or visibly failed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from channel_adapters import locmem
from channel_adapters.base import CredentialsError, PermanentError, RateLimited, TransientError
from channels_ingest import delivery, ingest, polling, sweep
from channels_ingest.models import Channel
from tests.factories import message
from tickets.models import Message, Ticket
from tickets.replies import ReplyError, reply_to_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket(locmem_channel):
    locmem.inbox["lm"] = [message("a", text="my laptop won't boot"), message("a.1", thread="a", minute=1)]
    polling.poll_channel(locmem_channel.pk)
    ingest.ingest_channel(locmem_channel.pk)
    return Ticket.objects.get()


@pytest.fixture
def queued_reply(ticket, agent, celery_app_lazy):
    """A reply stored as queued, with its delivery task not run yet."""
    return reply_to_ticket(ticket=ticket, author=agent, body="Have you tried turning it off and on?")


@pytest.fixture
def celery_app_lazy():
    from helpdesk.celery import app

    app.conf.task_always_eager = False
    return


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


def test_blank_or_overlong_reply_is_refused(ticket, agent):
    """Replies are validated against the channel's limit before anything is stored."""
    with pytest.raises(ReplyError):
        reply_to_ticket(ticket=ticket, author=agent, body="   ")
    with pytest.raises(ReplyError, match="at most 1000"):
        reply_to_ticket(ticket=ticket, author=agent, body="x" * 1001)
    assert not Message.objects.filter(direction=Message.Direction.OUTBOUND).exists()


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


def test_backoff_grows_exponentially(queued_reply):
    """Without Retry-After, each attempt waits about twice as long as the one before."""
    delays = []
    for _ in range(3):
        locmem.failures.append(TransientError("HTTP 503"))
        delays.append(delivery.deliver_message(queued_reply.pk).retry_in)
    assert delays[0] < delays[1] < delays[2]
    assert delays[2] >= 4


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


def test_permanent_error_fails_at_once_and_retry_resends(queued_reply, django_capture_on_commit_callbacks):
    """A permanent refusal is not retried; the agent's Retry really resends it."""
    locmem.failures.append(PermanentError("channel_not_found"))
    assert delivery.deliver_message(queued_reply.pk).status == "failed"
    queued_reply.refresh_from_db()
    assert queued_reply.delivery_error == "channel_not_found"

    from helpdesk.celery import app

    app.conf.task_always_eager = True
    with django_capture_on_commit_callbacks(execute=True):
        assert delivery.retry_delivery(queued_reply) is True
    queued_reply.refresh_from_db()
    assert queued_reply.delivery_status == Message.DeliveryStatus.SENT
    assert len(locmem.outbox) == 1


def test_credentials_error_fails_the_reply_and_marks_the_channel_unhealthy(queued_reply, locmem_channel):
    """Revoked credentials fail the reply and flag the channel."""
    locmem.failures.append(CredentialsError("token_revoked"))
    delivery.deliver_message(queued_reply.pk)
    locmem_channel.refresh_from_db()
    assert not locmem_channel.healthy
    assert "token_revoked" in locmem_channel.last_error


def test_delivering_twice_sends_once(queued_reply):
    """A redelivered task finds the reply already sent and does nothing."""
    assert delivery.deliver_message(queued_reply.pk).status == "sent"
    assert delivery.deliver_message(queued_reply.pk).status == "noop"
    assert len(locmem.outbox) == 1


def test_sweep_fails_replies_whose_worker_died_mid_send(queued_reply):
    """A reply stuck in 'sending' (worker killed during the platform call) is failed honestly, not resent blindly."""
    Message.objects.filter(pk=queued_reply.pk).update(
        delivery_status=Message.DeliveryStatus.SENDING, delivery_started_at=timezone.now() - timedelta(minutes=10)
    )
    assert sweep.sweep()["unknown"] == 1
    queued_reply.refresh_from_db()
    assert queued_reply.delivery_status == Message.DeliveryStatus.FAILED
    assert "may or may not have arrived" in queued_reply.delivery_error


def test_sweep_requeues_replies_whose_retry_was_lost(queued_reply):
    """A queued reply whose retry is long overdue (lost broker message) is delivered by the sweep."""
    from helpdesk.celery import app

    Message.objects.filter(pk=queued_reply.pk).update(delivery_next_attempt_at=timezone.now() - timedelta(minutes=5))
    app.conf.task_always_eager = True
    assert sweep.sweep()["redeliveries"] == 1
    queued_reply.refresh_from_db()
    assert queued_reply.delivery_status == Message.DeliveryStatus.SENT


def test_sweep_starts_due_polls_once(locmem_channel, django_capture_on_commit_callbacks):
    """Beat's sweep polls due channels, then not again until their interval has passed."""
    locmem.inbox["lm"] = [message("a")]
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep.sweep()["polls"] == 1
    locmem_channel.refresh_from_db()
    assert locmem_channel.next_poll_at > timezone.now()
    assert Message.objects.count() == 1
    assert sweep.sweep()["polls"] == 0


def test_sweep_recovers_ingestion_a_lost_task_left_pending(locmem_channel):
    """Rows stored but never ingested (their task was lost) are ingested by the sweep."""
    from channels_ingest.models import InboundMessage

    locmem.inbox["lm"] = [message("a")]
    polling.poll_channel(locmem_channel.pk)  # its on-commit ingest never runs in this test
    InboundMessage.objects.update(received_at=timezone.now() - timedelta(minutes=1))
    Channel.objects.update(next_poll_at=timezone.now() + timedelta(hours=1))
    assert sweep.sweep()["ingests"] == 1
    assert Message.objects.count() == 1


def test_reply_is_kept_and_later_sent_when_the_broker_is_down(
    ticket, agent, monkeypatch, django_capture_on_commit_callbacks
):
    """If queuing fails (broker down), the reply stays queued in the database and the sweep sends it later."""
    from kombu.exceptions import OperationalError

    from channels_ingest.tasks import deliver_message

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
