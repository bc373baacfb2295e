"""A small desk with known report figures (tests/tickets/test_reports.py works them out by hand).

``NOW`` is Tuesday 10 March 2026, 12:00 UTC. Eight tickets were created in the last 7 days (4–10 March, UTC),
three before them; ``T`` names them as the tests do.
"""

from datetime import UTC, datetime, timedelta

from channels_ingest.models import Channel
from tickets.models import Category, Contact, Team, Ticket

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def at(day, hour=0, minute=0, month=3):
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def build(alex, dana):
    """The desk: ``alex`` and ``dana`` are the agents tickets are assigned to. Returns {name: ticket}."""
    slack = Channel.objects.create(kind="locmem", name="slack-it", config={"inbox": "a"})
    mail = Channel.objects.create(kind="locmem", name="mail", config={"inbox": "b"})
    network, hardware = Category.objects.create(name="Network"), Category.objects.create(name="Hardware")
    net, desk = Team.objects.create(name="Net"), Team.objects.create(name="Desk")
    requester = Contact.objects.create(display_name="Ann Employee")
    kind = Ticket.Kind
    specs = {
        # name: created, channel, kind, category, team, status, assignee, responded, response due, resolved, due
        "T1": (at(10, 10), slack, kind.INCIDENT, network, net, "open", alex, +1, at(10, 12), None, at(11, 12)),
        "T2": (at(9, 9), slack, kind.INCIDENT, network, net, "resolved", alex, +2, at(9, 10), +4, at(9, 17)),
        "T3": (at(8, 8), mail, kind.SERVICE_REQUEST, hardware, desk, "closed", dana, +3, at(8, 12), +6, at(8, 13)),
        "T4": (at(6, 6), mail, kind.INCIDENT, None, None, "pending", None, +4, None, None, None),
        "T5": (at(5, 12), slack, kind.PROBLEM, network, net, "resolved", dana, +10, at(5, 13), +20, None),
        "T6": (at(10, 11), slack, kind.INCIDENT, None, None, "open", None, None, at(10, 11, 30), None, at(12, 0)),
        "T7": (at(10, 11, 30), mail, kind.INCIDENT, None, None, "new", None, None, at(10, 13), None, None),
        "T11": (at(8, 0), slack, kind.CHANGE, hardware, desk, "open", None, None, None, None, None),
        # Created before the last 7 days:
        "T8": (at(1, 10, month=2), slack, kind.INCIDENT, None, None, "open", alex, None, None, None, None),
        "T9": (at(20, 12, month=2), slack, kind.INCIDENT, None, None, "closed", alex, +2, None, +408, None),
        "T10": (at(25, 12, month=2), mail, kind.INCIDENT, None, None, "open", dana, None, None, None, None),
    }
    tickets = {}
    for name, (created, channel, k, category, team, status, assignee, responded, r_due, resolved, due) in specs.items():
        tickets[name] = Ticket.objects.create(
            subject=name,
            requester=requester,
            channel=channel,
            kind=k,
            category=category,
            team=team,
            status=status,
            assignee=assignee,
            created_at=created,
            last_activity_at=created,
            first_responded_at=None if responded is None else created + responded * H,
            first_response_due_at=r_due,
            resolved_at=None if resolved is None else created + resolved * H,
            resolution_due_at=due,
        )
    return tickets
