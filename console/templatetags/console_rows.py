"""The ticket list's rows, rendered in Python: the per-row template loop cost most of the queue page's time.

Every value goes through ``format_html`` (which escapes it); nothing from a ticket is marked safe.
The channel cell and the times come from ``console_labels``, as everywhere in the console.
The first cell is the row's bulk-action checkbox (``ids``, posted by the form around the table). The
second carries ``data-ticket-id`` for keyboard navigation (``static/console.js``); the row itself stays
a bare ``<tr>``.
"""

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import capfirst

from tickets.models import Ticket
from tickets.sla import due_state

from .console_labels import ago, channel_label, zoned

register = template.Library()

_ROW = (
    "<tr>\n"
    '    <td data-label="Select" class="select"><input type="checkbox" name="ids" value="{}" id="select-{}">'
    '<label for="select-{}" class="visually-hidden">Select ticket #{}</label></td>\n'
    '    <td data-label="#" data-ticket-id="{}"><a href="{}">#{}</a></td>\n'
    '    <td data-label="Channel" class="channel">{}</td>\n'
    '    <td data-label="Requester" class="requester"><bdi>{}</bdi></td>\n'
    '    <td data-label="Subject" class="subject"><a href="{}" dir="auto">{}</a></td>\n'
    '    <td data-label="Status"><span class="badge status-{}">{}</span></td>\n'
    '    <td data-label="Priority"><span class="badge priority-{}">{}</span></td>\n'
    '    <td data-label="Due" class="due">{}</td>\n'
    '    <td data-label="Type" class="kind">{}</td>\n'
    '    <td data-label="Category" class="category"><bdi>{}</bdi></td>\n'
    '    <td data-label="Age" class="age">{}</td>\n'
    '    <td data-label="Last activity" class="last-activity">{}</td>\n'
    "  </tr>\n"
)
_EMPTY = mark_safe('<tr><td colspan="12" class="empty">No tickets to show.</td></tr>\n')


@register.simple_tag
def due_cell(ticket, now=None):
    """The SLA's next due time, said in words and marked by state (the colour repeats the words, never
    replaces them): "due in 25 min", "breached 5 min ago", "paused"; a dash without an SLA."""
    state, label, due = due_state(ticket, now or timezone.now())
    if due is None:
        return mark_safe('<span class="due-none">—</span>')
    return format_html(
        '<time class="due due-{}" datetime="{}" title="{}">{}</time>', state, due.isoformat(), zoned(due), label
    )


@register.simple_tag
def ticket_rows(tickets):
    """The list's <tr> rows (one "No tickets" row when there are none)."""
    if not tickets:
        return _EMPTY
    # One reverse() for the page: the detail URL differs only by its pk.
    marker = 987654321
    url_pattern = reverse("console:ticket-detail", args=[marker])
    before, _, after = url_pattern.partition(str(marker))
    now = timezone.now()
    # Labels translated once per page, not twice per row.
    statuses = {value: str(label) for value, label in Ticket.Status.choices}
    priorities = {value: str(label) for value, label in Ticket.Priority.choices}
    kinds = {value: capfirst(str(label)) for value, label in Ticket.Kind.choices}
    channels = {}

    def cells(ticket):
        url = f"{before}{ticket.pk}{after}"
        return (
            *[ticket.pk] * 4,  # the checkbox: its value, its id, its label's "for" and text
            ticket.pk,  # data-ticket-id: console.js keeps the keyboard selection across refreshes by it
            url,
            ticket.pk,
            channels.get(ticket.channel_id) or channels.setdefault(ticket.channel_id, channel_label(ticket.channel)),
            ticket.requester.display_name,
            url,
            ticket.subject,
            ticket.status,
            statuses.get(ticket.status, ticket.status),
            ticket.priority,
            priorities.get(ticket.priority, ticket.priority),
            due_cell(ticket, now),
            kinds.get(ticket.kind, ticket.kind),
            ticket.category.name if ticket.category_id else "—",
            ago(ticket.created_at, now),
            ago(ticket.last_activity_at, now),
        )

    return format_html_join("", _ROW, (cells(ticket) for ticket in tickets))
