"""End-to-end guarantees with real Celery workers on PostgreSQL and Redis, and the Slack emulator."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from channels_ingest import ingest, polling, sweep
from channels_ingest.models import InboundMessage
from channels_ingest.tasks import poll_channel
from tests.helpers import (
    wait_for,
)
from tickets.models import Message, Ticket
from tickets.replies import reply_to_ticket

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_polls_of_one_channel_never_overlap(celery_worker_process, slack_channel, slack_emulator):
    """Eight polls queued at once on two workers (four processes): Slack sees one history call at a time."""
    celery_worker_process(concurrency=2)
    celery_worker_process(concurrency=2)
    slack_emulator.post_many("C0GENERAL", [{"user": "U0ANN", "text": f"m{i}"} for i in range(30)])
    slack_emulator.fault("conversations.history", latency=0.3)
    slack_channel.config["page_size"] = 10
    slack_channel.save()

    for _ in range(8):
        poll_channel.delay(slack_channel.pk)

    wait_for(lambda: Message.objects.count() == 30, message="30 ingested messages")
    wait_for(lambda: slack_emulator.stats()["calls"].get("conversations.history", 0) >= 3, message="a full poll")
    wait_for(lambda: not type(slack_channel).objects.get(pk=slack_channel.pk).poll_lease_token, message="lease release")
    assert slack_emulator.stats()["max_inflight"]["conversations.history:C0GENERAL"] == 1
    assert InboundMessage.objects.count() == 30


def test_webhook_redelivery_is_stored_once(celery_worker_process, slack_channel, slack_emulator, live_server):
    """Slack pushes an event to the live app, then retries it: one message, ingested by the worker, named."""
    celery_worker_process()
    url = live_server.url + reverse("channels_ingest:webhook", args=[slack_channel.public_id])
    slack_emulator.configure(events_url=url)
    event_id = slack_emulator.post("C0GENERAL", "U0ANN", "SSO login loops forever")["event_id"]
    wait_for(lambda: Message.objects.exists(), message="the ingested message")

    assert slack_emulator.redeliver(event_id)["status"] == 200
    assert slack_emulator.redeliver(event_id)["status"] == 200
    ticket = Ticket.objects.get()
    assert ticket.subject == "SSO login loops forever"
    # The name is looked up by a follow-up task, so it may land a moment after the message.
    wait_for(lambda: Ticket.objects.get().requester.display_name == "Ann Employee", message="the requester's name")
    assert InboundMessage.objects.count() == 1
    assert Message.objects.count() == 1


def test_worker_killed_mid_ingest_loses_nothing_and_duplicates_nothing(
    celery_worker_process, slack_channel, slack_emulator
):
    """SIGKILL a worker in the middle of ingesting 3,000 messages; after recovery each is stored exactly once."""
    total = 3000
    slack_emulator.post_many("C0GENERAL", [{"user": f"U{i % 40:04d}", "text": f"msg {i}"} for i in range(total)])
    slack_channel.config["page_size"] = 999
    slack_channel.save()
    assert polling.poll_channel(slack_channel.pk).stored == total  # on commit, ingestion is queued

    doomed = celery_worker_process(concurrency=1, INGEST_BATCH_SIZE=25)
    wait_for(lambda: Message.objects.count() >= 100, interval=0.01, message="ingestion to start")
    doomed.kill()
    partial = Message.objects.count()
    assert partial < total, "the worker finished before it could be killed; raise the total"

    celery_worker_process(concurrency=2)
    sweep.sweep(now=timezone.now() + timedelta(seconds=11))  # beat's pass, once the rows count as stalled
    wait_for(lambda: Message.objects.count() == total, timeout=60, message="all messages")
    assert InboundMessage.objects.filter(status=InboundMessage.Status.PROCESSED).count() == total
    assert Message.objects.values("external_id").distinct().count() == total
    assert Ticket.objects.count() == total


def test_reply_rate_limited_then_sent_by_the_worker(celery_worker_process, slack_channel, slack_emulator, agent):
    """A 429 with Retry-After: 1 is retried by the worker after a second, and lands once in the thread."""
    celery_worker_process()
    parent = slack_emulator.post("C0GENERAL", "U0ANN", "monitor flickers")["ts"]
    polling.poll_channel(slack_channel.pk)
    ingest.ingest_channel(slack_channel.pk)
    slack_emulator.fault("chat.postMessage", count=1, status=429, retry_after=1)

    reply = reply_to_ticket(ticket=Ticket.objects.get(), author=agent, body="Swapping the cable now")
    wait_for(
        lambda: Message.objects.get(pk=reply.pk).delivery_status == Message.DeliveryStatus.SENT,
        message="the reply to be sent",
    )
    reply.refresh_from_db()
    assert reply.delivery_attempts == 2
    [posted] = slack_emulator.bot_messages("C0GENERAL")
    assert posted["thread_ts"] == parent
    assert posted["text"] == "Swapping the cable now"


def test_reply_marked_failed_after_the_last_attempt(celery_worker_process, slack_channel, slack_emulator, agent):
    """A Slack outage outlasting every retry leaves the reply failed, with Slack's error, and nothing posted."""
    celery_worker_process(DELIVERY_MAX_ATTEMPTS=2)
    slack_emulator.post("C0GENERAL", "U0ANN", "monitor flickers")
    polling.poll_channel(slack_channel.pk)
    ingest.ingest_channel(slack_channel.pk)
    slack_emulator.fault("chat.postMessage", count=5, status=503)

    reply = reply_to_ticket(ticket=Ticket.objects.get(), author=agent, body="hello")
    wait_for(
        lambda: Message.objects.get(pk=reply.pk).delivery_status == Message.DeliveryStatus.FAILED,
        message="the reply to fail",
    )
    reply.refresh_from_db()
    assert reply.delivery_attempts == 2
    assert "503" in reply.delivery_error
    assert "gave up after 2 attempts" in reply.delivery_error
    assert slack_emulator.bot_messages("C0GENERAL") == []


def test_worker_killed_mid_poll_cursor_covers_only_what_was_stored(
    celery_worker_process, slack_channel, slack_emulator
):
    """SIGKILL during a slow multi-page poll: the cursor has not moved past unstored messages, and the
    next poll (which beat's sweep starts once the dead worker's lease lapses) stores the rest exactly once."""
    slack_emulator.post_many("C0GENERAL", [{"user": "U0ANN", "text": f"m{i}"} for i in range(50)])
    slack_emulator.fault("conversations.history", latency=0.4)
    slack_channel.config["page_size"] = 10
    slack_channel.save()
    doomed = celery_worker_process(concurrency=1)
    poll_channel.delay(slack_channel.pk)
    wait_for(lambda: InboundMessage.objects.exists(), interval=0.01, message="the first stored page")
    doomed.kill()

    slack_channel.refresh_from_db()
    stored_before = InboundMessage.objects.count()
    assert 0 < stored_before < 50
    assert "oldest" not in slack_channel.cursor.get("C0GENERAL", {})  # the scan never completed
    slack_emulator.clear_faults()
    celery_worker_process()
    # Nothing renews the dead worker's lease: at the first sweep after it lapses, the sweep clears it and
    # queues the poll.
    sweep.sweep(now=timezone.now() + polling.POLL_LEASE + timedelta(seconds=1))
    wait_for(lambda: InboundMessage.objects.count() == 50, message="all 50 messages stored")
    # The dead worker may have taken the queued ingest task with it: beat's sweep recovers the pending rows.
    sweep.sweep(now=timezone.now() + timedelta(seconds=11))
    wait_for(lambda: Message.objects.count() == 50, message="all 50 messages ingested")
    wait_for(
        lambda: "oldest" in type(slack_channel).objects.get(pk=slack_channel.pk).cursor["C0GENERAL"],
        message="the completed scan's cursor",
    )
    slack_channel.refresh_from_db()
    newest = max(ts.split(":")[1] for ts in InboundMessage.objects.values_list("external_id", flat=True))
    assert slack_channel.cursor["C0GENERAL"]["oldest"] == newest
    assert InboundMessage.objects.count() == 50


def slack_thread_ticket(channel, emulator):
    emulator.post("C0GENERAL", "U0ANN", "monitor flickers")
    polling.poll_channel(channel.pk)
    ingest.ingest_channel(channel.pk)
    return Ticket.objects.get()


def x_mention_ticket(channel, emulator):
    emulator.post(emulator.people["maya"], "@ithelp the VPN drops every hour")
    polling.poll_channel(channel.pk)
    ingest.ingest_channel(channel.pk)
    return Ticket.objects.get()


def x_dm_ticket(channel, emulator):
    emulator.dm_from(emulator.people["maya"], "locked out of my account")
    polling.poll_channel(channel.pk)
    ingest.ingest_channel(channel.pk)
    return Ticket.objects.get()


SENDS = {
    "slack": ("slack_channel", "slack_emulator", slack_thread_ticket, "", "chat.postMessage"),
    "x public reply": ("x_channel", "x_emulator", x_mention_ticket, "public", "create_tweet"),
    "x dm": ("x_channel", "x_emulator", x_dm_ticket, "dm", "dm_send"),
}


def copies_posted(emulator, text):
    if hasattr(emulator, "bot_messages"):
        return [m for m in emulator.bot_messages("C0GENERAL") if m["text"] == text]
    return [item for item in emulator.account_posts() + emulator.account_dms() if item["text"] == text]


@pytest.mark.parametrize("kind", SENDS)
def test_worker_killed_after_the_platform_took_the_reply_posts_it_once(kind, celery_worker_process, request, agent):
    """SIGKILL while the platform, which has applied the post, has not answered yet: the dead worker's heartbeat
    lapses, beat's sweep queues the reply again within 30 s, and the new attempt finds the post instead of making
    a second one."""
    channel_fixture, emulator_fixture, make_ticket, mode, write = SENDS[kind]
    channel, emulator = request.getfixturevalue(channel_fixture), request.getfixturevalue(emulator_fixture)
    channel.config["timeout"] = 60
    channel.save()
    ticket = make_ticket(channel, emulator)
    emulator.fault_after_write(write, delay=15)  # the post is stored at once, its answer never comes in time
    text = "Swapping the cable now"
    doomed = celery_worker_process(concurrency=1)

    reply = reply_to_ticket(ticket=ticket, author=agent, body=text, mode=mode or None)
    wait_for(lambda: copies_posted(emulator, text), message="the platform to take the post")
    assert Message.objects.get(pk=reply.pk).delivery_status == Message.DeliveryStatus.SENDING
    doomed.kill()

    celery_worker_process()
    assert sweep.sweep(now=timezone.now() + timedelta(seconds=30))["unknown"] == 1
    wait_for(
        lambda: Message.objects.get(pk=reply.pk).delivery_status == Message.DeliveryStatus.SENT,
        message="the reply to be marked sent",
    )
    [posted] = copies_posted(emulator, text)
    reply.refresh_from_db()
    assert reply.external_id.endswith(posted.get("ts") or posted.get("dm_event_id") or posted["id"])
    assert reply.delivery_unconfirmed_since is None
