"""The ticket page: the page itself, earlier messages on demand, the actions (status, priority, assignee, queue,
removing a follower), and a reply's delivery badge and Retry."""

from django.contrib import messages
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from channels_ingest.delivery import retry_delivery
from tickets.followers import remove_follower
from tickets.itil import ItilError, override_priority
from tickets.models import Message, Ticket
from tickets.updates import TicketUpdateError, update_ticket

from .access import agent_required
from .conversations import conversations
from .forms import TicketUndoForm, TicketUpdateForm
from .ticket_page import ticket_page_context, timeline_context
from .timeline import detail_tickets, label_conversations
from .update_feedback import offer_undo, snapshot, summary, take_undo
from .view_counts import forget_view_counts

#: The order the page tells an update's changes in.
_EVENT_ORDER = {kind: n for n, kind in enumerate(("status", "priority", "assignee", "queue"))}


@agent_required
def ticket_detail(request, pk):
    ticket = get_object_or_404(detail_tickets(), pk=pk)
    context = ticket_page_context(request, ticket)
    return render(request, "console/ticket_detail.html", {**context, "undo": take_undo(request, ticket)})


@agent_required
def ticket_earlier(request, pk):
    """The timeline page before message ``?before=<id>`` (keyset on created_at, id), for "Show earlier messages"."""
    ticket = get_object_or_404(Ticket.objects.only("pk"), pk=pk)
    try:
        before_id = int(request.GET.get("before", ""))
    except ValueError:
        return HttpResponseBadRequest("before must be a message id")
    before = get_object_or_404(Message.objects.only("id", "created_at"), ticket_id=ticket.pk, pk=before_id)
    timeline = timeline_context(ticket, before)
    label_conversations(timeline["timeline"], conversations(ticket))
    return render(request, "console/_timeline_entries.html", {"ticket": ticket, **timeline})


@agent_required
@require_POST
def ticket_update(request, pk):
    """The ticket page's actions: the form (status, priority, assignee, queue), "Assign to me", "Resolve", and
    the Undo offered after each of them (``action=undo``: only the fields it posts)."""
    ticket = get_object_or_404(Ticket, pk=pk)
    action = request.POST.get("action", "")
    before = snapshot(ticket)
    try:
        if action == "assign-to-me":
            events = update_ticket(ticket=ticket, actor=request.user, assignee=request.user)
        elif action == "resolve":
            events = update_ticket(ticket=ticket, actor=request.user, status=Ticket.Status.RESOLVED)
        else:
            form = TicketUndoForm(request.POST) if action == "undo" else TicketUpdateForm(request.POST)
            if not form.is_valid():
                for field, errors in form.errors.items():
                    label = f"{form[field].label}: " if field in form.fields else ""
                    messages.error(request, f"{label}{' '.join(errors)}")
                return redirect("console:ticket-detail", pk=ticket.pk)
            reason = "undo" if action == "undo" else ""
            changes = form.changes()
            priority_reason = changes.pop("priority_reason", "")
            events = []
            if action != "undo" and changes.get("priority") not in (None, ticket.priority):
                # An agent's priority overrides the matrix's: only with a reason (tickets.itil).
                event = override_priority(
                    ticket, actor=request.user, priority=changes.pop("priority"), reason=priority_reason
                )
                events = [event] if event else []
            events += update_ticket(ticket=ticket, actor=request.user, reason=reason, **changes)
            events.sort(key=lambda event: _EVENT_ORDER.get(event.kind, len(_EVENT_ORDER)))
    except (TicketUpdateError, ItilError) as exc:
        messages.error(request, str(exc))
        return redirect("console:ticket-detail", pk=ticket.pk)
    if not events:
        messages.success(request, "Nothing to change.")
        return redirect("console:ticket-detail", pk=ticket.pk)
    forget_view_counts()
    if action == "undo":
        messages.success(request, summary(events, ticket, request.user, undone=True))
    else:
        # The ticket page puts the Undo button in this message (templates/base.html).
        messages.success(request, summary(events, ticket, request.user), extra_tags="undo")
        offer_undo(request, ticket, before, events)
    return redirect("console:ticket-detail", pk=ticket.pk)


@agent_required
@require_POST
def follower_remove(request, pk, follower_pk):
    ticket = get_object_or_404(Ticket, pk=pk)
    event = remove_follower(ticket=ticket, follower_id=follower_pk, actor=request.user)
    if event:
        messages.success(request, f"{event.old_value} no longer follows this ticket.")
    else:
        messages.info(request, "That person no longer followed this ticket.")
    return redirect("console:ticket-detail", pk=ticket.pk)


def _outbound_message(pk):
    return get_object_or_404(Message, pk=pk, direction=Message.Direction.OUTBOUND)


@agent_required
def message_status(request, pk):
    """A reply's delivery badge, polled while the reply is on its way."""
    return render(request, "console/_delivery_status.html", {"message": _outbound_message(pk)})


@agent_required
@require_POST
def message_retry(request, pk):
    message = _outbound_message(pk)
    if retry_delivery(message):
        messages.success(request, "Reply queued for delivery again.")
    else:
        messages.info(request, "That reply had not failed, so it was not sent again.")
    return redirect("console:ticket-detail", pk=message.ticket_id)
