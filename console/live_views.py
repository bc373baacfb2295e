"""The open ticket page's live parts: the timeline poll and the presence heartbeat.

Both are polled by every open ticket page, so each has a fixed, small cost: the poll is one query (on the
ticket, with two indexed EXISTS) and answers 204 when nothing is new; the heartbeat touches only the cache.
"""

from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from tickets.changes import MESSAGE, Seen, changes_since

from . import presence
from .access import agent_required
from .conversations import conversations
from .forms import TicketUpdateForm, facts_version
from .timeline import label_conversations, live_tickets, timeline_since

NO_CHANGE = 204


@agent_required
@require_GET
def ticket_live(request, pk):
    """What was stored or changed on the ticket since the page's place (``?messages=&events=``): new timeline
    entries, the entries it shows that were edited, deleted or retried, the header facts, the actions form if
    the ticket's state changed (``?facts=``), and, for the composer (``seen_messages``/``seen_events``), what
    others changed since the agent started writing."""
    place = Seen.parse(request.GET.get("messages"), request.GET.get("events"))
    if place is None:
        return HttpResponseBadRequest("messages and events must be places (tickets.changes.Place)")
    ticket = get_object_or_404(live_tickets(place), pk=pk)
    if not ticket.has_news:
        return HttpResponse(status=NO_CHANGE)
    news = timeline_since(pk, place, settled=ticket.settled_mark)
    # Revised messages are re-rendered in place, so they carry their conversation's label too.
    label_conversations([*news.entries, *((MESSAGE, message) for message in news.revised)], conversations(ticket))
    version = facts_version(ticket)
    context = {
        "ticket": ticket,
        "timeline": news.entries,
        "revised": news.revised,
        "seen": news.seen,
        "facts_version": version,
    }
    if version != request.GET.get("facts"):
        context["update_form"] = TicketUpdateForm.for_ticket(ticket)
    composer_seen = Seen.parse(request.GET.get("seen_messages"), request.GET.get("seen_events"))
    if composer_seen is not None:
        context["live_changes"] = changes_since(pk, composer_seen, viewer=request.user)
    return render(request, "console/_live_update.html", context)


@agent_required
@require_POST
def ticket_presence(request, pk):
    """The heartbeat: the agent is here (viewing, or typing a reply or a note); answers who else is, or that
    presence is unavailable (the cache is down).

    204 when the others are the same as the page shows (``shown``, their digest). Cache only: no query
    beyond the session's.
    """
    others = presence.check_in(pk, request.user, state=request.POST.get("state"), kind=request.POST.get("kind"))
    digest = presence.digest(others)
    if digest == request.POST.get("shown"):
        return HttpResponse(status=NO_CHANGE)
    return render(request, "console/_presence.html", {"present": others, "digest": digest})


@agent_required
@require_POST
def ticket_presence_leave(request, pk):
    """The page is closing (sent by ``navigator.sendBeacon``): the others stop seeing this agent at once."""
    presence.leave(pk, request.user)
    return HttpResponse(status=NO_CHANGE)
