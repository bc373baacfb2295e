"""Updating ticket fields, one ticket or many."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.helpers import (
    open_tickets,
)
from tickets.models import TicketEvent
from tickets.updates import TicketUpdateError, update_ticket, update_tickets


def bulk_queries(tickets, **changes):
    with CaptureQueriesContext(connection) as queries:
        update_tickets(ticket_ids=[t.pk for t in tickets], **changes)
    return len(queries)


def test_service_refuses_unknown_status_and_non_agents(agent, employee, tickets):
    """The service applies update_ticket's rules itself, whoever calls it."""
    with pytest.raises(TicketUpdateError, match="Unknown status 'bogus'"):
        update_tickets(ticket_ids=[t.pk for t in tickets], actor=agent, status="bogus")
    with pytest.raises(TicketUpdateError, match="is not an agent"):
        update_tickets(ticket_ids=[t.pk for t in tickets], actor=agent, assignee=employee)
    assert not TicketEvent.objects.exists()


def test_query_count_does_not_grow_with_the_selection(agent, colleague, locmem_channel):
    """3 tickets or 30: the same queries (lock and read, one UPDATE, one INSERT of events)."""
    few = open_tickets(locmem_channel, 3)
    few_queries = bulk_queries(few, actor=agent, assignee=colleague, status="open", priority=3, why="outage")
    many = open_tickets(locmem_channel, 30, first=100)[3:]
    assert len(many) == 30
    assert bulk_queries(many, actor=agent, assignee=colleague, status="open", priority=3, why="outage") == few_queries
    assert TicketEvent.objects.count() == 33 * 3
    # savepoint, assignee's groups, the priority matrix (tickets.itil), lock+read, the SLA policies (a priority
    # change may choose another), UPDATE, INSERT, release
    assert few_queries <= 8


def test_a_bulk_change_says_so_on_each_tickets_timeline(agent, tickets):
    update_tickets(ticket_ids=[t.pk for t in tickets], actor=agent, status="pending", priority=3, why="VPN  outage")
    events = {(e.ticket_id, e.kind, e.old_value, e.new_value, e.actor, e.reason) for e in TicketEvent.objects.all()}
    assert events == {
        (t.pk, kind, old, new, agent, "bulk update of 3 tickets: VPN outage")
        for t in tickets
        for kind, old, new in (("status", "new", "pending"), ("priority", "normal", "high"))
    }


@pytest.mark.parametrize("why", ["", "  "])
def test_a_priority_set_in_bulk_needs_a_reason_as_on_one_ticket(agent, tickets, why):
    """Impact and urgency give a priority; one set by hand replaces it, so it says why, in bulk too."""
    with pytest.raises(TicketUpdateError, match="Say why the priority changes"):
        update_tickets(ticket_ids=[t.pk for t in tickets], actor=agent, status="open", priority=1, why=why)
    assert not TicketEvent.objects.exists()


def test_an_agents_own_change_needs_no_reason(agent, ticket):
    [event] = update_ticket(ticket=ticket, actor=agent, status="resolved")
    assert (event.actor, event.reason) == (agent, "")
