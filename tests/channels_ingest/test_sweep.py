"""Beat's sweep: due polls, and work whose task was lost."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from channel_adapters import locmem, slack, x
from channel_adapters.base import InboundAttachment
from channels_ingest import delivery, polling, sweep
from channels_ingest.models import Channel, InboundMessage
from helpdesk.celery import app
from tests.conftest import SLACK_CONFIG
from tests.factories import message, message_with
from tests.helpers import (
    receive,
)
from tickets.models import Attachment, Message


@pytest.mark.django_db
def test_the_sweep_requeues_lost_downloads(locmem_channel):
    app.conf.task_always_eager = False
    locmem.files["r1"] = b"data"
    receive(
        locmem_channel, [message_with(InboundAttachment(name="a.txt", content_type="text/plain", size=4, ref="r1"))]
    )
    assert sweep.sweep()["downloads"] == 0
    Attachment.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    app.conf.task_always_eager = True
    assert sweep.sweep()["downloads"] == 1
    assert Attachment.objects.get().status == "stored"


@pytest.mark.django_db
def test_sweep_fails_replies_whose_worker_died_mid_send(queued_reply):
    """A reply stuck in 'sending' (worker killed during the platform call) is failed honestly, not resent blindly."""
    Message.objects.filter(pk=queued_reply.pk).update(
        delivery_status=Message.DeliveryStatus.SENDING, delivery_started_at=timezone.now() - timedelta(minutes=10)
    )
    assert sweep.sweep()["unknown"] == 1
    queued_reply.refresh_from_db()
    assert queued_reply.delivery_status == Message.DeliveryStatus.FAILED
    assert "may or may not have arrived" in queued_reply.delivery_error


@pytest.mark.django_db
def test_a_send_without_a_heartbeat_is_taken_back_after_5_minutes(queued_reply):
    """A reply left sending by a version without heartbeats: the sweep's older rule still takes it back."""
    started = timezone.now()
    Message.objects.filter(pk=queued_reply.pk).update(
        delivery_status=Message.DeliveryStatus.SENDING, delivery_started_at=started
    )
    assert delivery.recover_stalled_sends(started + timedelta(minutes=4)) == 0
    assert delivery.recover_stalled_sends(started + timedelta(minutes=6)) == 1


class WorkerKilled(BaseException):
    """A SIGKILL as the attempt sees it: none of its except clauses runs, no outcome is written."""


@pytest.mark.django_db
def test_a_send_whose_worker_died_is_taken_back_within_30_seconds(queued_reply, locmem_channel):
    """The worker died while the platform, which took the post, had not answered: its heartbeat stops, and
    within 30 s of its death the sweep queues the reply again, not after 5 minutes; the attempt finds the post."""
    Channel.objects.filter(pk=locmem_channel.pk).update(config={**locmem_channel.config, "finds_sent": True})
    locmem.applied_failures.append(WorkerKilled())
    died_at = timezone.now()
    with time_machine.travel(died_at, tick=False) as clock:
        with pytest.raises(WorkerKilled):
            delivery.deliver_message(queued_reply.pk)
        assert Message.objects.get(pk=queued_reply.pk).delivery_status == Message.DeliveryStatus.SENDING

        clock.shift(timedelta(seconds=20))
        assert sweep.sweep()["unknown"] == 0
        clock.shift(timedelta(seconds=10))
        app.conf.task_always_eager = True
        assert sweep.sweep()["unknown"] == 1

    queued_reply.refresh_from_db()
    assert queued_reply.delivery_status == Message.DeliveryStatus.SENT
    assert queued_reply.external_id == "m0:out1"
    assert len(locmem.outbox) == 1


def test_the_send_lease_and_beat_keep_the_30_second_promise():
    """A dead worker's heartbeat lapses, then the next sweep takes the reply back: both within 30 s; a live one
    survives two missed renewals; and a post started after the last renewal ends within the lease."""
    sweep_every = settings.CELERY_BEAT_SCHEDULE["sweep"]["schedule"]
    assert delivery.SEND_LEASE + sweep_every <= timedelta(seconds=30)
    assert delivery.SEND_HEARTBEAT * 3 <= delivery.SEND_LEASE
    client_timeout = max(slack.DEFAULT_TIMEOUT_SECONDS, x.DEFAULT_TIMEOUT_SECONDS)
    assert timedelta(seconds=client_timeout) < delivery.SEND_LEASE


@pytest.mark.django_db
def test_sweep_requeues_replies_whose_retry_was_lost(queued_reply):
    """A queued reply whose retry is long overdue (lost broker message) is delivered by the sweep."""
    Message.objects.filter(pk=queued_reply.pk).update(delivery_next_attempt_at=timezone.now() - timedelta(minutes=5))
    app.conf.task_always_eager = True
    assert sweep.sweep()["redeliveries"] == 1
    queued_reply.refresh_from_db()
    assert queued_reply.delivery_status == Message.DeliveryStatus.SENT


@pytest.mark.django_db
def test_sweep_requeues_a_lost_reply_once_not_on_every_pass(queued_reply):
    """A re-queued reply waiting for a busy worker is not queued again by the next passes (every few seconds):
    its next attempt is due from the re-queue, and only a task lost again is queued again, LOST_RETRY later."""
    Message.objects.filter(pk=queued_reply.pk).update(delivery_next_attempt_at=timezone.now() - timedelta(minutes=5))
    assert sweep.sweep()["redeliveries"] == 1
    assert sweep.sweep()["redeliveries"] == 0
    assert delivery.redeliver_overdue(timezone.now() + delivery.LOST_RETRY + timedelta(seconds=1)) == 1


@pytest.mark.django_db
def test_sweep_starts_due_polls_once(locmem_channel, django_capture_on_commit_callbacks):
    """Beat's sweep polls due channels, then not again until their interval has passed."""
    locmem.inbox["lm"] = [message("a")]
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep.sweep()["polls"] == 1
    locmem_channel.refresh_from_db()
    assert locmem_channel.next_poll_at > timezone.now()
    assert Message.objects.count() == 1
    assert sweep.sweep()["polls"] == 0


@pytest.mark.django_db
def test_sweep_recovers_ingestion_a_lost_task_left_pending(locmem_channel):
    """Rows stored but never ingested (their task was lost) are ingested by the sweep."""
    locmem.inbox["lm"] = [message("a")]
    polling.poll_channel(locmem_channel.pk)  # its on-commit ingest never runs in this test
    InboundMessage.objects.update(received_at=timezone.now() - timedelta(minutes=1))
    Channel.objects.update(next_poll_at=timezone.now() + timedelta(hours=1))
    assert sweep.sweep()["ingests"] == 1
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_sweep_requeues_a_stalled_send_where_the_channel_can_look_and_it_is_found(queued_reply, locmem_channel):
    """The worker died after the platform took the reply: the sweep queues it, the attempt finds it, nothing
    is sent again."""
    Channel.objects.filter(pk=locmem_channel.pk).update(config={**locmem_channel.config, "finds_sent": True})
    locmem.outbox.append({"thread_key": "m0", "text": queued_reply.body})
    locmem.sent_keys[queued_reply.delivery_key] = "m0:out1"
    Message.objects.filter(pk=queued_reply.pk).update(
        delivery_status=Message.DeliveryStatus.SENDING, delivery_started_at=timezone.now() - timedelta(minutes=10)
    )
    app.conf.task_always_eager = True

    assert sweep.sweep()["unknown"] == 1

    queued_reply.refresh_from_db()
    assert queued_reply.delivery_status == Message.DeliveryStatus.SENT
    assert queued_reply.external_id == "m0:out1"
    assert len(locmem.outbox) == 1


@pytest.mark.django_db
def test_the_sweep_checks_credentials_hourly_and_learns_the_platforms_state(slack_channel, slack_emulator):
    """Revoked tokens show between polls (on push-only channels too), and learned state (WhatsApp's approved
    templates) stays current."""
    Channel.objects.filter(pk=slack_channel.pk).update(poll_interval_seconds=0)  # push only: no poll checks it
    polling.verify_channel(slack_channel)
    checked = Channel.objects.get(pk=slack_channel.pk).credentials_checked_at

    def sweep_after(minutes):
        with time_machine.travel(checked + timedelta(minutes=minutes), tick=False):
            return sweep.sweep()["state_refreshes"]

    assert sweep_after(59) == 0
    Channel.objects.filter(pk=slack_channel.pk).update(state={})
    assert sweep_after(61) == 1
    assert Channel.objects.get(pk=slack_channel.pk).state["team_id"]
    assert sweep_after(62) == 0  # checked at 61: not again within the hour

    slack_emulator.set_token(SLACK_CONFIG["bot_token"], revoked=True)
    assert sweep_after(125) == 1
    channel = Channel.objects.get(pk=slack_channel.pk)
    assert not channel.healthy
    assert channel.last_error.startswith("Credentials rejected")
