"""Platforms report back on replies (delivered, read, failed) and people react to messages: the stored
messages change in place, forward only, and the open pages see it."""

from datetime import timedelta
from unittest.mock import patch

import pytest
from django.test import TestCase
from django.utils import timezone

from channel_adapters import locmem
from channel_adapters.base import DeliveryReport, Envelope, EnvelopeKind, OutcomeUnknown
from channels_ingest.delivery import deliver_message, retry_delivery
from channels_ingest.ingest import ingest_channel, store_envelopes
from channels_ingest.models import InboundMessage
from tests.factories import BASE_TIME, delivery_report, message, reaction
from tests.helpers import receive, reply_and_deliver, upload
from tickets.models import Message
from tickets.replies import reply_target, reply_to_ticket


def read_up_to(at, *, thread="m0", minute=6):
    return Envelope(
        external_id=f"read:{thread}:{at.isoformat()}",
        kind=EnvelopeKind.STATUS,
        thread_key=thread,
        sent_at=BASE_TIME + timedelta(minutes=minute),
        meta={"status": "read", "up_to": at.isoformat()},
    )


@pytest.fixture
def sent_reply(ticket, agent):
    """A reply on the locmem ticket, sent: its platform id is "m0:out1"."""
    reply = reply_and_deliver(ticket, agent, "Turn it off and on again")
    assert (reply.delivery_status, reply.external_id) == ("sent", "m0:out1")
    return reply


@pytest.mark.django_db
def test_reports_move_a_reply_forward_and_never_back(locmem_channel, sent_reply):
    receive(locmem_channel, [delivery_report("m0:out1", DeliveryReport.DELIVERED)])
    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == Message.DeliveryStatus.DELIVERED
    marked = sent_reply.changed_mark

    receive(locmem_channel, [delivery_report("m0:out1", DeliveryReport.READ, minute=7)])
    receive(locmem_channel, [delivery_report("m0:out1", DeliveryReport.DELIVERED, minute=8)])  # late and out of order
    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == Message.DeliveryStatus.READ
    assert sent_reply.delivery_reported_at == BASE_TIME + timedelta(minutes=7)
    assert sent_reply.changed_mark > marked  # open pages swap the badge in place


@pytest.mark.django_db
def test_a_failure_reported_after_sending_shows_the_platforms_words(locmem_channel, sent_reply):
    words = "Message undeliverable (131026): the number is not on WhatsApp"
    receive(locmem_channel, [delivery_report("m0:out1", DeliveryReport.FAILED, error=words)])
    sent_reply.refresh_from_db()
    assert (sent_reply.delivery_status, sent_reply.delivery_error) == ("failed", words)


@pytest.mark.django_db
def test_a_read_reply_is_not_failed_by_a_late_delivery_report(locmem_channel, sent_reply):
    receive(locmem_channel, [delivery_report("m0:out1", DeliveryReport.READ)])
    receive(locmem_channel, [delivery_report("m0:out1", DeliveryReport.FAILED, error="late", minute=9)])
    sent_reply.refresh_from_db()
    assert sent_reply.delivery_status == Message.DeliveryStatus.READ


@pytest.mark.django_db
def test_a_read_watermark_covers_every_reply_sent_until_then(locmem_channel, ticket, agent):
    first = reply_and_deliver(ticket, agent, "first")
    second = reply_and_deliver(ticket, agent, "second")
    Message.objects.filter(pk=second.pk).update(delivery_started_at=first.delivery_started_at + timedelta(minutes=5))

    # Read at once: the platform's time for the reply precedes the moment its answer reached the desk.
    receive(
        locmem_channel, [read_up_to(first.delivery_started_at + (first.delivered_at - first.delivery_started_at) / 2)]
    )

    statuses = dict(Message.objects.filter(pk__in=[first.pk, second.pk]).values_list("body", "delivery_status"))
    assert statuses == {"first": "read", "second": "sent"}


@pytest.mark.django_db
def test_a_report_on_a_reply_still_queued_leaves_it_to_the_send(locmem_channel, queued_reply):
    queued_reply.external_id = "m0:out9"
    queued_reply.save(update_fields=["external_id"])
    receive(locmem_channel, [delivery_report("m0:out9", DeliveryReport.READ)])
    queued_reply.refresh_from_db()
    assert queued_reply.delivery_status == Message.DeliveryStatus.QUEUED


@pytest.mark.django_db
def test_retry_after_a_reported_failure_sends_the_reply_again(locmem_channel, sent_reply):
    receive(locmem_channel, [delivery_report("m0:out1", DeliveryReport.FAILED, error="undeliverable")])
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert retry_delivery(Message.objects.get(pk=sent_reply.pk))
    sent_reply.refresh_from_db()
    assert [item["text"] for item in locmem.outbox] == ["Turn it off and on again"] * 2
    assert (sent_reply.delivery_status, sent_reply.external_id) == ("sent", "m0:out2")


@pytest.mark.django_db
def test_a_report_while_the_files_go_out_is_kept(locmem_channel, ticket, agent):
    """The text has its id once the platform took it; a quick "delivered" then must survive the files' upload."""
    reply = reply_to_ticket(ticket=ticket, author=agent, body="Here is the form", files=[upload()])
    original = locmem.LocmemAdapter.send_attachment

    def report_first(self, *, target, file):
        receive(locmem_channel, [delivery_report("m0:out1", DeliveryReport.DELIVERED)])
        return original(self, target=target, file=file)

    with patch.object(locmem.LocmemAdapter, "send_attachment", report_first):
        deliver_message(reply.pk)
    reply.refresh_from_db()
    assert reply.delivery_status == Message.DeliveryStatus.DELIVERED
    assert reply.delivered_at is not None


@pytest.mark.django_db
def test_a_report_on_an_unknown_reply_is_skipped_with_a_note(locmem_channel, ticket):
    store_envelopes(locmem_channel, [delivery_report("nobody-sent-this", DeliveryReport.DELIVERED)])
    ingest_channel(locmem_channel.pk)
    row = InboundMessage.objects.get(external_id__startswith="nobody-sent-this")
    assert (row.status, row.error) == ("skipped", "the reported reply is not stored")


@pytest.mark.django_db
def test_reactions_are_kept_per_person_and_can_be_taken_back(locmem_channel, ticket):
    receive(
        locmem_channel,
        [reaction("m0", "👍"), reaction("m0", "❤️", user="u2", minute=4), reaction("m0", "😮", minute=5)],
    )
    stored = Message.objects.get(external_id="m0")
    assert stored.reactions == {"locmem:u1": "😮", "locmem:u2": "❤️"}

    receive(locmem_channel, [reaction("m0", "", user="u2", removed=True, minute=6)])
    stored.refresh_from_db()
    assert stored.reactions == {"locmem:u1": "😮"}


@pytest.mark.django_db
def test_the_reply_target_says_when_the_person_last_wrote(locmem_channel, ticket):
    receive(locmem_channel, [message("m1", thread="m0", minute=30)])
    target = reply_target(ticket.threads.get())
    assert target.last_inbound_at == BASE_TIME + timedelta(minutes=30)
    assert target.last_inbound_at < timezone.now()


@pytest.fixture(autouse=True)
def _clean_locmem():
    yield
    locmem.reset()


def keyed_report(target, status, key, *, minute=5):
    """A report that also carries the key the reply was sent with (as WhatsApp's ``biz_opaque_callback_data``)."""
    report = delivery_report(target, status, minute=minute)
    return Envelope(**{**report.__dict__, "meta": {**report.meta, "key": key}})


@pytest.fixture
def unanswered_reply(queued_reply):
    """A reply the platform took ("m0:out1") without answering: failed with the warning, no platform id."""
    locmem.applied_failures.append(OutcomeUnknown("read timeout"))
    assert deliver_message(queued_reply.pk).status == "failed"
    queued_reply.refresh_from_db()
    assert (queued_reply.external_id, len(locmem.outbox)) == ("", 1)
    return queued_reply


@pytest.mark.django_db
def test_a_report_carrying_the_key_confirms_a_reply_whose_send_went_unanswered(locmem_channel, unanswered_reply):
    receive(locmem_channel, [keyed_report("m0:out1", DeliveryReport.SENT, unanswered_reply.delivery_key, minute=5)])
    unanswered_reply.refresh_from_db()
    assert (unanswered_reply.delivery_status, unanswered_reply.external_id) == ("sent", "m0:out1")
    assert (unanswered_reply.delivery_error, unanswered_reply.delivery_unconfirmed_since) == ("", None)

    receive(locmem_channel, [keyed_report("m0:out1", DeliveryReport.READ, unanswered_reply.delivery_key, minute=6)])
    unanswered_reply.refresh_from_db()
    assert unanswered_reply.delivery_status == Message.DeliveryStatus.READ
    assert not retry_delivery(unanswered_reply)  # nothing to retry: nobody sends it twice


@pytest.mark.django_db
def test_a_key_that_names_no_unanswered_reply_confirms_nothing(locmem_channel, unanswered_reply, ticket, agent):
    """Another reply's key (sent, with its own id), a key of the right id but another creation time (a reused id),
    and a key that is not ours are all skipped with the usual note."""
    sent_reply = reply_to_ticket(ticket=ticket, author=agent, body="Sent already")
    Message.objects.filter(pk=sent_reply.pk).update(delivery_status="sent", external_id="m0:out7")
    other_time = f"{unanswered_reply.pk}-{int(unanswered_reply.created_at.timestamp() * 1_000_000) + 1}"
    keys = [sent_reply.delivery_key, other_time, "not-ours", "9" * 40]
    store_envelopes(locmem_channel, [keyed_report(f"m0:x{n}", DeliveryReport.DELIVERED, k) for n, k in enumerate(keys)])
    ingest_channel(locmem_channel.pk)
    unanswered_reply.refresh_from_db()
    assert (unanswered_reply.delivery_status, unanswered_reply.external_id) == ("failed", "")
    skipped = InboundMessage.objects.filter(external_id__startswith="m0:x").values_list("status", "error")
    assert set(skipped) == {("skipped", "the reported reply is not stored")}
