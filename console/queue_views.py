"""The queue: the ticket list with its view tabs, filters, sorting and keyset paging, and its rows alone for
the 5-second refresh."""

from django.db.models import Q
from django.shortcuts import render

from tickets.models import SavedView, Ticket

from .access import agent_required
from .forms import ALL, DEFAULT_SORT, OPEN, SORTS, VIEWS, TicketFilterForm, filter_query, format_cursor
from .listing import PAGE_SIZE, page_of, triage_count
from .view_counts import view_counts


def _ticket_page(request):
    form = TicketFilterForm(request.GET)
    status, page = form.values()
    if status == ALL:
        tickets = Ticket.objects.all()
    elif status == OPEN:
        tickets = Ticket.objects.open()
    else:
        tickets = Ticket.objects.filter(status=status)
    tickets = form.filter(tickets, request.user).for_list()
    sort = form.sort_key()
    if sort != DEFAULT_SORT:
        # Other sorts page by ?page= (OFFSET): keyset cursors name a place in the default order only,
        # and form.cursor() returns None for them. Still no COUNT: one extra row tells if a next page exists.
        tickets = tickets.order_by(*SORTS[sort])
    cursor = form.cursor()
    if cursor is None:  # the first page, or an old ?page= link (OFFSET)
        rows, has_next = page_of(tickets, page)
        has_prev = page > 1
    elif cursor[0] == "after":  # keyset: the rows after a ticket, served by the ticket_activity index
        (at, pk), page, has_prev = cursor[1], None, True
        rows = list(tickets.filter(Q(last_activity_at__lt=at) | Q(last_activity_at=at, id__lt=pk))[: PAGE_SIZE + 1])
        rows, has_next = rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
    else:  # "before": the rows just newer than a ticket, read upwards
        (at, pk), page, has_next = cursor[1], None, True
        newer = list(
            tickets.filter(Q(last_activity_at__gt=at) | Q(last_activity_at=at, id__gt=pk)).reverse()[: PAGE_SIZE + 1]
        )
        has_prev = len(newer) > PAGE_SIZE
        rows = newer[:PAGE_SIZE][::-1]
        if not has_prev:  # back at the top: show the whole first page, not a short one
            (rows, has_next), page = page_of(tickets, 1), 1
    return {
        "form": form,
        "page": page,
        "tickets": rows,
        "has_next": has_next,
        "has_prev": has_prev,
        # Cursors only where paging is by keyset: an old ?page= link's "Newer" stays ?page=.
        "next_cursor": format_cursor(rows[-1]) if rows and sort == DEFAULT_SORT else None,
        "prev_cursor": format_cursor(rows[0]) if rows and cursor else None,
        "triage_count": triage_count(),
        "views": _views(form, request.user),
    }


def _views(form, user):
    """The view tabs with their counts: the shared ones cached across agents, "My open" counted per agent.

    The queue with no view and no status lists the open tickets: that is the "All open" tab, which links
    there (``param`` None) rather than to a second copy of it (``?view=open`` still works, for saved views).
    """
    counts = view_counts(user)
    current = form.cleaned_data.get("view") or ""
    if not current and not form.cleaned_data.get("status"):
        current = OPEN
    return [
        {
            "key": key,
            "param": None if key == OPEN else key,
            "label": label,
            "count": counts[key],
            "current": key == current,
        }
        for key, label in VIEWS
    ]


@agent_required
def ticket_list(request):
    context = _ticket_page(request)
    # The bulk bar's "assign to" agents: the assignee filter's choices, already loaded (no extra query).
    context["bulk_agents"] = [(pk, name) for pk, name in context["form"].fields["assignee"].choices if pk.isdigit()]
    context["bulk_statuses"] = Ticket.Status.choices
    context["bulk_priorities"] = Ticket.Priority.choices
    context["saved_views"] = list(SavedView.objects.filter(owner=request.user).only("id", "name", "query"))
    context["current_query"] = filter_query(request.GET)
    return render(request, "console/ticket_list.html", {**context, "section": "tickets"})


@agent_required
def ticket_rows(request):
    """The list's table rows alone, polled by the list page; the nav's triage count and the view tabs'
    counts ride along out of band."""
    context = {**_ticket_page(request), "oob_triage_count": True, "oob_view_tabs": True}
    return render(request, "console/_ticket_rows.html", context)
