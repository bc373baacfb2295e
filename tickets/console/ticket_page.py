"""What the ticket page shows besides the ticket itself: the timeline (by pages), the requester, the actions form.

Every part takes a fixed number of queries, however long the conversation or the requester's history.
"""

from dataclasses import dataclass

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q

from tickets.changes import Seen, in_timeline_order
from tickets.marks import SettledMark
from tickets.models import Message, Queue, Ticket, TicketEvent
from tickets.roles import ADMINS_GROUP, AGENTS_GROUP

#: Messages per timeline page: the page shows the newest ones, "Show earlier messages" loads the ones before.
TIMELINE_PAGE = 50
#: The live poll brings at most this many messages and events at once; the next poll brings the rest.
LIVE_BATCH = 50
#: The requester panel lists at most this many of their other tickets.
OTHER_TICKETS = 10


def detail_tickets():
    """Tickets with what the page's header and composer show joined in (not the channel's credentials), and
    ``settled_mark``: the timeline read after this query has every write marked below it (tickets.marks)."""
    return (
        Ticket.objects.select_related("requester", "assignee", "channel", "queue").defer("channel__secrets")
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
        Message.objects.filter(ticket_id=ticket_id).changed_since(seen.messages).timeline().with_files()
        .order_by("changed_mark", "id")[: LIVE_BATCH + 1]
    )
    events = list(
        TicketEvent.objects.filter(ticket_id=ticket_id).since(seen.events).timeline()
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
            shown, shown_events, settled=settled,
            messages_left=messages[LIVE_BATCH] if len(messages) > LIVE_BATCH else None,
            events_left=events[LIVE_BATCH] if len(events) > LIVE_BATCH else None,
        ),
    )


def facts_version(ticket) -> str:
    """What the actions form shows of a ticket, as a short string: the live poll re-renders the form only
    when this changed (so an agent's half-made choice there is not reset by every new message)."""
    return f"{ticket.status}.{ticket.priority}.{ticket.assignee_id or 0}.{ticket.queue_id or 0}"


def requester_panel(ticket):
    """The requester's identities on every channel and their other tickets (most recent activity first)."""
    contact = ticket.requester
    identities = list(
        contact.identities.only("id", "contact_id", "namespace", "handle", "display_name", "external_id").order_by(
            "namespace", "handle", "id"
        )
    )
    others = list(
        Ticket.objects.filter(requester_id=contact.pk)
        .exclude(pk=ticket.pk)
        .only("id", "subject", "status", "last_activity_at")
        .order_by("-last_activity_at", "-id")[:OTHER_TICKETS]
    )
    return {"requester": contact, "identities": identities, "other_tickets": others}


def agents():
    """Who may be assigned tickets: active agents and admins (superusers included)."""
    return (
        get_user_model()
        .objects.filter(Q(groups__name__in=[AGENTS_GROUP, ADMINS_GROUP]) | Q(is_superuser=True), is_active=True)
        .distinct()
        .only("id", "username", "first_name", "last_name")
        .order_by("first_name", "last_name", "username")
    )


class AgentChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.get_full_name() or obj.get_username()


class TicketUpdateForm(forms.Form):
    """The ticket page's actions form: every field is posted; the service records only what changed."""

    status = forms.ChoiceField(choices=Ticket.Status.choices)
    priority = forms.TypedChoiceField(choices=Ticket.Priority.choices, coerce=int)
    assignee = AgentChoiceField(queryset=agents(), required=False, empty_label="Nobody")
    queue = forms.ModelChoiceField(queryset=Queue.objects.order_by("name"), required=False, empty_label="No queue")

    @classmethod
    def for_ticket(cls, ticket):
        return cls(
            initial={
                "status": ticket.status,
                "priority": ticket.priority,
                "assignee": ticket.assignee_id,
                "queue": ticket.queue_id,
            },
            auto_id="ticket-%s",
        )
