"""Reading a ticket's timeline for the ticket page: by pages, and what changed since a page's place (the live
poll). Each read takes a fixed number of queries, however long the conversation.
"""

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q

from tickets.changes import MESSAGE, Seen, in_timeline_order
from tickets.marks import SettledMark
from tickets.models import Message, Ticket, TicketEvent

from .conversations import Conversation

#: Messages per timeline page: the page shows the newest ones, "Show earlier messages" loads the ones before.
TIMELINE_PAGE = 50
#: The live poll brings at most this many messages and events at once; the next poll brings the rest.
LIVE_BATCH = 50


def detail_tickets():
    """Tickets with what the page's header and composer show joined in (not the channel's credentials), and
    ``settled_mark``: the timeline read after this query has every write marked below it (tickets.marks)."""
    return (
        Ticket.objects.select_related(
            "requester", "assignee", "channel", "queue", "team", "sla_policy", "category", "service"
        )
        .defer("channel__secrets")
        .annotate(settled_mark=SettledMark())
    )


def live_tickets(seen: Seen):
    """``detail_tickets`` that also say whether the timeline has anything a page at ``seen`` lacks
    (``has_news``): the idle live poll is this one query."""
    messages = Message.objects.filter(ticket_id=OuterRef("pk")).changed_since(seen.messages)
    events = TicketEvent.objects.filter(ticket_id=OuterRef("pk")).since(seen.events)
    return detail_tickets().annotate(has_news=Exists(messages) | Exists(events))


def timeline_page(ticket_id, *, before: Message | None = None):
    """The newest ``TIMELINE_PAGE`` messages (before ``before``, by (created_at, id)) with the events of that span.

    Returns ``(entries, oldest, has_earlier)``: ``entries`` is a list of ``(MESSAGE|EVENT, object)``
    oldest first; ``oldest`` is the cursor for the next, earlier page. An event belongs to the page
    of the oldest message at or before it, so consecutive pages neither repeat nor skip one.
    """
    messages = Message.objects.filter(ticket_id=ticket_id).timeline()
    if before is not None:
        messages = messages.filter(
            Q(created_at__lt=before.created_at) | Q(created_at=before.created_at, id__lt=before.pk)
        )
    newest = list(messages.with_files().order_by("-created_at", "-id")[: TIMELINE_PAGE + 1])
    has_earlier = len(newest) > TIMELINE_PAGE
    page = newest[:TIMELINE_PAGE][::-1]

    events = TicketEvent.objects.filter(ticket_id=ticket_id).timeline()
    if has_earlier:
        events = events.filter(created_at__gte=page[0].created_at)
    if before is not None:
        events = events.filter(created_at__lt=before.created_at)
    return in_timeline_order(page, events), (page[0] if page else None), has_earlier


@dataclass(frozen=True)
class LiveNews:
    """What the live poll brings a page: ``entries`` to append (timeline order), ``revised``, messages it shows
    in an older version (edited, deleted or retried since), and ``seen``, the page's place past them."""

    entries: list
    revised: list
    seen: Seen


def timeline_since(ticket_id, seen: Seen, *, settled) -> LiveNews:
    """The messages and events stored or changed since ``seen``, for the open page's live poll.

    Two indexed queries (plus one for files), each at most ``LIVE_BATCH`` rows (the next poll brings the rest),
    read after a statement whose settled mark was ``settled``. New entries are appended in the order they were
    stored, so a message that arrives late (sent earlier, stored now) still shows up at the end instead of
    being hidden among older ones.
    """
    messages = list(
        Message.objects.filter(ticket_id=ticket_id)
        .changed_since(seen.messages)
        .timeline()
        .with_files()
        .order_by("changed_mark", "id")[: LIVE_BATCH + 1]
    )
    events = list(
        TicketEvent.objects.filter(ticket_id=ticket_id)
        .since(seen.events)
        .timeline()
        .order_by("stored_mark", "id")[: LIVE_BATCH + 1]
    )
    shown, shown_events = messages[:LIVE_BATCH], events[:LIVE_BATCH]
    held = seen.messages.ids

    def is_new(message):
        return message.stored_mark >= seen.messages.settled and message.pk not in held

    return LiveNews(
        entries=in_timeline_order([m for m in shown if is_new(m)], shown_events),
        revised=[m for m in shown if not is_new(m)],
        seen=seen.past(
            shown,
            shown_events,
            settled=settled,
            messages_left=messages[LIVE_BATCH] if len(messages) > LIVE_BATCH else None,
            events_left=events[LIVE_BATCH] if len(events) > LIVE_BATCH else None,
        ),
    )


def label_conversations(entries, choices: list[Conversation]):
    """Mark each message in ``entries`` with its conversation's label (``conversation_label``) when the ticket
    has several conversations, so the timeline tells them apart. The labels come from the conversations the
    page has already read: no query per message."""
    if len(choices) < 2:
        return
    labels = {c.thread.pk: c.label for c in choices}
    for kind, item in entries:
        if kind == MESSAGE:
            item.conversation_label = labels.get(item.thread_id, "")
