"""What the composer says about a send mode beyond its name: how long its reply window stays open (a countdown
that ``static/console.js`` keeps current without asking the server), and the approved template it sends, with
the placeholders the agent's lines fill.

Every value goes through ``format_html`` or ``escape``.
"""

import re

from django import template
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

register = template.Library()

#: A WhatsApp template's numbered placeholder: ``{{1}}``, ``{{2}}``…
PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")
#: From this much time left the countdown says days and hours, rather than a long count of hours.
DAYS_FROM_HOURS = 48


def time_left(seconds: float) -> str:
    """ "23 h 12 min left", "5 min left", "6 d 23 h left", "less than a minute left", or "closed".

    Minutes are rounded down, so the composer never promises more time than there is. ``console.js``
    (``timeLeft``) words it the same way as it counts down.
    """
    seconds = int(seconds)
    if seconds <= 0:
        return "closed"
    if seconds < 60:
        return "less than a minute left"
    hours, minutes = seconds // 3600, seconds % 3600 // 60
    if hours >= DAYS_FROM_HOURS:
        return f"{hours // 24} d {hours % 24} h left"
    return f"{hours} h {minutes} min left" if hours else f"{minutes} min left"


@register.simple_tag
def reply_window(expires_at, now=None):
    """The countdown to a reply window's end: "Reply window: 23 h 12 min left". ``data-expires-at`` and
    ``data-now`` (milliseconds since the epoch, by the server's clock) let console.js count down from the
    server's time, whatever the agent's own clock says."""
    now = now or timezone.now()
    return format_html(
        '<span class="reply-window">Reply window: <time datetime="{}" data-expires-at="{}" data-now="{}">{}</time>'
        "</span>",
        expires_at.isoformat(),
        int(expires_at.timestamp() * 1000),
        int(now.timestamp() * 1000),
        time_left((expires_at - now).total_seconds()),
    )


@register.simple_tag
def template_body(body):
    """A template's text as the agent reads it before filling it: escaped, its placeholders marked."""
    marked = PLACEHOLDER.sub(r'<mark class="template-placeholder">{{\1}}</mark>', str(escape(body)))
    return mark_safe(marked)  # noqa: S308 - escaped above; only the <mark> tags are added


@register.simple_tag
def template_hint(body):
    """How the agent's text fills the template: one line per placeholder, in order."""
    numbers = sorted({int(n) for n in PLACEHOLDER.findall(body)})
    if not numbers:
        return "This template has no placeholders: it is sent as written."
    lines = "1 line" if len(numbers) == 1 else f"{len(numbers)} lines"
    order = ", ".join(f"line {i} fills {{{{{n}}}}}" for i, n in enumerate(numbers, start=1))
    return f"Each line of your reply fills one placeholder: write {lines} ({order})."
