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

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
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


def zone_name(local) -> str:
    """The zone of a local time as people say it: its abbreviation ("CET", "EDT", "UTC"), or the zone's name
    ("Asia/Dubai") where the abbreviation is only an offset ("+04")."""
    abbreviation = local.tzname() or ""
    if abbreviation[:1].isalpha():
        return abbreviation
    return getattr(local.tzinfo, "key", None) or abbreviation


def zoned(at) -> str:
    """A moment in the current time zone (the user's: ``console.time_zones``), named: "4 Dec 2026, 14:03 CET"."""
    local = timezone.localtime(at)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}, {local:%H:%M} {zone_name(local)}"


@register.simple_tag
def zoned_time(at):
    """``zoned`` in a <time> element (machine value in UTC)."""
    return format_html('<time datetime="{}">{}</time>', at.astimezone(UTC).isoformat(), zoned(at))


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
    """A <time> saying how long ago, with the exact time as its machine value (UTC, ISO 8601) and, in the user's
    time zone, as its title."""
    if at is None:
        return _NO_TIME
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        at.astimezone(UTC).isoformat(),
        zoned(at),
        compact_since(at, now or timezone.now()),
    )


@register.simple_tag
def channel_label(channel):
    """A channel as the console names it: its kind (styled by ``data-kind``) and its name, or "none"."""
    if channel is None:
        return _NO_CHANNEL
    return format_html(
        '<span class="channel-kind" data-kind="{}">{}</span> {}', channel.kind, capfirst(channel.kind), channel.name
    )


#: What people call each platform; an identity's namespace starts with its channel kind ("slack:T0…", "x").
PLATFORM_NAMES = {
    "email": "Email",
    "facebook": "Facebook",
    "instagram": "Instagram",
    "slack": "Slack",
    "whatsapp": "WhatsApp",
    "x": "X",
}
#: Platforms whose handle is written with an @ (X and Meta's already carry theirs).
_AT_HANDLES = frozenset({"slack"})


def platform_name(namespace: str) -> str:
    """The platform an identity's namespace belongs to, as people call it ("Slack", not "slack:T0HOLDOUT")."""
    kind = namespace.partition(":")[0]
    return PLATFORM_NAMES.get(kind, capfirst(kind))


def recognisable_handle(identity) -> str:
    """What a person would know the account by: @name on Slack, X, Instagram; the phone number on WhatsApp;
    the address for email; else the display name; the platform's own id only when nothing else is known."""
    kind = identity.namespace.partition(":")[0]
    handle = identity.handle
    if handle and kind in _AT_HANDLES and not handle.startswith("@"):
        handle = f"@{handle}"
    if kind == "email":
        handle = handle or identity.external_id
    return handle or identity.email or identity.display_name or identity.external_id


@register.simple_tag
def account_label(identity):
    """An identity as the requester panel shows it: "Slack · @ann (Ann Employee)", never its internal namespace."""
    handle = recognisable_handle(identity)
    name = identity.display_name
    if name and name != handle:
        return format_html(
            '<span class="identity-platform">{}</span> · <bdi>{}</bdi> <span class="muted">(<bdi>{}</bdi>)</span>',
            platform_name(identity.namespace),
            handle,
            name,
        )
    return format_html(
        '<span class="identity-platform">{}</span> · <bdi>{}</bdi>', platform_name(identity.namespace), handle
    )
