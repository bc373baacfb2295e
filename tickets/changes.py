"""What changed on a ticket after an agent last looked at it: the console's live timeline and collision check.

A place in a ticket's history is the newest message id and event id an agent has seen (``Seen``). Ids grow
with every insert, so "what is new" is one indexed range query per table, however long the ticket.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .models import Message, TicketEvent

#: A collision warning lists at most this many messages and this many events ("and more" beyond).
CHANGES_LISTED = 20
#: The event kinds that change what a reply should say: who owns the ticket and where it stands.
COLLIDING_EVENTS = (TicketEvent.Kind.STATUS, TicketEvent.Kind.ASSIGNEE)
MESSAGE, EVENT = "message", "event"


@dataclass(frozen=True)
class Seen:
    """The newest message and event (by id) an agent has seen on a ticket; 0 when none."""

    message: int = 0
    event: int = 0

    @classmethod
    def parse(cls, message, event) -> Seen | None:
        """From a form or query string; None unless both are non-negative ids."""
        values = []
        for value in (message, event):
            if not isinstance(value, str) or not (value.isascii() and value.isdigit()) or len(value) > 18:
                return None
            values.append(int(value))
        return cls(*values)

    def past(self, entries) -> Seen:
        """This place, moved past the (MESSAGE|EVENT, object) ``entries``."""
        messages = [item.pk for kind, item in entries if kind == MESSAGE]
        events = [item.pk for kind, item in entries if kind == EVENT]
        return Seen(max([self.message, *messages]), max([self.event, *events]))


def in_timeline_order(messages, events):
    """``(MESSAGE|EVENT, object)`` entries oldest first; a change sorts after a message of the same instant
    (it follows what prompted it)."""
    entries = [(MESSAGE, m) for m in messages] + [(EVENT, e) for e in events]
    entries.sort(key=lambda entry: (entry[1].created_at, entry[0] == EVENT, entry[1].pk))
    return entries


@dataclass(frozen=True)
class Changes:
    """What others did on a ticket since an agent's ``Seen``, in timeline order (at most ``CHANGES_LISTED`` of
    each table; ``more`` says there were more)."""

    entries: list = field(default_factory=list)
    more: bool = False

    def __bool__(self):
        return bool(self.entries)


def changes_since(ticket_id, seen: Seen, *, viewer) -> Changes:
    """What an agent about to write on this ticket should know first, since ``seen``: the requester's new
    messages, other agents' replies and notes, and status and assignee changes by others.

    Two indexed queries. The viewer's own messages and changes are left out: they already know them.
    """
    messages = list(
        Message.objects.filter(ticket_id=ticket_id).since(seen.message).exclude(author_user=viewer)
        .timeline().order_by("id")[: CHANGES_LISTED + 1]
    )
    events = list(
        TicketEvent.objects.filter(ticket_id=ticket_id, kind__in=COLLIDING_EVENTS).since(seen.event)
        .exclude(actor=viewer).timeline().order_by("id")[: CHANGES_LISTED + 1]
    )
    more = len(messages) > CHANGES_LISTED or len(events) > CHANGES_LISTED
    return Changes(in_timeline_order(messages[:CHANGES_LISTED], events[:CHANGES_LISTED]), more)
