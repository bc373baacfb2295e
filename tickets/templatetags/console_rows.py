"""The ticket list's rows, rendered in Python: the per-row template loop cost most of the queue page's time.

Every value goes through ``format_html`` (which escapes it); nothing from a ticket is marked safe.
The markup matches ``_ago.html`` and ``_channel.html``, which the rest of the console still uses.
The first cell is the row's bulk-action checkbox (``ids``, posted by the form around the table). The
second carries ``data-ticket-id`` for keyboard navigation (``static/console.js``); the row itself stays
a bare ``<tr>``.
"""

from django import template
from django.urls import reverse
from django.utils.formats import date_format, localize
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.utils.timesince import timesince
from django.utils.timezone import template_localtime

register = template.Library()

_ROW = (
    '<tr>\n'
    '    <td data-label="Select" class="select"><input type="checkbox" name="ids" value="{}" id="select-{}">'
    '<label for="select-{}" class="visually-hidden">Select ticket #{}</label></td>\n'
    '    <td data-label="#" data-ticket-id="{}"><a href="{}">#{}</a></td>\n'
    '    <td data-label="Channel">{}</td>\n'
    '    <td data-label="Requester" class="requester"><bdi>{}</bdi></td>\n'
    '    <td data-label="Subject" class="subject"><a href="{}" dir="auto">{}</a></td>\n'
    '    <td data-label="Status"><span class="badge status-{}">{}</span></td>\n'
    '    <td data-label="Priority"><span class="badge priority-{}">{}</span></td>\n'
    '    <td data-label="Age">{}</td>\n'
    '    <td data-label="Last activity">{}</td>\n'
    '  </tr>\n'
)
_EMPTY = mark_safe('<tr><td colspan="9" class="empty">No tickets to show.</td></tr>\n')
_NO_CHANNEL = mark_safe('<span class="muted">none</span>')


def ago(at):
    """``_ago.html``: a <time> saying how long ago, with the exact time in its title."""
    if at is None:
        return format_html('<time datetime="" title="None"> ago</time>')
    local = template_localtime(at)
    try:
        since = timesince(at)
    except (ValueError, TypeError):
        since = ""
    return format_html('<time datetime="{}" title="{}">{} ago</time>', date_format(local, "c"), localize(local), since)


def channel_cell(channel):
    """``_channel.html``: the channel's kind and name, or "none"."""
    if channel is None:
        return _NO_CHANNEL
    return format_html('<span class="channel-kind" data-kind="{}">{}</span> {}', channel.kind, capfirst(channel.kind), channel.name)


@register.simple_tag
def ticket_rows(tickets):
    """The list's <tr> rows (one "No tickets" row when there are none)."""
    if not tickets:
        return _EMPTY
    # One reverse() for the page: the detail URL differs only by its pk.
    marker = 987654321
    url_pattern = reverse("console:ticket-detail", args=[marker])
    before, _, after = url_pattern.partition(str(marker))

    def cells(ticket):
        url = f"{before}{ticket.pk}{after}"
        return (
            *[ticket.pk] * 4,  # the checkbox: its value, its id, its label's "for" and text
            ticket.pk,  # data-ticket-id: console.js keeps the keyboard selection across refreshes by it
            url,
            ticket.pk,
            channel_cell(ticket.channel),
            ticket.requester.display_name,
            url,
            ticket.subject,
            ticket.status,
            ticket.get_status_display(),
            ticket.priority,
            ticket.get_priority_display(),
            ago(ticket.created_at),
            ago(ticket.last_activity_at),
        )

    return format_html_join("", _ROW, (cells(ticket) for ticket in tickets))
