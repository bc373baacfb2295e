"""A send's heartbeat: a live send keeps its reply, a dead one's is taken back within 30 s, and an attempt the
sweep took back while it was in fact alive neither posts again nor overwrites the newer attempt's outcome."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from channels_ingest import delivery
from tests.helpers import SLACK_HELP_CHANNEL, wait_for
from tickets.models import Message
from tickets.replies import reply_to_ticket

# Two connections writing one row at once: the embedded test database (SQLite in memory) refuses.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TEXT = "Rebooting the server now"


class Attempt(threading.Thread):
    """``deliver_message`` in a worker of its own."""

    def __init__(self, reply):
        super().__init__()
        self.reply, self.outcome = reply, None

    def run(self):
        try:
            self.outcome = delivery.deliver_message(self.reply.pk)
        finally:
            connections.close_all()


def slack_posts(slack_emulator, text=TEXT):
    return [m for m in slack_emulator.bot_messages(SLACK_HELP_CHANNEL) if m["text"] == text]


def queued(ticket, agent):
    return reply_to_ticket(ticket=ticket, author=agent, body=TEXT)


def test_a_live_send_keeps_its_reply_while_it_waits_on_the_platform(
    slack_ticket, slack_emulator, agent, no_eager_tasks, monkeypatch
):
    """One platform call outlasts the lease twice over: the heartbeat renews it, so the sweeps meanwhile take
    nothing back, and the reply is sent once."""
    monkeypatch.setattr(delivery, "SEND_LEASE", timedelta(seconds=1.5))
    monkeypatch.setattr(delivery, "SEND_HEARTBEAT", timedelta(seconds=0.2))
    slack_emulator.fault("chat.postMessage", latency=3.2)
    attempt = Attempt(queued(slack_ticket, agent))
    attempt.start()
    wait_for(lambda: Message.objects.filter(delivery_status=Message.DeliveryStatus.SENDING).exists(), message="claim")
    sweeps = taken_back = 0
    while attempt.is_alive():
        taken_back += delivery.recover_stalled_sends(timezone.now())
        sweeps += 1
        time.sleep(0.1)
    attempt.join()

    assert (attempt.outcome.status, taken_back) == ("sent", 0)
    assert sweeps > 15  # swept well past the first lease's end
    assert len(slack_posts(slack_emulator)) == 1


def test_a_send_taken_back_while_its_post_was_in_flight_is_recorded_once(
    slack_ticket, slack_emulator, agent, no_eager_tasks, monkeypatch
):
    """The worker is alive but none of its renewals got through (a slow database): the sweep takes the reply back
    while Slack, which has the post, has not answered. The newer attempt finds the post; the old one's late
    answer neither posts again nor writes over the newer attempt's outcome."""
    monkeypatch.setattr(delivery, "SEND_HEARTBEAT", timedelta(hours=1))  # no renewal gets through
    slack_emulator.fault_after_write("chat.postMessage", delay=2)
    reply = queued(slack_ticket, agent)
    old = Attempt(reply)
    old.start()
    wait_for(lambda: slack_posts(slack_emulator), message="Slack to take the post")

    assert delivery.recover_stalled_sends(timezone.now() + delivery.SEND_LEASE + timedelta(seconds=1)) == 1
    assert delivery.deliver_message(reply.pk).status == "sent"
    old.join()

    assert old.outcome == delivery.TAKEN_BACK
    [posted] = slack_posts(slack_emulator)
    reply.refresh_from_db()
    assert reply.delivery_status == Message.DeliveryStatus.SENT
    assert reply.external_id == f"{SLACK_HELP_CHANNEL}:{posted['ts']}"
    assert reply.delivery_attempts == 2
    assert slack_emulator.stats()["calls"]["chat.postMessage"] == 1


def test_a_send_taken_back_before_it_posted_posts_nothing(
    slack_ticket, slack_emulator, agent, no_eager_tasks, monkeypatch
):
    """An earlier attempt's outcome was unknown, so the attempt looks first; it is taken back while Slack is slow
    to answer the look-up. The newer attempt looks too (before anything is posted), finds nothing and posts; the
    old one, back from its look-up first, finds its claim gone and posts nothing."""
    monkeypatch.setattr(delivery, "SEND_HEARTBEAT", timedelta(hours=1))
    reply = queued(slack_ticket, agent)
    Message.objects.filter(pk=reply.pk).update(delivery_unconfirmed_since=timezone.now() - timedelta(minutes=1))
    slack_emulator.fault_after_write("conversations.replies", delay=1.5, count=2)  # both look-ups read, then wait
    old = Attempt(reply)
    old.start()
    wait_for(
        lambda: Message.objects.get(pk=reply.pk).delivery_status == Message.DeliveryStatus.SENDING, message="claim"
    )

    assert delivery.recover_stalled_sends(timezone.now() + delivery.SEND_LEASE + timedelta(seconds=1)) == 1
    assert delivery.deliver_message(reply.pk).status == "sent"
    old.join()

    assert old.outcome == delivery.TAKEN_BACK
    assert len(slack_posts(slack_emulator)) == 1
    assert Message.objects.get(pk=reply.pk).delivery_status == Message.DeliveryStatus.SENT
