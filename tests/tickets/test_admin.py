"""The Django admin's ticket pages."""

from django.contrib.auth.models import User
from django.forms import MultiWidget
from django.urls import reverse

from tickets.models import Ticket, TicketEvent


def test_a_status_edited_in_the_admin_is_on_the_timeline(client, ticket):
    root = User.objects.create_superuser("root", password="root-pass-123")
    client.force_login(root)
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    form = client.get(url).context["adminform"].form
    data = {}  # the form as the admin shows it
    for name in form.fields:
        value, widget = form[name].value(), form.fields[name].widget
        if isinstance(widget, MultiWidget):  # a date and a time
            parts = widget.decompress(value)
            data.update({name + suffix: part or "" for suffix, part in zip(widget.widgets_names, parts, strict=True)})
        else:
            data[name] = "" if value is None else value
    assert client.post(url, {**data, "status": "resolved"}).status_code == 302

    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.status == "resolved"
    assert ticket.resolved_at is not None
    [event] = TicketEvent.objects.all()
    assert (event.kind, event.old_value, event.new_value) == ("status", "new", "resolved")
    assert (event.actor, event.reason) == (root, "edited in the admin")
