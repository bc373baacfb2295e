"""Merging duplicate tickets."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import BASE_TIME, message
from tests.helpers import (
    merge,
    receive,
)
from tickets.merging import merge_tickets
from tickets.models import Message, Ticket, TicketEvent, TicketThread
from tickets.updates import TicketUpdateError


def test_merge_moves_threads_and_messages_and_closes_the_others(agent, duplicates):
    alice, bob, carol = duplicates
    outcome = merge(agent, bob, alice, carol)
    assert outcome.kept == alice  # the oldest, by default
    assert {t.pk for t in outcome.merged} == {bob.pk, carol.pk}

    assert set(Message.objects.values_list("ticket_id", flat=True)) == {alice.pk}
    threads = {t.key: t.ticket_id for t in TicketThread.objects.all()}
    assert threads == {"a1": alice.pk, "b1": alice.pk, "c1": alice.pk}
    # Each message keeps its own conversation, so a reply can go back to each requester.
    assert {m.external_id: m.thread.key for m in Message.objects.select_related("thread")} == {
        "a1": "a1",
        "a2": "a1",
        "b1": "b1",
        "c1": "c1",
    }

    alice.refresh_from_db()
    assert alice.message_count == 4
    assert alice.merged_into is None
    assert alice.status == "new"
    assert alice.last_activity_at == BASE_TIME + timedelta(minutes=5)  # the latest message
    for ticket in (bob, carol):
        ticket.refresh_from_db()
        assert (ticket.status, ticket.merged_into, ticket.message_count) == ("closed", alice, 0)
        assert ticket.resolved_at is not None
        assert {(e.kind, e.old_value, e.new_value, e.actor) for e in ticket.events.all()} == {
            ("status", "new", "closed", agent),
            ("merged", str(ticket.pk), str(alice.pk), agent),
        }
    assert {(e.kind, e.old_value, e.new_value) for e in alice.events.all()} == {
        ("merged", str(bob.pk), str(alice.pk)),
        ("merged", str(carol.pk), str(alice.pk)),
    }


def test_the_agent_picks_the_ticket_to_keep(agent, duplicates):
    alice, bob, _ = duplicates
    outcome = merge(agent, alice, bob, keep=bob)
    assert outcome.kept == bob
    bob.refresh_from_db()
    alice.refresh_from_db()
    assert bob.message_count == 3
    assert alice.merged_into == bob


def test_a_resolved_ticket_kept_reopens_when_an_open_one_merges_in(agent, duplicates):
    """An open conversation must not drop out of the queue because the ticket it joined was resolved."""
    alice, bob, _ = duplicates
    Ticket.objects.filter(pk=alice.pk).update(status="resolved", resolved_at=BASE_TIME)
    merge(agent, alice, bob)
    alice.refresh_from_db()
    assert alice.status == "open"
    assert alice.resolved_at is None
    assert alice.events.filter(kind="status", old_value="resolved", new_value="open").exists()


def test_a_merges_status_changes_say_why(agent, duplicates):
    alice, bob, _ = duplicates
    Ticket.objects.filter(pk=alice.pk).update(status="resolved", resolved_at=BASE_TIME)
    merge(agent, alice, bob)
    statuses = {
        (e.ticket_id, e.old_value, e.new_value, e.actor, e.reason) for e in TicketEvent.objects.filter(kind="status")
    }
    assert statuses == {
        (bob.pk, "new", "closed", agent, f"merged into #{alice.pk}"),
        (alice.pk, "resolved", "open", agent, f"#{bob.pk} merged in, still open"),
    }


@pytest.mark.parametrize(
    ("selection", "keep", "error"),
    [
        ("A", None, "Select at least 2 tickets to merge."),
        ("", None, "Select at least 2 tickets to merge."),
        ("AA", None, "A ticket cannot be merged into itself."),
        ("A", "A", "A ticket cannot be merged into itself."),
        ("AB", "C", "The ticket to keep, #{C}, must be one of the selected tickets."),
    ],
)
def test_merges_that_are_refused(agent, duplicates, selection, keep, error):
    by_letter = dict(zip("ABC", duplicates, strict=True))
    ids = [by_letter[letter].pk for letter in selection]
    with pytest.raises(TicketUpdateError) as refused:
        merge_tickets(ticket_ids=ids, actor=agent, keep_id=by_letter[keep].pk if keep else None)
    assert str(refused.value) == error.format(C=by_letter["C"].pk)
    assert not TicketEvent.objects.exists()
    assert not Ticket.objects.filter(merged_into__isnull=False).exists()


def test_an_already_merged_ticket_cannot_be_merged_again(agent, duplicates):
    alice, bob, carol = duplicates
    merge(agent, alice, bob)
    events = TicketEvent.objects.count()
    with pytest.raises(TicketUpdateError, match=f"#{bob.pk} was already merged into #{alice.pk}."):
        merge(agent, bob, carol)
    with pytest.raises(TicketUpdateError, match=f"#{bob.pk} was already merged into #{alice.pk}."):
        merge(agent, carol, bob, keep=bob)
    assert TicketEvent.objects.count() == events
    carol.refresh_from_db()
    assert carol.merged_into is None
    assert carol.messages.count() == 1


def test_merge_query_count_does_not_grow(agent, locmem_channel):
    """Merging 3 tickets or 30 takes the same queries."""

    def tickets(prefix, count):
        receive(locmem_channel, [message(f"{prefix}{n}", user=f"{prefix}{n}", minute=n) for n in range(count)])
        return list(Ticket.objects.filter(subject__startswith=f"text of {prefix}"))

    few, many = tickets("few", 3), tickets("many", 30)
    with CaptureQueriesContext(connection) as few_queries:
        merge(agent, *few)
    with CaptureQueriesContext(connection) as many_queries:
        merge(agent, *many)
    assert len(many_queries) == len(few_queries)
    assert Ticket.objects.get(pk=min(t.pk for t in many)).message_count == 30


def test_later_messages_on_a_moved_conversation_land_in_the_kept_ticket(agent, locmem_channel, duplicates):
    alice, bob, _ = duplicates
    merge(agent, alice, bob)
    receive(locmem_channel, [message("b2", thread="b1", user="bob", name="Bob", text="Any news?", minute=30)])
    assert Message.objects.get(external_id="b2").ticket_id == alice.pk
    alice.refresh_from_db()
    assert alice.message_count == 4
    assert alice.last_activity_at == BASE_TIME + timedelta(minutes=30)
    assert Ticket.objects.count() == 3  # no new ticket was opened for Bob
