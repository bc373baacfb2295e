"""Ingest: each inbound event stored once, ingested in batches, a bad row isolated, an outage waited out."""

import hashlib
import hmac
import json
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from channel_adapters import locmem
from channel_adapters.base import InboundAttachment, Rejected, Sender
from channels_ingest import ingest, names, polling, sweep, tasks
from channels_ingest.models import Channel, InboundMessage
from tests.factories import BASE_TIME, edit, message, message_with
from tests.helpers import (
    database_refuses,
    poll_and_ingest,
)
from tickets.models import Message, Ticket

pytestmark = pytest.mark.django_db


def test_repoll_and_redelivery_store_each_message_once(locmem_channel):
    """Re-polling from an old cursor, or the same event arriving twice, never duplicates a message."""
    locmem.inbox["lm"] = [message("a"), message("b", minute=1), message("a")]
    first = poll_and_ingest(locmem_channel)
    Channel.objects.filter(pk=locmem_channel.pk).update(cursor={})  # as if the cursor was lost
    second = poll_and_ingest(locmem_channel)

    assert (first.stored, second.stored) == (2, 0)
    assert InboundMessage.objects.count() == 2
    assert Message.objects.count() == 2


def test_edit_of_unknown_message_is_skipped_with_a_reason(locmem_channel):
    """An edit whose message was never stored is recorded as skipped, not lost silently."""
    locmem.inbox["lm"] = [edit("ghost", "boo")]
    poll_and_ingest(locmem_channel)
    row = InboundMessage.objects.get()
    assert row.status == InboundMessage.Status.SKIPPED
    assert "not stored" in row.error


def test_one_broken_message_does_not_block_the_batch(locmem_channel):
    """A row that cannot be ingested is marked failed with its error; the rest of the batch lands."""
    locmem.inbox["lm"] = [message("a"), message("b", minute=1)]
    polling.poll_channel(locmem_channel.pk)
    InboundMessage.objects.filter(external_id="a").update(payload={"garbage": True})

    ingest.ingest_channel(locmem_channel.pk)

    broken = InboundMessage.objects.get(external_id="a")
    assert broken.status == InboundMessage.Status.FAILED
    assert "KeyError" in broken.error
    assert broken.payload == {"garbage": True}  # kept, for an admin to look at and re-queue
    assert InboundMessage.objects.get(external_id="b").status == InboundMessage.Status.PROCESSED
    assert list(Message.objects.values_list("external_id", flat=True)) == ["b"]


@pytest.mark.postgres  # SQLite's bulk_create splits a large insert by its variable limit
def test_ingest_query_count_does_not_grow_with_batch_size(locmem_channel, django_assert_max_num_queries):
    """Ingestion is set-based: 200 messages from 50 people in 200 threads take the same queries as 5."""

    def queries_to_ingest(prefix, count):
        locmem.inbox["lm"] = [message(f"{prefix}{i}", user=f"{prefix}u{i % 50}") for i in range(count)]
        Channel.objects.filter(pk=locmem_channel.pk).update(cursor={})
        polling.poll_channel(locmem_channel.pk)

        with CaptureQueriesContext(connection) as queries:
            ingest.ingest_channel(locmem_channel.pk)
        return len(queries)

    small, large = queries_to_ingest("s", 5), queries_to_ingest("l", 200)
    assert large == small
    assert Message.objects.count() == 205


def statuses():
    return dict(InboundMessage.objects.values_list("external_id", "status"))


@pytest.mark.postgres  # SQLite does not enforce a column's length
def test_a_row_the_database_refuses_fails_alone_with_its_payload_kept(locmem_channel):
    """A data error from the database for one row (a file size beyond a bigint) is that row's failure, not an
    outage: it fails alone, with its payload kept, and the rest of the batch lands."""
    absurd = InboundAttachment(name="a.txt", content_type="text/plain", size=10**20, ref="r1")
    locmem.inbox["lm"] = [message_with(absurd, external_id="a"), message("b", minute=1)]
    poll_and_ingest(locmem_channel)

    assert statuses() == {"a": "failed", "b": "processed"}
    broken = InboundMessage.objects.get(external_id="a")
    assert "DataError" in broken.error
    assert broken.payload["attachments"][0]["size"] == 10**20


def test_a_database_outage_mid_batch_leaves_the_rows_pending_not_failed(locmem_channel):
    """Defect 2: an infrastructure error is not a bad payload. The batch stops, every row stays pending (to be
    retried), and they are ingested once the database answers again."""
    locmem.inbox["lm"] = [message("a"), message("b", minute=1)]
    polling.poll_channel(locmem_channel.pk)

    outage = OperationalError("server closed the connection unexpectedly")
    with database_refuses("tickets_message", outage) as refused, pytest.raises(OperationalError):
        ingest.ingest_channel(locmem_channel.pk)
    assert refused
    assert statuses() == {"a": "pending", "b": "pending"}
    assert not InboundMessage.objects.exclude(error="").exists()

    assert ingest.ingest_channel(locmem_channel.pk) == 2
    assert statuses() == {"a": "processed", "b": "processed"}
    assert Message.objects.count() == 2


def test_the_ingest_task_retries_an_outage_with_growing_backoff(locmem_channel, caplog):
    """The task retries an outage (Celery's retry with a countdown, each longer than the last) until the
    database answers; nothing is marked failed on the way. Eager here, so the retries run at once."""
    locmem.inbox["lm"] = [message("a")]
    polling.poll_channel(locmem_channel.pk)
    caplog.set_level(logging.INFO, logger="celery.app.trace")

    outage = OperationalError("the database system is starting up")
    with database_refuses("tickets_message", outage, times=2):
        tasks.ingest_channel.apply(args=[locmem_channel.pk])

    countdowns = [float(m) for m in re.findall(r"retry: Retry in ([\d.]+)s", caplog.text)]
    assert len(countdowns) == 2
    assert 1 <= countdowns[0] < countdowns[1]
    assert statuses() == {"a": "processed"}


def test_ingest_goes_on_without_cached_names_while_the_cache_is_down(
    slack_channel, slack_emulator, dead_cache, django_capture_on_commit_callbacks
):
    """Defect 2: reading cached names is best effort. With the cache down every message is ingested, none fails,
    and the name lookup queued after commit still names the person (from the platform, as nothing is cached)."""
    slack_emulator.post_many("C0GENERAL", [{"user": "U0ANN", "text": f"m{i}"} for i in range(3)])
    with django_capture_on_commit_callbacks(execute=True):
        polling.poll_channel(slack_channel.pk)
        assert ingest.ingest_channel(slack_channel.pk) == 3

    assert set(statuses().values()) == {"processed"}
    assert set(Ticket.objects.values_list("requester__display_name", flat=True)) == {"Ann Employee"}


def test_redis_killed_mid_ingest_fails_nothing(
    settings, throwaway_redis, slack_channel, slack_emulator, django_capture_on_commit_callbacks
):
    """A real outage: the cache's Redis dies between storing and ingesting, under an open connection. Every
    message is ingested, none fails; once Redis is back, the next lookup of the person keeps the name again."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": throwaway_redis.url}
    }
    slack_emulator.post_many("C0GENERAL", [{"user": "U0ANN", "text": f"m{i}"} for i in range(3)])
    polling.poll_channel(slack_channel.pk)
    cache.set("warm", 1)  # the client holds a live connection when the server goes

    throwaway_redis.stop()
    with django_capture_on_commit_callbacks(execute=True):
        assert ingest.ingest_channel(slack_channel.pk) == 3
    assert set(statuses().values()) == {"processed"}
    assert set(Ticket.objects.values_list("requester__display_name", flat=True)) == {"Ann Employee"}

    throwaway_redis.start()
    slack_channel.refresh_from_db()
    ann = Sender(namespace=f"slack:{slack_channel.state['team_id']}", external_id="U0ANN")
    assert names.describe_senders(slack_channel.pk, [ann]) == 1
    assert cache.get_many([names.cache_key(ann)])


@pytest.mark.django_db(transaction=True)  # the webhook's transaction really commits, so its on-commit work runs
def test_a_webhook_is_stored_and_answered_while_the_cache_is_down(client, locmem_channel, dead_cache, caplog):
    """Defect 4: the row is committed before the ingest is scheduled, so a cache outage must not turn the answer
    into a 500 (the platform would resend). The webhook answers 200, and the sweep ingests the row."""
    body = json.dumps({"id": "w1", "from": "u1", "text": "VPN is down", "at": BASE_TIME.isoformat()}).encode()
    signature = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    caplog.set_level(logging.WARNING, logger="channels_ingest")

    response = client.post(
        reverse("channels_ingest:webhook", args=[locmem_channel.public_id]),
        data=body,
        content_type="application/json",
        headers={"X-Signature": signature},
    )

    assert response.status_code == 200
    assert statuses() == {"w1": "pending"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "cache" in warnings[0].getMessage()
    assert warnings[0].exc_info is None  # a line in the log, not a traceback

    InboundMessage.objects.update(received_at=timezone.now() - timedelta(minutes=1))
    assert sweep.sweep()["ingests"] == 1
    assert statuses() == {"w1": "processed"}


@pytest.mark.postgres  # points the live connection at a port where no database answers
@pytest.mark.django_db(transaction=True)
def test_a_webhook_met_by_a_database_outage_asks_the_platform_to_send_it_again(client, locmem_channel, caplog):
    """Nothing can be stored while the database is down: the answer is a 503 with Retry-After (every platform
    resends on a 5xx) and a line in the log, not a traceback per request; the resent event is stored once."""
    url = reverse("channels_ingest:webhook", args=[locmem_channel.public_id])
    body = json.dumps({"id": "w1", "from": "u1", "text": "VPN is down", "at": BASE_TIME.isoformat()}).encode()
    headers = {"X-Signature": hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()}
    caplog.set_level(logging.WARNING)
    database = connection
    port = database.settings_dict["PORT"]
    database.close()
    database.settings_dict["PORT"] = 1
    try:
        response = client.post(url, data=body, content_type="application/json", headers=headers)
    finally:
        database.close()
        database.settings_dict["PORT"] = port

    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    assert "database" in response.json()["error"]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in warnings if r.name.startswith("channels_ingest")] == ["channels_ingest.outages"]
    assert not [r for r in warnings if r.exc_info]  # Django's own "Service Unavailable" line has none either
    assert statuses() == {}

    assert client.post(url, data=body, content_type="application/json", headers=headers).status_code == 200
    assert client.post(url, data=body, content_type="application/json", headers=headers).status_code == 200
    assert list(statuses()) == ["w1"]


def test_an_admin_requeues_failed_rows_and_they_are_ingested(locmem_channel, django_capture_on_commit_callbacks):
    """Failed rows keep their payload; once the cause is fixed, re-queueing makes them pending again (error
    cleared) and schedules their ingest."""
    locmem.inbox["lm"] = [message("a"), message("b", minute=1)]
    polling.poll_channel(locmem_channel.pk)
    InboundMessage.objects.filter(external_id="a").update(payload={"garbage": True})
    ingest.ingest_channel(locmem_channel.pk)
    assert statuses() == {"a": "failed", "b": "processed"}
    InboundMessage.objects.filter(external_id="a").update(payload=message("a").to_json())  # e.g. a parser fixed

    with django_capture_on_commit_callbacks(execute=True):
        assert ingest.requeue_failed(locmem_channel) == 1

    assert statuses() == {"a": "processed", "b": "processed"}
    assert InboundMessage.objects.get(external_id="a").error == ""
    assert ingest.requeue_failed(locmem_channel) == 0


def test_requeueing_leaves_items_the_adapter_rejected_failed(locmem_channel):
    """An item the adapter could not interpret holds the platform's raw data, not an envelope: ingesting it
    again could only fail again, so a re-queue leaves it failed, with its reason, for the admin to read."""
    ingest.store_envelopes(locmem_channel, [], [Rejected(reference="m1", reason="ts is not a time", raw={"ts": 1})])
    rejected = InboundMessage.objects.get()

    assert ingest.requeue_failed(locmem_channel) == 0
    rejected.refresh_from_db()
    assert rejected.status == "failed"
    assert "ts is not a time" in rejected.error


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_stores_of_the_same_envelopes_count_each_message_once(locmem_channel):
    """Defect 11: two stores of the same 100 envelopes, each in its own connection, both look before either
    inserts. Their counts of new rows add up to 100, the number of distinct messages."""
    envelopes = [message(f"r{i}", minute=i) for i in range(100)]
    both_looked = threading.Barrier(2, timeout=10)

    def insert_after_the_other_looked(execute, sql, params, many, context):
        if sql.startswith(f'INSERT INTO "{InboundMessage._meta.db_table}"'):
            both_looked.wait()
        return execute(sql, params, many, context)

    def store():
        try:
            with connection.execute_wrapper(insert_after_the_other_looked):
                return ingest.store_envelopes(locmem_channel, envelopes)
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        counts = [future.result() for future in [pool.submit(store), pool.submit(store)]]

    assert sorted(counts) == [0, 100]
    assert InboundMessage.objects.count() == 100
