"""What changed on a ticket since an agent saw it."""

from tests.helpers import requester_writes
from tickets.changes import Place, Seen, changes_since
from tickets.models import TicketEvent
from tickets.replies import add_note
from tickets.updates import update_ticket


def test_a_place_reads_back_as_written():
    place = Place(4711, ((301, 4712), (302, 4712), (17, 4720)))
    assert str(place) == "4711-4712.301.302-4720.17"
    assert Place.parse(str(place)) == Place(4711, ((17, 4720), (301, 4712), (302, 4712)))
    assert Place.parse("0") == Place()


def test_changes_since_lists_what_others_did(ticket, agent, other_agent, locmem_channel):
    first = ticket.messages.get()
    opened = Seen.of_page([("message", first)], settled=None)  # what a page showing only the first message has
    assert not changes_since(ticket.pk, opened, viewer=agent)
    new = requester_writes(locmem_channel, "m1", "Hello again")
    add_note(ticket=ticket, author=agent, body="mine")
    update_ticket(ticket=ticket, actor=other_agent, status="pending")
    event = TicketEvent.objects.get(kind="status")
    changes = changes_since(ticket.pk, opened, viewer=agent)
    assert [(kind, item.pk) for kind, item in changes.entries] == [("message", new.pk), ("event", event.pk)]
    assert not changes.more
    # Dana sees the agent's note as a change, not her own status change.
    assert [item.body for _, item in changes_since(ticket.pk, opened, viewer=other_agent).entries] == [
        "Hello again",
        "mine",
    ]
