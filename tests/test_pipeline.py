"""The channel-independent pipeline: store once, ingest in batches, cursor, lease, isolation."""

import pytest
from django.db import connection

from channel_adapters import locmem
from channel_adapters.base import CredentialsError, RateLimited, TransientError
from channels_ingest import ingest, names, polling
from channels_ingest.models import Channel, InboundMessage
from tests.factories import deletion, edit, message, sender
from tickets.models import Contact, Identity, Message, Ticket

pytestmark = pytest.mark.django_db


def poll_and_ingest(channel):
    outcome = polling.poll_channel(channel.pk)
    ingest.ingest_channel(channel.pk)
    return outcome


def test_top_level_message_opens_ticket_and_thread_reply_joins_it(locmem_channel):
    """A message starting a thread opens a ticket; replies in that thread join the same ticket."""
    locmem.inbox["lm"] = [
        message("a", text="VPN is down\nsince this morning"),
        message("a.1", thread="a", minute=1, text="still down"),
        message("b", user="u2", name="Bo", minute=2),
    ]
    poll_and_ingest(locmem_channel)

    vpn = Ticket.objects.get(subject="VPN is down")
    assert list(vpn.messages.values_list("body", flat=True)) == ["VPN is down\nsince this morning", "still down"]
    assert vpn.message_count == 2
    assert vpn.requester.display_name == "Ann Employee"
    assert vpn.channel == locmem_channel
    assert Ticket.objects.count() == 2


def test_repoll_and_redelivery_store_each_message_once(locmem_channel):
    """Re-polling from an old cursor, or the same event arriving twice, never duplicates a message."""
    locmem.inbox["lm"] = [message("a"), message("b", minute=1), message("a")]
    first = poll_and_ingest(locmem_channel)
    Channel.objects.filter(pk=locmem_channel.pk).update(cursor={})  # as if the cursor was lost
    second = poll_and_ingest(locmem_channel)

    assert (first.stored, second.stored) == (2, 0)
    assert InboundMessage.objects.count() == 2
    assert Message.objects.count() == 2


def test_cursor_advances_only_with_what_was_stored(locmem_channel):
    """A poll that fails mid-way keeps the pages it stored and the cursor that covers exactly them."""
    locmem_channel.config["page_size"] = 2
    locmem_channel.save()
    locmem.inbox["lm"] = [message("a"), message("b"), TransientError("connection reset"), message("c")]

    outcome = polling.poll_channel(locmem_channel.pk)
    locmem_channel.refresh_from_db()
    assert outcome.stored == 2
    assert locmem_channel.cursor == {"position": 2}
    assert locmem_channel.last_error == "connection reset"
    assert set(InboundMessage.objects.values_list("external_id", flat=True)) == {"a", "b"}

    locmem.inbox["lm"].pop(2)
    assert polling.poll_channel(locmem_channel.pk).stored == 1
    locmem_channel.refresh_from_db()
    assert locmem_channel.cursor == {"position": 3}
    assert locmem_channel.healthy
    assert not locmem_channel.last_error


def test_a_channel_already_being_polled_is_not_polled_again(locmem_channel):
    """The poll lease keeps two pollers of one channel apart."""
    token = polling._acquire_poll_lease(locmem_channel.pk)
    assert token is not None
    locmem.inbox["lm"] = [message("a")]
    assert polling.poll_channel(locmem_channel.pk).polled is False
    polling._release_poll_lease(locmem_channel.pk, token)
    assert polling.poll_channel(locmem_channel.pk).stored == 1


def test_a_poller_that_lost_its_lease_stores_nothing_more(locmem_channel):
    """If another poller took over an expired lease, the old one's next page is refused (fencing)."""
    locmem.inbox["lm"] = [message("a")]
    pages = locmem_channel.adapter().poll({})
    token = polling._acquire_poll_lease(locmem_channel.pk)
    Channel.objects.filter(pk=locmem_channel.pk).update(poll_lease_token=None, poll_lease_expires_at=None)
    polling._acquire_poll_lease(locmem_channel.pk)  # a second poller wins
    renewed = Channel.objects.filter(pk=locmem_channel.pk, poll_lease_token=token).update(cursor=next(pages).cursor)
    assert renewed == 0


def test_revoked_credentials_mark_only_that_channel_unhealthy(locmem_channel):
    """Credentials errors mark the channel unhealthy with the platform's error; other channels still poll."""
    other = Channel.objects.create(kind="locmem", name="other", config={"inbox": "other"}, state={"checked": True})
    locmem.inbox["lm"] = [CredentialsError("token_revoked")]
    locmem.inbox["other"] = [message("x")]

    polling.poll_channel(locmem_channel.pk)
    polling.poll_channel(other.pk)
    locmem_channel.refresh_from_db()
    other.refresh_from_db()
    assert not locmem_channel.healthy
    assert "token_revoked" in locmem_channel.last_error
    assert other.healthy
    assert other.last_poll_stored == 1


def test_rate_limited_poll_is_rescheduled_after_retry_after(locmem_channel):
    """A 429 pushes the next poll back by Retry-After without marking the channel unhealthy."""
    locmem.inbox["lm"] = [RateLimited("slow down", retry_after=120)]
    polling.poll_channel(locmem_channel.pk)
    locmem_channel.refresh_from_db()
    assert locmem_channel.healthy
    assert (locmem_channel.next_poll_at - locmem_channel.last_poll_at).total_seconds() == pytest.approx(120)


def test_edits_and_deletions_update_the_message_without_new_tickets(locmem_channel):
    """Edits replace the text and mark it edited; deletions mark it deleted; neither opens a ticket."""
    locmem.inbox["lm"] = [message("a", text="printer broken"), message("b", minute=1, text="typo")]
    poll_and_ingest(locmem_channel)
    locmem.inbox["lm"] += [edit("a", "printer on floor 3 broken"), deletion("b")]
    poll_and_ingest(locmem_channel)

    edited = Message.objects.get(external_id="a")
    assert edited.body == "printer on floor 3 broken"
    assert edited.edited_at is not None
    assert Message.objects.get(external_id="b").deleted_at is not None
    assert Ticket.objects.count() == 2


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


def test_resolved_ticket_reopens_when_the_requester_writes_again(locmem_channel):
    """A new message in the thread of a resolved ticket reopens it."""
    locmem.inbox["lm"] = [message("a")]
    poll_and_ingest(locmem_channel)
    Ticket.objects.update(status=Ticket.Status.RESOLVED)
    locmem.inbox["lm"].append(message("a.1", thread="a", minute=5))
    poll_and_ingest(locmem_channel)
    assert Ticket.objects.get().status == Ticket.Status.OPEN


def test_one_person_is_one_identity_and_contact_across_tickets(locmem_channel):
    """Messages from the same platform user share one Identity and Contact."""
    locmem.inbox["lm"] = [message("a"), message("b", minute=1), message("c", user="u2", name="Bo", minute=2)]
    poll_and_ingest(locmem_channel)
    assert Identity.objects.count() == 2
    assert Contact.objects.count() == 2
    assert Ticket.objects.filter(requester__display_name="Ann Employee").count() == 2


@pytest.mark.parametrize(
    "text",
    [
        "🔥🙈 laptop on fire 👩🏽‍💻",
        "שלום, המדפסת לא עובדת",  # RTL
        "zero\u200bwidth\u200djoin\ufeff",
        "<script>alert(1)</script><img src=x onerror=alert(1)>",
    ],
)
def test_odd_text_is_stored_exactly(locmem_channel, text):
    """Emoji, RTL, zero-width characters and HTML are stored exactly as written (escaping is the view's job)."""
    locmem.inbox["lm"] = [message("a", text=text)]
    poll_and_ingest(locmem_channel)
    assert Message.objects.get().body == text


def test_nul_characters_and_huge_text_are_stored_safely(locmem_channel):
    """NUL (refused by PostgreSQL) becomes U+FFFD; text over 40,000 characters is truncated with a note."""
    locmem.inbox["lm"] = [message("a", text="a\x00b"), message("b", minute=1, text="x" * 50_000)]
    poll_and_ingest(locmem_channel)
    assert Message.objects.get(external_id="a").body == "a\ufffdb"
    huge = Message.objects.get(external_id="b").body
    assert huge.startswith("x" * 40_000)
    assert huge.endswith("[truncated 10000 characters]")


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite's bulk_create splits a large insert by its variable limit"
)
def test_ingest_query_count_does_not_grow_with_batch_size(locmem_channel, django_assert_max_num_queries):
    """Ingestion is set-based: 200 messages from 50 people in 200 threads take the same queries as 5."""

    def queries_to_ingest(prefix, count):
        locmem.inbox["lm"] = [message(f"{prefix}{i}", user=f"{prefix}u{i % 50}") for i in range(count)]
        Channel.objects.filter(pk=locmem_channel.pk).update(cursor={})
        polling.poll_channel(locmem_channel.pk)
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            ingest.ingest_channel(locmem_channel.pk)
        return len(queries)

    small, large = queries_to_ingest("s", 5), queries_to_ingest("l", 200)
    assert large == small
    assert Message.objects.count() == 205


def test_a_name_lookup_for_a_deleted_channel_does_nothing(locmem_channel):
    """The follow-up name lookup runs after ingestion; if the channel was deleted meanwhile it has nothing to do."""
    channel_id = locmem_channel.pk
    locmem_channel.delete()
    assert names.describe_senders(channel_id, [sender("u1", "Ann")]) == 0
