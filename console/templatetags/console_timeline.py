"""A timeline message, rendered in Python: ``_message.html``'s template loop (about two dozen variable
lookups, two date filters and an include per message) took most of the ticket page's render time.

Every value from a message is escaped (``_e``); the markup around them is constant.
A reply's delivery status is rendered here too (``delivery_status``, also used by the badge's own poll), and
the reactions people put on a message (``reactions``), and an email's headers, folded history and HTML view
(``console.emails``); a message's files keep their template (``_attachments.html``), rendered only for
messages that have any.
"""

from collections import Counter
from html import escape

from django import template
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from console.emails import body_sections, email_parts, header_section
from console.folding import preview
from console.players import player_for
from console.templatetags.console_labels import zoned
from tickets.models import Message

register = template.Library()

_NOTE_LABEL = mark_safe('<span class="note-label">Internal note</span>')
_NOTE_HINT = mark_safe('<p class="note-hint">Only agents see this note; it was not sent to the requester.</p>')
_DIRECTIONS = {value: str(label) for value, label in Message.Direction.choices}
_DELIVERY = {value: str(label) for value, label in Message.DeliveryStatus.choices}
_IN_FLIGHT = (Message.DeliveryStatus.QUEUED, Message.DeliveryStatus.SENDING)
#: A reaction is one emoji on every platform; a longer value is not one, and is cut rather than let it take the row.
REACTION_MAX_CHARS = 16


def _e(value) -> str:
    """Escape for HTML text and attribute values. The stdlib's, called directly: Django's lazy-aware
    ``escape``/``format_html`` wrappers cost more than the escaping, dozens of times per message."""
    return escape(str(value), quote=True)


def _marker(css, at, text):
    return f'<span class="{css}" title="{_e(zoned(at))}">{text}</span>'


@register.simple_tag(takes_context=True)
def timeline_message(context, message, oob=False):
    """One message of the timeline as a ``<li id="message-<pk>">``; ``oob`` swaps it in place (live poll).
    Every value from the message is escaped by ``_e``; the markup around it is constant."""
    sent = message.created_at
    direction = message.direction
    classes = f"message message-{_e(direction)}" + (" is-deleted" if message.deleted_at else "")
    label = _NOTE_LABEL if direction == Message.Direction.NOTE else _e(_DIRECTIONS.get(direction, ""))
    meta = [
        f'<span class="direction">{label}</span>',
        f"<strong><bdi>{_e(message.author_name)}</bdi></strong>",
        f'<time datetime="{timezone.localtime(sent).isoformat()}">{_e(zoned(sent))}</time>',
    ]
    if message.edited_at:
        meta.append(_marker("marker", message.edited_at, "edited"))
    if message.deleted_at:
        meta.append(_marker("marker marker-deleted", message.deleted_at, "deleted"))
    conversation = getattr(message, "conversation_label", "")
    if conversation:
        meta.append(
            '<span class="message-conversation"><span class="visually-hidden">Conversation: </span>'
            f"<bdi>{_e(conversation)}</bdi></span>"
        )
    attachments = message.files if hasattr(message, "files") else list(message.attachments.order_by("id"))
    email = email_parts(message, attachments)
    parts = [f'<div class="message-meta">{" ".join(meta)}</div>']
    if email:
        parts.append(header_section(email))
        attachments = email.listed
    parts.append(message_body(message.body))
    if email:
        parts.append(body_sections(message, email))
    if attachments:
        parts.append(render_to_string("console/_attachments.html", {"attachments": attachments, "message": message}))
    reacted = reactions(getattr(message, "reactions", None))
    if reacted:
        parts.append(reacted)
    if direction == Message.Direction.NOTE:
        parts.append(_NOTE_HINT)
    elif direction == Message.Direction.OUTBOUND:
        parts.append(f'<div class="delivery" aria-live="polite">{delivery_status(context, message)}</div>')
    swap = ' hx-swap-oob="true"' if oob else ""
    body = "\n".join(parts)
    return mark_safe(f'<li id="message-{message.pk}" class="{classes}"{swap}>{body}</li>')  # noqa: S308 - values escaped by _e


def message_body(body: str) -> str:
    """The message's text; a long one folded: its start, and a ``<details>`` "Show all" holding the whole text
    (no script needed; the start is hidden while it is open). Cut before escaping (``console.folding``)."""
    start = preview(body)
    if start is None:
        return f'<div class="message-body" dir="auto">{_e(body)}</div>'
    return (
        '<div class="message-fold">'
        f'<div class="message-body message-preview" dir="auto">{_e(start)}…</div>'
        '<details class="message-full"><summary><span class="when-folded">Show all</span>'
        f'<span class="when-unfolded">Show less</span> <span class="muted">({len(body):,} characters)</span>'
        f'</summary><div class="message-body" dir="auto">{_e(body)}</div></details></div>'
    )


def reactions(by_who) -> str:
    """The reactions on a message (``Message.reactions``: who → emoji), one entry per emoji with how many people
    chose it, the most chosen first (then in the order they came). "" when there are none. Emoji are the
    platform's data: escaped like any text."""
    counts = Counter(str(emoji)[:REACTION_MAX_CHARS] for emoji in (by_who or {}).values() if emoji)
    if not counts:
        return ""
    items = []
    for emoji, count in counts.most_common():
        who = "1 person" if count == 1 else f"{count} people"
        items.append(
            f'<li class="reaction"><span aria-hidden="true"><span class="reaction-emoji">{_e(emoji)}</span>'
            f' <span class="reaction-count">{count}</span></span>'
            f'<span class="visually-hidden">{who} reacted with {_e(emoji)}</span></li>'
        )
    return f'<ul class="reactions" aria-label="Reactions">{"".join(items)}</ul>'


@register.simple_tag(takes_context=True)
def delivery_status(context, message):
    """A reply's delivery badge. While the reply is on its way it replaces itself every 2 s (the badge's
    own poll, ``console:message-status``); once sent (then delivered, read) or failed it has no hx-trigger,
    which ends the polling: what the platform reports later (``tickets.delivery_reports``) moves the message's
    ``changed_mark``, so the live poll swaps the whole message in place. A reply waiting longer than
    DELIVERY_STALE_SECONDS is flagged (``Message.delivery_stalled_since``); a failed one shows the platform's
    error and a Retry button."""
    status = message.delivery_status
    stalled = message.delivery_stalled_since
    poll = ""
    if status in _IN_FLIGHT:
        url = reverse("console:message-status", args=[message.pk])
        poll = f' hx-get="{url}" hx-trigger="every 2s" hx-swap="outerHTML"'
    flag = " delivery-stalled" if stalled else ""
    warning = '<span aria-hidden="true">⚠ </span>' if stalled else ""
    reported = getattr(message, "delivery_reported_at", None)
    # When the platform last reported on it; on hover, like the "edited" marker's time.
    title = f' title="Reported {_e(zoned(reported))}"' if reported else ""
    parts = [
        f'<span class="badge delivery-{_e(status)}{flag}"{title}><span class="visually-hidden">Delivery: </span>'
        f"{warning}{_e(_DELIVERY.get(status, status))}</span>"
    ]
    if stalled:
        parts.append(
            f'<span class="delivery-stalled-note">Still {_e(status)} after {_e(timesince(stalled))} — the channel'
            " may be slow or the worker down</span>"
        )
    if message.delivery_error:
        parts.append(f'<span class="delivery-error" dir="auto">{_e(message.delivery_error)}</span>')
    if status == Message.DeliveryStatus.FAILED:
        retry = reverse("console:message-retry", args=[message.pk])
        token = _e(context.get("csrf_token") or "")
        parts.append(
            f'<form method="post" action="{retry}"><input type="hidden" name="csrfmiddlewaretoken" value="{token}">'
            '<button type="submit" class="button-small">Retry</button></form>'
        )
    body = "\n".join(parts)
    return mark_safe(f'<div class="delivery-status{" is-stalled" if stalled else ""}"{poll}>{body}</div>')  # noqa: S308 - values escaped by _e


@register.filter
def player(attachment):
    """How ``_attachment.html`` plays a file in the page: "audio", "video" or "" (``console.players``)."""
    return player_for(attachment)
