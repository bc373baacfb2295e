from django import forms

from tickets.models import Ticket

OPEN = "open"
ALL = "all"


class TicketFilterForm(forms.Form):
    """The ticket list's query string."""

    # "open" means every ticket that is not resolved or closed (TicketQuerySet.open()), so the
    # status that is also called "open" is not offered on its own.
    status = forms.ChoiceField(
        choices=[
            (OPEN, "Open (new, open or pending)"),
            (ALL, "All"),
            *((value, label) for value, label in Ticket.Status.choices if value != Ticket.Status.OPEN),
        ],
        required=False,
    )
    # Capped so that no ?page= can overflow the database's OFFSET.
    page = forms.IntegerField(min_value=1, max_value=100_000, required=False)

    def values(self):
        """(status, page number); a missing or invalid value falls back to its default."""
        self.is_valid()  # cleaned_data then holds the fields that are valid
        return self.cleaned_data.get("status") or OPEN, self.cleaned_data.get("page") or 1


class PageForm(forms.Form):
    """A list's ?page=; a missing or invalid value means the first page."""

    page = forms.IntegerField(min_value=1, max_value=100_000, required=False)

    def page_number(self):
        self.is_valid()
        return self.cleaned_data.get("page") or 1


MAX_SELECTED = 500


def selected_ids(data) -> list[int]:
    """The triage rows an action applies to: the row whose own button was pressed (``id``),
    otherwise every ticked checkbox (``ids``). Values that are not ids are ignored."""

    def ids(values):
        return sorted({int(v) for v in values if len(v) <= 18 and v.isascii() and v.isdigit() and int(v) > 0})

    return ids([data.get("id", "")]) or ids(data.getlist("ids")[:MAX_SELECTED])
