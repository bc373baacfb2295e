"""The agent console: server-rendered pages, with htmx partials for what changes on its own."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from channels_ingest.adapters import adapter_class
from channels_ingest.services import retry_delivery
from tickets.models import Message, Ticket
from tickets.services import ReplyError, reply_to_ticket

from .access import agent_required
from .forms import ALL, OPEN, TicketFilterForm

PAGE_SIZE = 50


def _ticket_page(request):
    """One page of the list, without a COUNT: one extra row tells whether a next page exists."""
    form = TicketFilterForm(request.GET)
    status, page = form.values()
    if status == ALL:
        tickets = Ticket.objects.all()
    elif status == OPEN:
        tickets = Ticket.objects.open()
    else:
        tickets = Ticket.objects.filter(status=status)
    tickets = tickets.for_list()
    start = (page - 1) * PAGE_SIZE
    rows = list(tickets[start : start + PAGE_SIZE + 1])
    return {"form": form, "page": page, "tickets": rows[:PAGE_SIZE], "has_next": len(rows) > PAGE_SIZE}


@agent_required
def ticket_list(request):
    return render(request, "console/ticket_list.html", _ticket_page(request))


@agent_required
def ticket_rows(request):
    """The list's table rows alone, polled by the list page."""
    return render(request, "console/_ticket_rows.html", _ticket_page(request))


def _reply_limit(channel):
    """The channel's longest reply, for the textarea; ``reply_to_ticket`` enforces it anyway."""
    if channel is None:
        return None
    try:
        return adapter_class(channel.kind).max_reply_length
    except LookupError:  # a channel kind no longer configured
        return None


@agent_required
def ticket_detail(request, pk):
    tickets = Ticket.objects.select_related("requester", "assignee", "channel", "queue").defer("channel__secrets")
    ticket = get_object_or_404(tickets, pk=pk)
    context = {"ticket": ticket, "timeline": ticket.messages.timeline(), "reply_limit": _reply_limit(ticket.channel)}
    return render(request, "console/ticket_detail.html", context)


@agent_required
@require_POST
def ticket_reply(request, pk):
    ticket = get_object_or_404(Ticket, pk=pk)
    # Browsers submit a textarea's line breaks as CRLF; channels expect LF (and count it as one character).
    body = request.POST.get("body", "").replace("\r\n", "\n")
    try:
        reply_to_ticket(ticket=ticket, author=request.user, body=body)
    except ReplyError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Reply queued for delivery.")
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
