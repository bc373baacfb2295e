"""What changed on a ticket after an agent last looked at it: the console's live timeline and collision check.

A place in a ticket's history (``Seen``) is kept per table as a ``Place``: a settled write mark below which
the agent has everything, and the versions it has of the rows marked at or above it (tickets.marks). Rows
become visible in commit order, not id order, so "what is new" is the rows marked at or above the settled
mark that the place does not hold: one indexed range query per table, however long the ticket.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Q

from .models import Message, TicketEvent

#: A collision warning lists at most this many messages and this many events ("and more" beyond).
CHANGES_LISTED = 20
#: The event kinds that change what a reply should say: who owns the ticket and where it stands.
COLLIDING_EVENTS = (TicketEvent.Kind.STATUS, TicketEvent.Kind.ASSIGNEE)
MESSAGE, EVENT = "message", "event"
#: A place holds at most this many row versions above its settled mark (normally a handful: the rows of
#: transactions that were still running when the page last read).
MAX_HELD = 1000
MAX_DIGITS = 18  # a bigint holds any 18-digit number


@dataclass(frozen=True)
class Place:
    """How far a page has seen one table of a ticket: every row marked below ``settled``, and ``held``, the
    versions ``(id, mark)`` it has of rows marked at or above it.

    As text (a URL or form value): the settled mark, then per mark ``-<mark>.<id>.<id>…``.
    """

    settled: int = 0
    held: tuple[tuple[int, int], ...] = ()

    @classmethod
    def parse(cls, text) -> Place | None:
        """From a query string or form; None unless well formed."""
        if not isinstance(text, str) or not text.isascii():
            return None
        settled, *groups = text.split("-")
        numbers = [settled] + [number for group in groups for number in group.split(".")]
        if len(numbers) > MAX_HELD + len(groups) + 1 or not all(n.isdigit() and len(n) <= MAX_DIGITS for n in numbers):
            return None
        held = []
        for group in groups:
            mark, *ids = (int(n) for n in group.split("."))
            if not ids:
                return None
            held += [(pk, mark) for pk in ids]
        return cls(int(settled), tuple(sorted(held)))

    def __str__(self):
        by_mark = defaultdict(list)
        for pk, mark in self.held:
            by_mark[mark].append(str(pk))
        return str(self.settled) + "".join(f"-{mark}.{'.'.join(ids)}" for mark, ids in sorted(by_mark.items()))

    @property
    def ids(self):
        return {pk for pk, _ in self.held}

    def held_versions(self, mark_field) -> Q:
        """The rows (in the versions) this place holds above its settled mark; ``Q()`` for none."""
        by_mark = defaultdict(list)
        for pk, mark in self.held:
            by_mark[mark].append(pk)
        condition = Q()
        for mark, ids in by_mark.items():
            condition |= Q(**{mark_field: mark, "pk__in": ids})
        return condition

    def past(self, rows, *, mark_field, settled, left=None) -> Place:
        """This place once the page has ``rows`` (read at or above it, oldest mark first).

        ``settled`` is the settled mark of a statement that ran before the read (None where the database
        cannot tell: then the newest mark read, as SQLite admits no write below it). ``left`` is the first
        row read but not shown (a full batch): the place must not pass it.
        """
        marks = [getattr(row, mark_field) for row in rows]
        bound = settled if settled is not None else max(marks, default=self.settled)
        if left is not None:
            bound = min(bound, getattr(left, mark_field))
        bound = max(bound, self.settled)  # what was settled stays settled
        versions = dict(self.held)
        for row, mark in zip(rows, marks, strict=True):
            versions[row.pk] = max(mark, versions.get(row.pk, mark))
        return Place(bound, tuple(sorted((pk, mark) for pk, mark in versions.items() if mark >= bound)))


@dataclass(frozen=True)
class Seen:
    """What a page has of a ticket's messages (marked by their last change) and events (by their insert)."""

    messages: Place = field(default_factory=Place)
    events: Place = field(default_factory=Place)

    @classmethod
    def parse(cls, messages, events) -> Seen | None:
        """From a form or query string; None unless both are well formed."""
        places = Place.parse(messages), Place.parse(events)
        return None if None in places else cls(*places)

    @classmethod
    def of_page(cls, entries, *, settled) -> Seen:
        """What a page showing the ``(MESSAGE|EVENT, object)`` ``entries`` has, read after ``settled``."""
        return Seen().past(
            [item for kind, item in entries if kind == MESSAGE],
            [item for kind, item in entries if kind == EVENT],
            settled=settled,
        )

    def past(self, messages, events, *, settled, messages_left=None, events_left=None) -> Seen:
        return Seen(
            self.messages.past(messages, mark_field="changed_mark", settled=settled, left=messages_left),
            self.events.past(events, mark_field="stored_mark", settled=settled, left=events_left),
        )


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
    A message stored before ``seen`` but committed after it counts as new (tickets.marks).
    """
    messages = list(
        Message.objects.filter(ticket_id=ticket_id)
        .stored_since(seen.messages)
        .exclude(author_user=viewer)
        .timeline()
        .order_by("stored_mark", "id")[: CHANGES_LISTED + 1]
    )
    events = list(
        TicketEvent.objects.filter(ticket_id=ticket_id, kind__in=COLLIDING_EVENTS)
        .since(seen.events)
        .exclude(actor=viewer)
        .timeline()
        .order_by("stored_mark", "id")[: CHANGES_LISTED + 1]
    )
    more = len(messages) > CHANGES_LISTED or len(events) > CHANGES_LISTED
    return Changes(in_timeline_order(messages[:CHANGES_LISTED], events[:CHANGES_LISTED]), more)
