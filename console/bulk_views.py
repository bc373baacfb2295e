"""The queue's bulk actions: change the ticked tickets (assignee, status, priority) or merge them into one.

The queue's table sits in one POST form; its checkboxes send ``ids``. Without JavaScript this is a
plain form post; console.js only keeps the ticks across the rows' refreshes.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from tickets.itil import REASON_LENGTH
from tickets.merging import merge_tickets, oldest
from tickets.models import Ticket
from tickets.updates import UNCHANGED, TicketUpdateError, update_tickets

from .access import agent_required
from .forms import selected_ids
from .view_counts import forget_view_counts

ASSIGN_TO_ME = "assign-to-me"


class BulkChangeForm(forms.Form):
    """What to change on every ticked ticket; blank means "leave as it is"."""

    action = forms.ChoiceField(choices=[("apply", "Apply"), (ASSIGN_TO_ME, "Assign to me")], required=False)
    #: "me", "none" (nobody) or an agent's id; the service refuses a user who is not an agent.
    assignee = forms.RegexField(regex=r"^(|me|none|[0-9]{1,18})$", required=False)
    status = forms.ChoiceField(choices=[("", "Leave as it is"), *Ticket.Status.choices], required=False)
    priority = forms.TypedChoiceField(
        choices=[("", "Leave as it is"), *Ticket.Priority.choices], coerce=int, required=False, empty_value=None
    )
    #: Needed with a priority (the service says so), shown on every ticket's timeline.
    why = forms.CharField(required=False, max_length=REASON_LENGTH, strip=True)

    def changes(self, user):
        """The keyword arguments for ``update_tickets``."""
        data = self.cleaned_data
        if data["action"] == ASSIGN_TO_ME:
            return {"assignee": user}
        return {
            "status": data["status"] or None,
            "priority": data["priority"],
            "assignee": self._assignee(data["assignee"], user),
            "why": data["why"],
        }

    @staticmethod
    def _assignee(value, user):
        if value == "":
            return UNCHANGED
        if value == "me":
            return user
        if value == "none":
            return None
        assignee = get_user_model().objects.filter(pk=int(value), is_active=True).first()
        if assignee is None:
            raise TicketUpdateError("That agent does not exist (or no longer works here).")
        return assignee


def _queue_url(request):
    """Where the agent came from: the queue with its filters (``next``), if that is a queue URL."""
    queue = reverse("console:ticket-list")
    back = request.POST.get("next", "")
    if back.startswith(queue) and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return back
    return queue


def _back_to_queue(request):
    return redirect(_queue_url(request))


def _plural(count, word="ticket"):
    return f"{count} {word}{'' if count == 1 else 's'}"


@agent_required
@require_POST
def ticket_bulk(request):
    ids = selected_ids(request.POST)
    form = BulkChangeForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field.capitalize()}: {' '.join(errors)}")
        return _back_to_queue(request)
    try:
        outcome = update_tickets(ticket_ids=ids, actor=request.user, **form.changes(request.user))
    except TicketUpdateError as exc:
        messages.error(request, str(exc))
        return _back_to_queue(request)
    if outcome.changed:
        forget_view_counts()
        messages.success(request, f"{_plural(outcome.changed)} updated.")
    unchanged = len(ids) - outcome.changed - outcome.missing
    if unchanged:
        messages.info(request, f"{_plural(unchanged)} already had those values.")
    if outcome.missing:
        messages.info(request, f"{_plural(outcome.missing)} no longer {'exists' if outcome.missing == 1 else 'exist'}.")
    return _back_to_queue(request)


@agent_required
@require_POST
def ticket_merge(request):
    """The queue's "Merge…": first a page to pick which ticket to keep (the oldest by default), then the merge."""
    ids = selected_ids(request.POST)
    if "keep" not in request.POST:
        if len(ids) < 2:
            messages.error(request, "Select at least 2 tickets to merge.")
            return _back_to_queue(request)
        tickets = sorted(Ticket.objects.filter(pk__in=ids).for_list(), key=lambda t: (t.created_at, t.pk))
        context = {
            "section": "tickets",
            "tickets": tickets,
            "keep": oldest(tickets) if tickets else None,
            "back": _queue_url(request),
        }
        return render(request, "console/ticket_merge.html", context)
    keep = request.POST["keep"]
    if not (keep.isascii() and keep.isdigit() and len(keep) <= 18):
        messages.error(request, "Pick the ticket to keep.")
        return _back_to_queue(request)
    try:
        outcome = merge_tickets(ticket_ids=ids, actor=request.user, keep_id=int(keep))
    except TicketUpdateError as exc:
        messages.error(request, str(exc))
        return _back_to_queue(request)
    forget_view_counts()
    merged = ", ".join(f"#{ticket.pk}" for ticket in outcome.merged)
    messages.success(
        request, f"Merged {merged} into #{outcome.kept.pk}. Replies still go to each conversation's channel."
    )
    return redirect("console:ticket-detail", pk=outcome.kept.pk)
