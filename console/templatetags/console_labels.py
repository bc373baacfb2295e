"""How the console shows a channel and a moment, from one source for every page: the queue's rows (rendered in
Python, ``console_rows``) and the templates (``{% channel_label channel %}``, ``{% ago at %}``).

Every value goes through ``format_html``, which escapes it.
"""

from datetime import UTC

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.text import capfirst

register = template.Library()

_NO_CHANNEL = mark_safe('<span class="muted">none</span>')
_NO_TIME = mark_safe('<time datetime="">never</time>')

#: (seconds, unit) from the largest: the queue shows one compact unit ("5 min ago"), the exact time on hover.
_UNITS = ((365 * 86400, "yr"), (30 * 86400, "mo"), (7 * 86400, "wk"), (86400, "d"), (3600, "h"), (60, "min"))


def compact_since(at, now) -> str:
    """How long ago, in the largest whole unit: "just now", "5 min ago", "3 h ago", "2 d ago"...

    The queue renders two of these per row on every 5-second poll; Django's ``timesince`` (translated,
    two units) and ``date_format`` cost about half of the rows' time, so the list uses this instead.
    """
    seconds = (now - at).total_seconds()
    for size, unit in _UNITS:
        if seconds >= size:
            return f"{int(seconds // size)}\u00a0{unit} ago"
    return "just now"


@register.filter
def span(duration) -> str:
    """A length of time in its largest whole unit ("5 min", "3 h"), or "under a minute"."""
    seconds = duration.total_seconds()
    for size, unit in _UNITS:
        if seconds >= size:
            return f"{int(seconds // size)}\u00a0{unit}"
    return "under a minute"


@register.simple_tag
def ago(at, now=None):
    """A <time> saying how long ago, with the exact time (UTC, ISO 8601) as its machine value and title."""
    if at is None:
        return _NO_TIME
    exact = at.astimezone(UTC)
    title = f"{exact:%Y-%m-%d %H:%M} UTC"
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', exact.isoformat(), title, compact_since(at, now or timezone.now())
    )


@register.simple_tag
def channel_label(channel):
    """A channel as the console names it: its kind (styled by ``data-kind``) and its name, or "none"."""
    if channel is None:
        return _NO_CHANNEL
    return format_html(
        '<span class="channel-kind" data-kind="{}">{}</span> {}', channel.kind, capfirst(channel.kind), channel.name
    )
