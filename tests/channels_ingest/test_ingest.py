"""Ingest: each inbound event stored once, ingested in batches, a bad row isolated."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channel_adapters import locmem
from channels_ingest import ingest, polling
from channels_ingest.models import Channel, InboundMessage
from tests.factories import edit, message
from tests.helpers import (
    poll_and_ingest,
)
from tickets.models import Message

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
