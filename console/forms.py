"""The console's forms: the queue's filters and paging, saved views, triage selections, the ticket page's actions."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import QueryDict
from django.utils import timezone

from channels_ingest.models import Channel
from tickets.models import Category, Queue, SavedView, Ticket
from tickets.roles import ADMINS_GROUP, AGENTS_GROUP

OPEN = "open"
ALL = "all"

#: The tabs above the queue: (key, label). Their counts come from ``console.view_counts``.
VIEWS = [
    ("mine", "My open"),
    ("unassigned", "Unassigned"),
    ("open", "All open"),
    ("pending", "Pending"),
    ("resolved", "Resolved"),
    ("breaching", "Breaching soon"),
    ("breached", "Breached"),
]

#: ?age=: created within a window, or (``gt7d``) longer ago than 7 days.
AGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
OLDER_THAN = {"gt7d": timedelta(days=7)}

#: ?sort=: each ends with the id, so ties (equal times or priorities) keep one stable order.
SORTS = {
    "activity": ("-last_activity_at", "-id"),
    "created": ("-created_at", "-id"),
    "priority": ("-priority", "-last_activity_at", "-id"),
    # Soonest resolution due first, tickets without an SLA last (the ticket_resolution_due index).
    "due": ("resolution_due_at", "id"),
}
DEFAULT_SORT = "activity"


def read_once(load):
    """``load`` as a choices callable that queries at most once."""
    rows = None

    def choices():
        nonlocal rows
        if rows is None:
            rows = load()
        return rows

    return choices


def _channel_choices():
    return [("", "Any channel"), *Channel.objects.order_by("name").values_list("id", "name")]


def _queue_choices():
    return [("", "Any queue"), *Queue.objects.order_by("name").values_list("id", "name")]


def _category_choices():
    return [("", "Any category"), *Category.objects.order_by("name").values_list("id", "name")]


def _assignee_choices():
    usernames = agents().order_by("username").values_list("id", "username")
    return [("", "Anyone"), ("me", "Me"), ("none", "Unassigned"), *((str(pk), username) for pk, username in usernames)]


class TicketFilterForm(forms.Form):
    """The ticket list's query string."""

    # "open" means every ticket that is not resolved or closed (TicketQuerySet.open()), so the
    # status that is also called "open" is not offered on its own.
    status = forms.ChoiceField(
        choices=[
            # Blank: the statuses of the tab chosen above (the queue with no tab is "All open").
            ("", "As the tab shows"),
            (OPEN, "Open (new, open or pending)"),
            (ALL, "All"),
            *((value, label) for value, label in Ticket.Status.choices if value != Ticket.Status.OPEN),
        ],
        required=False,
    )
    view = forms.ChoiceField(choices=VIEWS, required=False, widget=forms.HiddenInput)
    q = forms.CharField(max_length=200, required=False, strip=True, label="Search")
    channel = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    priority = forms.TypedChoiceField(
        choices=[("", "Any priority"), *Ticket.Priority.choices], coerce=int, required=False, empty_value=None
    )
    assignee = forms.ChoiceField(required=False)
    queue = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    kind = forms.ChoiceField(label="Type", choices=[("", "Any type"), *Ticket.Kind.choices], required=False)
    category = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    age = forms.ChoiceField(
        choices=[
            ("", "Any age"),
            ("1h", "Created in the last hour"),
            ("24h", "Created in the last 24 hours"),
            ("7d", "Created in the last 7 days"),
            ("30d", "Created in the last 30 days"),
            ("gt7d", "Older than 7 days"),
        ],
        required=False,
    )
    sort = forms.ChoiceField(
        choices=[("activity", "Last activity"), ("created", "Created"), ("priority", "Priority"), ("due", "Due")],
        required=False,
    )
    # Capped so that no ?page= can overflow the database's OFFSET. Kept for old links; the pager
    # itself uses the keyset cursors below, which cost the same on every page.
    page = forms.IntegerField(min_value=1, max_value=100_000, required=False)
    #: Tickets older than this one, in list order: ``<last activity, ISO 8601>,<id>``.
    after = forms.CharField(max_length=64, required=False)
    #: Tickets newer than this one, in list order (the "Newer" link).
    before = forms.CharField(max_length=64, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Choices from the database, as callables: read (one small query each) only when the form is
        # rendered or the field was given, so the 5-second poll of the rows pays nothing for them.
        # Rendering a select reads its choices twice, hence read_once.
        self.fields["channel"].choices = read_once(_channel_choices)
        self.fields["queue"].choices = read_once(_queue_choices)
        self.fields["assignee"].choices = read_once(_assignee_choices)
        self.fields["category"].choices = read_once(_category_choices)

    def clean_after(self):
        return parse_cursor(self.cleaned_data.get("after"))

    def clean_before(self):
        return parse_cursor(self.cleaned_data.get("before"))

    def values(self):
        """(status, page number); a missing or invalid value falls back to its default.

        With a view tab chosen and no explicit status, the status defaults to "all": the view decides.
        """
        self.is_valid()  # cleaned_data then holds the fields that are valid
        default = ALL if self.cleaned_data.get("view") else OPEN
        return self.cleaned_data.get("status") or default, self.cleaned_data.get("page") or 1

    def sort_key(self):
        return self.cleaned_data.get("sort") or DEFAULT_SORT

    def filter(self, tickets, user):
        """Narrow ``tickets`` by the view and every filter given; invalid values are ignored."""
        self.is_valid()
        data = self.cleaned_data
        is_open = ~Q(status__in=Ticket.CLOSED_STATUSES)
        view = data.get("view")
        if view == "mine":
            tickets = tickets.filter(is_open, assignee=user)
        elif view == "unassigned":
            tickets = tickets.filter(is_open, assignee=None)
        elif view == "open":
            tickets = tickets.filter(is_open)
        elif view == "pending":
            tickets = tickets.filter(status=Ticket.Status.PENDING)
        elif view == "resolved":
            tickets = tickets.filter(status=Ticket.Status.RESOLVED)
        elif view == "breaching":
            tickets = tickets.breaching_soon(timezone.now())
        elif view == "breached":
            tickets = tickets.sla_breached(timezone.now())
        if data.get("channel") is not None:
            tickets = tickets.filter(channel_id=data["channel"])
        if data.get("priority") is not None:
            tickets = tickets.filter(priority=data["priority"])
        if data.get("queue") is not None:
            tickets = tickets.filter(queue_id=data["queue"])
        if data.get("kind"):
            tickets = tickets.filter(kind=data["kind"])
        if data.get("category") is not None:
            tickets = tickets.filter(category_id=data["category"])
        assignee = data.get("assignee")
        if assignee == "me":
            tickets = tickets.filter(assignee=user)
        elif assignee == "none":
            tickets = tickets.filter(assignee=None)
        elif assignee:
            tickets = tickets.filter(assignee_id=int(assignee))
        age = data.get("age")
        if age in AGES:
            tickets = tickets.filter(created_at__gte=timezone.now() - AGES[age])
        elif age in OLDER_THAN:
            tickets = tickets.filter(created_at__lt=timezone.now() - OLDER_THAN[age])
        if data.get("q"):
            tickets = tickets.search(data["q"])
        return tickets

    def cursor(self):
        """("after" | "before", (last activity, id)) from the query string, or None for offset paging.

        Keyset cursors name a place in the default order (last activity, id) only; other sorts page by
        ?page= (OFFSET), so a cursor is ignored for them.
        """
        self.is_valid()
        if self.sort_key() != DEFAULT_SORT:
            return None
        for direction in ("after", "before"):
            if self.cleaned_data.get(direction):
                return direction, self.cleaned_data[direction]
        return None


def format_cursor(ticket) -> str:
    """A ticket's place in the list, for ``?after=`` / ``?before=``: UTC to the microsecond, then its id."""
    at = ticket.last_activity_at.astimezone(UTC)
    return f"{at:%Y-%m-%dT%H:%M:%S.%f}Z,{ticket.pk}"


def parse_cursor(value):
    """The (aware datetime, id) a cursor names; None when missing; a ValidationError when malformed."""
    if not value:
        return None
    at, sep, pk = value.rpartition(",")
    try:
        if not sep or not (pk.isascii() and pk.isdigit()) or len(pk) > 18:
            raise ValueError
        moment = datetime.fromisoformat(at.replace(" ", "+"))  # a "+" in an offset may arrive as a space
        if moment.tzinfo is None:
            raise ValueError
        return moment.astimezone(UTC), int(pk)
    except (ValueError, OverflowError):
        raise forms.ValidationError("Not a list position.") from None


#: The list's filters, in the order a saved view keeps them (paging is not kept).
FILTER_KEYS = ("view", "status", "q", "channel", "priority", "assignee", "queue", "kind", "category", "age", "sort")


def filter_query(data) -> str:
    """The filters in ``data`` (a QueryDict) as a query string: fixed order, no paging, no blanks."""
    return urlencode([(key, data[key]) for key in FILTER_KEYS if data.get(key)])


class SavedViewForm(forms.Form):
    name = forms.CharField(max_length=60, strip=True, label="Save these filters as")
    query = forms.CharField(max_length=500, required=False, widget=forms.HiddenInput)

    def clean_query(self):
        query = filter_query(QueryDict(self.cleaned_data["query"]))
        if not query:
            raise forms.ValidationError(
                "Choose some filters, a view or a search first: the default queue needs no saving."
            )
        if len(query) > SavedView._meta.get_field("query").max_length:
            raise forms.ValidationError("These filters are too long to save.")
        return query


class PageForm(forms.Form):
    """A list's ?page=; a missing or invalid value means the first page."""

    page = forms.IntegerField(min_value=1, max_value=100_000, required=False)

    def page_number(self):
        self.is_valid()
        return self.cleaned_data.get("page") or 1


MAX_SELECTED = 500


def selected_ids(data) -> list[int]:
    """The triage rows an action applies to: the row whose own button was pressed (``id``),
    otherwise every ticked checkbox (``ids``). Values that are not ids are ignored."""

    def ids(values):
        return sorted({int(v) for v in values if len(v) <= 18 and v.isascii() and v.isdigit() and int(v) > 0})

    return ids([data.get("id", "")]) or ids(data.getlist("ids")[:MAX_SELECTED])


# The ticket page's actions -------------------------------------------------------


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
    #: A priority other than the ticket's overrides what impact x urgency gave: only with a reason (``tickets.itil``).
    priority_reason = forms.CharField(label="Why this priority (to change it)", max_length=200, required=False)

    def changes(self) -> dict:
        """The arguments for ``update_ticket`` (and ``priority_reason`` for ``tickets.itil.override_priority``)."""
        return dict(self.cleaned_data)

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


class TicketUndoForm(TicketUpdateForm):
    """The Undo offered after a change (console.update_feedback): it posts only the fields that change set,
    so it leaves alone whatever else was changed meanwhile. An absent field is left as it is."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in list(self.fields):
            if name not in self.data:
                del self.fields[name]

    def clean(self):
        if not self.fields:
            raise forms.ValidationError("There was nothing to undo.")
        return super().clean()

    def changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.fields}


def facts_version(ticket) -> str:
    """What the actions form shows of a ticket, as a short string: the live poll re-renders the form only
    when this changed (so an agent's half-made choice there is not reset by every new message)."""
    return f"{ticket.status}.{ticket.priority}.{ticket.assignee_id or 0}.{ticket.queue_id or 0}.{ticket.kind}"
