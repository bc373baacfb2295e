"""What the ticket page shows besides the ticket itself: the timeline (by pages), the requester, the actions form.

Every part takes a fixed number of queries, however long the conversation or the requester's history.
"""

from dataclasses import dataclass, field

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q

from tickets.changes import MESSAGE, Seen, in_timeline_order
from tickets.conversations import Conversation
from tickets.marks import SettledMark
from tickets.models import Contact, Identity, Message, Queue, Ticket, TicketEvent
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


@dataclass
class Person:
    """Someone who wrote in the ticket's conversations, with their accounts on every channel."""

    contact: Contact
    is_requester: bool = False
    identities: list[Identity] = field(default_factory=list)


def requester_panel(ticket):
    """Everyone who wrote in the ticket's conversations (several after a merge), the requester first, each with
    their identities on every channel; and their other tickets, most recent activity first. Two queries,
    however many people and messages."""
    requester = ticket.requester
    wrote = Identity.objects.filter(
        message__ticket_id=ticket.pk, message__direction=Message.Direction.INBOUND
    ).values("contact_id")
    # A UNION, not "requester OR IN (...)": PostgreSQL answers the OR with a scan of every identity.
    people_ids = Contact.objects.filter(pk=requester.pk).values("pk").union(wrote)
    identities = (
        Identity.objects.filter(contact_id__in=people_ids)
        .select_related("contact")
        .only(
            "id", "contact_id", "namespace", "handle", "display_name", "external_id",
            "contact__id", "contact__display_name", "contact__email",
        )
        .order_by("namespace", "handle", "id")
    )
    people = {requester.pk: Person(requester, is_requester=True)}
    for identity in identities:
        people.setdefault(identity.contact_id, Person(identity.contact)).identities.append(identity)
    others = list(
        Ticket.objects.filter(requester_id__in=list(people))
        .exclude(pk=ticket.pk)
        .select_related("requester")
        .only("id", "subject", "status", "last_activity_at", "requester__id", "requester__display_name")
        .order_by("-last_activity_at", "-id")[:OTHER_TICKETS]
    )
    ordered = sorted(people.values(), key=lambda p: (not p.is_requester, p.contact.display_name.casefold(), p.contact.pk))
    return {"people": ordered, "several_people": len(ordered) > 1, "other_tickets": others}


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
