"""Selects rendered directly (the queue's filters, the ticket page's actions): Django's template-based
widget rendering took about a fifth of the queue page's time for seven small selects.

Only for plain (ungrouped) ``ChoiceField`` selects without extra attributes; every value is escaped
by ``format_html``.
"""

from django import template
from django.utils.html import format_html, format_html_join

register = template.Library()


@register.simple_tag
def plain_select(field):
    """``<select>`` for a bound choice field, with the submitted value (if any) selected."""
    current = field.value()
    current = "" if current is None else str(current)
    options = format_html_join(
        "",
        '<option value="{}"{}>{}</option>',
        ((value, " selected" if str(value) == current else "", label) for value, label in field.field.choices),
    )
    return format_html('<select name="{}" id="{}">{}</select>', field.html_name, field.id_for_label, options)
