"""A timeline message, rendered in Python: ``_message.html``'s template loop (about two dozen variable
lookups, two date filters and an include per message) took most of the ticket page's render time.

Every value from a message goes through ``format_html`` or ``escape``; nothing from it is marked safe.
A reply's delivery status is rendered here too (``delivery_status``, also used by the badge's own poll);
a message's files keep their template (``_attachments.html``), rendered only for messages that have any.
"""

from django import template
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import localize
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from tickets.models import Message

register = template.Library()

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_NOTE_LABEL = mark_safe('<span class="note-label">Internal note</span>')
_NOTE_HINT = mark_safe('<p class="note-hint">Only agents see this note; it was not sent to the requester.</p>')
_DIRECTIONS = {value: str(label) for value, label in Message.Direction.choices}
_DELIVERY = {value: str(label) for value, label in Message.DeliveryStatus.choices}
_IN_FLIGHT = (Message.DeliveryStatus.QUEUED, Message.DeliveryStatus.SENDING)


def _short(at) -> str:
    """``date:"j M Y, H:i"`` without the formatter's per-call cost."""
    return f"{at.day} {_MONTHS[at.month - 1]} {at.year}, {at:%H:%M}"


def _marker(css, at, text):
    return format_html('<span class="{}" title="{}">{}</span>', css, localize(timezone.localtime(at)), text)


@register.simple_tag(takes_context=True)
def timeline_message(context, message, oob=False):
    """One message of the timeline as a ``<li id="message-<pk>">``; ``oob`` swaps it in place (live poll)."""
    sent = timezone.localtime(message.created_at)
    classes = f"message message-{message.direction}" + (" is-deleted" if message.deleted_at else "")
    meta = [
        format_html(
            '<span class="direction">{}</span>',
            _NOTE_LABEL if message.direction == Message.Direction.NOTE else _DIRECTIONS.get(message.direction, ""),
        ),
        format_html("<strong><bdi>{}</bdi></strong>", message.author_name),
        format_html('<time datetime="{}">{}</time>', sent.isoformat(), _short(sent)),
    ]
    if message.edited_at:
        meta.append(_marker("marker", message.edited_at, "edited"))
    if message.deleted_at:
        meta.append(_marker("marker marker-deleted", message.deleted_at, "deleted"))
    label = getattr(message, "conversation_label", "")
    if label:
        meta.append(
            format_html(
                '<span class="message-conversation"><span class="visually-hidden">Conversation: </span>'
                "<bdi>{}</bdi></span>",
                label,
            )
        )
    parts = [
        format_html('<div class="message-meta">{}</div>', mark_safe(" ".join(meta))),
        format_html('<div class="message-body" dir="auto">{}</div>', message.body),
    ]
    attachments = message.files if hasattr(message, "files") else message.attachments.all()
    if attachments:
        parts.append(mark_safe(render_to_string("console/_attachments.html", {"attachments": attachments, "message": message})))
    if message.direction == Message.Direction.NOTE:
        parts.append(_NOTE_HINT)
    elif message.direction == Message.Direction.OUTBOUND:
        status = delivery_status(context, message)
        parts.append(format_html('<div class="delivery" aria-live="polite">{}</div>', status))
    return format_html(
        '<li id="message-{}" class="{}"{}>{}</li>',
        message.pk,
        classes,
        mark_safe(' hx-swap-oob="true"') if oob else "",
        mark_safe("\n".join(parts)),
    )


@register.simple_tag(takes_context=True)
def delivery_status(context, message):
    """A reply's delivery badge. While the reply is on its way it replaces itself every 2 s (the badge's
    own poll, ``console:message-status``); a sent or failed one has no hx-trigger, which ends the polling.
    A reply waiting longer than DELIVERY_STALE_SECONDS is flagged (``Message.delivery_stalled_since``);
    a failed one shows the platform's error and a Retry button."""
    status = message.delivery_status
    stalled = message.delivery_stalled_since
    poll = (
        format_html(
            ' hx-get="{}" hx-trigger="every 2s" hx-swap="outerHTML"', reverse("console:message-status", args=[message.pk])
        )
        if status in _IN_FLIGHT
        else ""
    )
    parts = [
        format_html(
            '<span class="badge delivery-{}{}"><span class="visually-hidden">Delivery: </span>{}{}</span>',
            status,
            " delivery-stalled" if stalled else "",
            mark_safe('<span aria-hidden="true">⚠ </span>') if stalled else "",
            _DELIVERY.get(status, status),
        )
    ]
    if stalled:
        parts.append(
            format_html(
                '<span class="delivery-stalled-note">Still {} after {} — the channel may be slow or the worker down'
                "</span>",
                status,
                timesince(stalled),
            )
        )
    if message.delivery_error:
        parts.append(format_html('<span class="delivery-error" dir="auto">{}</span>', message.delivery_error))
    if status == Message.DeliveryStatus.FAILED:
        parts.append(
            format_html(
                '<form method="post" action="{}"><input type="hidden" name="csrfmiddlewaretoken" value="{}">'
                '<button type="submit" class="button-small">Retry</button></form>',
                reverse("console:message-retry", args=[message.pk]),
                context.get("csrf_token") or "",
            )
        )
    return format_html(
        '<div class="delivery-status{}"{}>{}</div>',
        " is-stalled" if stalled else "",
        poll,
        mark_safe("\n".join(parts)),
    )
