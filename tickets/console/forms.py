from datetime import UTC, datetime

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
    # Capped so that no ?page= can overflow the database's OFFSET. Kept for old links; the pager
    # itself uses the keyset cursors below, which cost the same on every page.
    page = forms.IntegerField(min_value=1, max_value=100_000, required=False)
    #: Tickets older than this one, in list order: ``<last activity, ISO 8601>,<id>``.
    after = forms.CharField(max_length=64, required=False)
    #: Tickets newer than this one, in list order (the "Newer" link).
    before = forms.CharField(max_length=64, required=False)

    def clean_after(self):
        return parse_cursor(self.cleaned_data.get("after"))

    def clean_before(self):
        return parse_cursor(self.cleaned_data.get("before"))

    def values(self):
        """(status, page number); a missing or invalid value falls back to its default."""
        self.is_valid()  # cleaned_data then holds the fields that are valid
        return self.cleaned_data.get("status") or OPEN, self.cleaned_data.get("page") or 1

    def cursor(self):
        """("after" | "before", (last activity, id)) from the query string, or None for offset paging."""
        self.is_valid()
        for direction in ("after", "before"):
            if self.cleaned_data.get(direction):
                return direction, self.cleaned_data[direction]
        return None


def format_cursor(ticket) -> str:
    """A ticket's place in the list, for ``?after=`` / ``?before=``: UTC to the microsecond, then its id."""
    at = ticket.last_activity_at.astimezone(UTC)
    return f"{at:%Y-%m-%dT%H:%M:%S.%f}Z,{ticket.pk}"


def parse_cursor(value):
    """The (aware datetime, id) a cursor names; None when missing; a ValidationError when malformed."""
    if not value:
        return None
    at, sep, pk = value.rpartition(",")
    try:
        if not sep or not (pk.isascii() and pk.isdigit()) or len(pk) > 18:
            raise ValueError
        moment = datetime.fromisoformat(at.replace(" ", "+"))  # a "+" in an offset may arrive as a space
        if moment.tzinfo is None:
            raise ValueError
        return moment.astimezone(UTC), int(pk)
    except (ValueError, OverflowError):
        raise forms.ValidationError("Not a list position.") from None


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
