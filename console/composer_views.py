"""The ticket page's composer: replies and internal notes, the live counter, and switching the conversation to
answer. A send the agent should reconsider comes back with its draft: held back when the ticket changed since
the agent saw it (409), refused when it cannot go as written (422).
"""

from contextlib import suppress

from django.contrib import messages
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from tickets.changes import Changes, Seen, changes_since
from tickets.macros import MacroError, reply_with_macro, usable_macro
from tickets.models import Message, Ticket
from tickets.replies import ReplyError, add_note, latest_thread, reply_modes, reply_to_ticket
from tickets.updates import TicketUpdateError

from .access import agent_required
from .conversations import thread_of
from .ticket_page import Draft, composer_files, counter, default_mode, reply_options, ticket_page_context
from .timeline import detail_tickets

#: A reply or note held back because the ticket changed since the agent saw it (nothing was sent).
HELD_BACK = 409
#: A reply or note refused (too long, empty, files too large, ...): the page again, with the draft.
REFUSED = 422


def _unseen_changes(request, ticket) -> Changes | None:
    """What changed on the ticket since the composer's page showed it, unless the agent said "Send anyway".

    A post without the composer's place (an API-like client, a page from before this check) is not checked.
    """
    if request.POST.get("confirm"):
        return None
    seen = Seen.parse(request.POST.get("seen_messages"), request.POST.get("seen_events"))
    if seen is None:
        return None
    return changes_since(ticket.pk, seen, viewer=request.user) or None


def _draft_page(request, ticket, kind, *, status, collision: Changes | None = None, refusal=""):
    """The ticket page again with the draft as written (its kind, conversation, mode and macro), saying why
    it was not sent: held back (``collision``, with "Send anyway") or refused (``refusal``)."""
    macro = None
    if kind == "reply" and request.POST.get("macro"):
        # Gone meanwhile: the draft comes back without it (sending again then sends the text alone).
        with suppress(MacroError):
            macro = usable_macro(request.user, request.POST["macro"])
    thread = _chosen_thread(request, ticket)
    draft = Draft(body=_reply_body(request), kind=kind, mode=request.POST.get("mode"), thread=thread, macro=macro)
    context = {
        **ticket_page_context(request, ticket, draft),
        "collision": collision,
        "refusal": refusal,
        # A browser cannot be handed files back: say so rather than let the next send go without them.
        "files_dropped": kind == "reply" and bool(request.FILES),
    }
    if kind == "reply":
        context.update(_measure_in(ticket, draft.body.strip(), thread, draft.mode))
    return render(request, "console/ticket_detail.html", context, status=status)


def _reply_body(request):
    # Browsers submit a textarea's line breaks as CRLF; channels expect LF (and count it as one character).
    return request.POST.get("body", "").replace("\r\n", "\n")


@agent_required
@require_POST
def ticket_reply(request, pk):
    ticket = get_object_or_404(detail_tickets(), pk=pk)
    changes = _unseen_changes(request, ticket)
    if changes:
        return _draft_page(request, ticket, "reply", status=HELD_BACK, collision=changes)
    # No ``mode`` field (a channel with a single mode): None lets the service take the default.
    reply = {"ticket": ticket, "author": request.user, "body": _reply_body(request), "mode": request.POST.get("mode")}
    macro_id = request.POST.get("macro")  # chosen in the composer's "Canned response" picker
    try:
        # No ``thread`` field (a single conversation): the service answers where the requester wrote last.
        reply["thread"] = thread_of(ticket, request.POST["thread"]) if "thread" in request.POST else None
        reply["files"] = request.FILES.getlist("files")
        if macro_id:
            macro = usable_macro(request.user, macro_id)
            reply_with_macro(**reply, macro=macro)
        else:
            reply_to_ticket(**reply)
    except (ReplyError, TicketUpdateError, MacroError) as exc:
        refusal = f"{exc} Nothing was sent and the macro was not applied." if macro_id else str(exc)
        return _draft_page(request, ticket, "reply", status=REFUSED, refusal=refusal)
    applied = f" Macro “{macro.name}” applied." if macro_id else ""
    messages.success(request, f"Reply queued for delivery.{applied}")
    return redirect("console:ticket-detail", pk=ticket.pk)


@agent_required
@require_POST
def ticket_note(request, pk):
    """An internal note: stored on the ticket for agents, never sent to the channel."""
    ticket = get_object_or_404(detail_tickets(), pk=pk)
    changes = _unseen_changes(request, ticket)
    if changes:
        return _draft_page(request, ticket, "note", status=HELD_BACK, collision=changes)
    try:
        add_note(ticket=ticket, author=request.user, body=_reply_body(request))
    except ReplyError as exc:
        return _draft_page(request, ticket, "note", status=REFUSED, refusal=str(exc))
    messages.success(request, "Internal note added.")
    if request.FILES:  # the composer's file input belongs to replies
        messages.warning(request, "Internal notes carry no files: the attached files were not kept.")
    return redirect("console:ticket-detail", pk=ticket.pk)


@agent_required
@require_POST
def reply_length(request, pk):
    """The composer's live counter: the reply's length as the channel counts it, against the chosen mode's limit.

    Measured like ``reply_to_ticket`` measures it (line breaks as LF, outer blanks trimmed), so the
    counter agrees with the server, which still enforces the limit.
    """
    ticket = get_object_or_404(Ticket.objects.only("pk"), pk=pk)
    thread = _chosen_thread(request, ticket)
    body = _reply_body(request).strip()
    return render(request, "console/_reply_length.html", _measure_in(ticket, body, thread, request.POST.get("mode")))


def _chosen_thread(request, ticket):
    """The conversation the composer has chosen (``thread``), or where the requester wrote last."""
    if "thread" in request.POST:
        try:
            return thread_of(ticket, request.POST["thread"])
        except ReplyError:
            pass  # the reply itself will refuse it; count against the default meanwhile
    return latest_thread(ticket)


def _measure_in(ticket, body, thread, wanted_mode):
    """The counter's context for ``body`` in the wanted mode of ``thread`` (or its default mode)."""
    modes = reply_modes(ticket, thread) if thread else []
    wanted = next((m for m in modes if m.key == wanted_mode), None)
    return _measure(body, thread, wanted or default_mode(modes) or (modes[0] if modes else None))


def _measure(body, thread, mode):
    if mode is None:  # nowhere to reply (the reply itself will say so): plain characters, no limit
        return counter(len(body), None)
    if len(body) > Message.MAX_BODY_LENGTH:
        # Far past every channel's limit: not worth weighing (twitter-text weighs it character by character).
        return counter(len(body), mode.max_length)
    return counter(thread.channel.adapter().reply_length(body, mode.key), mode.max_length)


@agent_required
@require_POST
def reply_conversation(request, pk):
    """The composer switched to another of the ticket's conversations: that one's send modes; out of band,
    the counter re-measured against its default mode, the length hint and the file input with its limits."""
    ticket = get_object_or_404(Ticket.objects.only("pk"), pk=pk)
    try:
        thread = thread_of(ticket, request.POST.get("thread"))
    except ReplyError as exc:
        return HttpResponseBadRequest(str(exc))
    options = reply_options(thread)
    measured = _measure(_reply_body(request).strip(), thread, options["default_mode"])
    files = composer_files(options["reply_modes"], options["default_mode"])
    return render(request, "console/_reply_modes.html", {**options, **measured, **files, "oob_composer": True})
