"""What the ticket page shows besides the ticket itself: the timeline (by pages), the requester, the actions form.

Every part takes a fixed number of queries, however long the conversation or the requester's history.
"""

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from tickets.changes import Seen, in_timeline_order
from tickets.models import Message, Queue, Ticket, TicketEvent
from tickets.roles import ADMINS_GROUP, AGENTS_GROUP

#: Messages per timeline page: the page shows the newest ones, "Show earlier messages" loads the ones before.
TIMELINE_PAGE = 50
#: The live poll brings at most this many messages and events at once; the next poll brings the rest.
LIVE_BATCH = 50
#: The requester panel lists at most this many of their other tickets.
OTHER_TICKETS = 10


def detail_tickets():
    """Tickets with what the page's header and composer show joined in (not the channel's credentials)."""
    return Ticket.objects.select_related("requester", "assignee", "channel", "queue").defer("channel__secrets")


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


def timeline_since(ticket_id, seen: Seen):
    """The messages and events stored after ``seen``, for the open page's live poll: ``(entries, seen past them)``.

    Two indexed queries, each at most ``LIVE_BATCH`` rows (the next poll brings the rest). New entries are
    appended in the order they were stored, so a message that arrives late (sent earlier, stored now) still
    shows up at the end instead of being hidden among older ones.
    """
    messages = Message.objects.filter(ticket_id=ticket_id).since(seen.message).timeline().with_files()
    events = TicketEvent.objects.filter(ticket_id=ticket_id).since(seen.event).timeline()
    messages, events = list(messages.order_by("id")[:LIVE_BATCH]), list(events.order_by("id")[:LIVE_BATCH])
    entries = in_timeline_order(messages, events)
    return entries, seen.past(entries)


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
