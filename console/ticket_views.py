"""The ticket page: the page itself, earlier messages on demand, the actions (status, priority, assignee, queue,
removing a follower), and a reply's delivery badge and Retry."""

from django.contrib import messages
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from channels_ingest.delivery import retry_delivery
from tickets.followers import remove_follower
from tickets.models import Message, Ticket
from tickets.updates import TicketUpdateError, update_ticket

from .access import agent_required
from .conversations import conversations
from .forms import TicketUpdateForm
from .ticket_page import ticket_page_context, timeline_context
from .timeline import detail_tickets, label_conversations
from .view_counts import forget_view_counts


@agent_required
def ticket_detail(request, pk):
    ticket = get_object_or_404(detail_tickets(), pk=pk)
    return render(request, "console/ticket_detail.html", ticket_page_context(request, ticket))


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
    """The ticket page's actions: the form (status, priority, assignee, queue), "Assign to me" and "Resolve"."""
    ticket = get_object_or_404(Ticket, pk=pk)
    action = request.POST.get("action", "")
    try:
        if action == "assign-to-me":
            events = update_ticket(ticket=ticket, actor=request.user, assignee=request.user)
        elif action == "resolve":
            events = update_ticket(ticket=ticket, actor=request.user, status=Ticket.Status.RESOLVED)
        else:
            form = TicketUpdateForm(request.POST)
            if not form.is_valid():
                for field, errors in form.errors.items():
                    messages.error(request, f"{form.fields[field].label or field}: {' '.join(errors)}")
                return redirect("console:ticket-detail", pk=ticket.pk)
            events = update_ticket(ticket=ticket, actor=request.user, **form.cleaned_data)
    except TicketUpdateError as exc:
        messages.error(request, str(exc))
    else:
        if events:
            forget_view_counts()
        messages.success(request, "Ticket updated." if events else "Nothing to change.")
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
