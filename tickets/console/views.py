"""The agent console's queue and ticket page: server-rendered, with htmx partials for what changes on its own.

Triage, channel health, saved views, macros, bulk actions, files and the live parts have their own modules.
"""

from dataclasses import dataclass

from django.contrib import messages
from django.db.models import Q
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from channels_ingest.adapters import adapter_class
from channels_ingest.adapters.base import ReplyMode
from channels_ingest.delivery import retry_delivery
from tickets.attachments import reply_limits
from tickets.changes import Changes, Seen, changes_since
from tickets.conversations import conversations, default_conversation, thread_of
from tickets.macros import MacroError, reply_with_macro, usable_macro
from tickets.models import Macro, Message, SavedView, Ticket, TicketThread
from tickets.services import (
    MAX_BODY_LENGTH,
    ReplyError,
    TicketChangeError,
    add_note,
    change_ticket,
    latest_thread,
    reply_modes,
    reply_target,
    reply_to_ticket,
)

from .access import agent_required
from .forms import (
    ALL,
    DEFAULT_SORT,
    OPEN,
    SORTS,
    VIEWS,
    TicketFilterForm,
    filter_query,
    format_cursor,
)
from .listing import PAGE_SIZE, page_of, triage_count
from .macros import macro_picker
from .presence import HEARTBEAT_SECONDS
from .ticket_page import (
    TicketUpdateForm,
    detail_tickets,
    facts_version,
    label_conversations,
    requester_panel,
    timeline_page,
)
from .view_counts import forget_view_counts, view_counts

#: A reply or note held back because the ticket changed since the agent saw it (nothing was sent).
HELD_BACK = 409
#: A reply or note refused (too long, empty, files too large, ...): the page again, with the draft.
REFUSED = 422


# Tickets ----------------------------------------------------------------------


def _ticket_page(request):
    form = TicketFilterForm(request.GET)
    status, page = form.values()
    if status == ALL:
        tickets = Ticket.objects.all()
    elif status == OPEN:
        tickets = Ticket.objects.open()
    else:
        tickets = Ticket.objects.filter(status=status)
    tickets = form.filter(tickets, request.user).for_list()
    sort = form.sort_key()
    if sort != DEFAULT_SORT:
        # Other sorts page by ?page= (OFFSET): keyset cursors name a place in the default order only,
        # and form.cursor() returns None for them. Still no COUNT: one extra row tells if a next page exists.
        tickets = tickets.order_by(*SORTS[sort])
    cursor = form.cursor()
    if cursor is None:  # the first page, or an old ?page= link (OFFSET)
        rows, has_next = page_of(tickets, page)
        has_prev = page > 1
    elif cursor[0] == "after":  # keyset: the rows after a ticket, served by the ticket_activity index
        (at, pk), page, has_prev = cursor[1], None, True
        rows = list(tickets.filter(Q(last_activity_at__lt=at) | Q(last_activity_at=at, id__lt=pk))[: PAGE_SIZE + 1])
        rows, has_next = rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
    else:  # "before": the rows just newer than a ticket, read upwards
        (at, pk), page, has_next = cursor[1], None, True
        newer = list(tickets.filter(Q(last_activity_at__gt=at) | Q(last_activity_at=at, id__gt=pk)).reverse()[: PAGE_SIZE + 1])
        has_prev = len(newer) > PAGE_SIZE
        rows = newer[:PAGE_SIZE][::-1]
        if not has_prev:  # back at the top: show the whole first page, not a short one
            (rows, has_next), page = page_of(tickets, 1), 1
    return {
        "form": form,
        "page": page,
        "tickets": rows,
        "has_next": has_next,
        "has_prev": has_prev,
        # Cursors only where paging is by keyset: an old ?page= link's "Newer" stays ?page=.
        "next_cursor": format_cursor(rows[-1]) if rows and sort == DEFAULT_SORT else None,
        "prev_cursor": format_cursor(rows[0]) if rows and cursor else None,
        "triage_count": triage_count(),
        "views": _views(form, request.user),
    }


def _views(form, user):
    """The view tabs with their counts: the shared ones cached across agents, "My open" counted per agent."""
    counts = view_counts(user)
    current = form.cleaned_data.get("view") or ""
    return [{"key": key, "label": label, "count": counts[key], "current": key == current} for key, label in VIEWS]


@agent_required
def ticket_list(request):
    context = _ticket_page(request)
    # The bulk bar's "assign to" agents: the assignee filter's choices, already loaded (no extra query).
    context["bulk_agents"] = [(pk, name) for pk, name in context["form"].fields["assignee"].choices if pk.isdigit()]
    context["bulk_statuses"] = Ticket.Status.choices
    context["bulk_priorities"] = Ticket.Priority.choices
    context["saved_views"] = list(SavedView.objects.filter(owner=request.user).only("id", "name", "query"))
    context["current_query"] = filter_query(request.GET)
    return render(request, "console/ticket_list.html", {**context, "section": "tickets"})


@agent_required
def ticket_rows(request):
    """The list's table rows alone, polled by the list page; the nav's triage count and the view tabs'
    counts ride along out of band."""
    context = {**_ticket_page(request), "oob_triage_count": True, "oob_view_tabs": True}
    return render(request, "console/_ticket_rows.html", context)


def _reply_limit(channel):
    """The channel's longest reply, for the textarea; ``reply_to_ticket`` enforces it anyway."""
    if channel is None:
        return None
    try:
        return adapter_class(channel.kind).max_reply_length
    except LookupError:  # a channel kind no longer configured
        return None


def _counter(length, max_length):
    """The live counter's context: how long, against which limit, and by how much it is over."""
    over = length - max_length if max_length is not None and length > max_length else 0
    return {"length": length, "max_length": max_length, "over": over}


def _default_mode(modes: list[ReplyMode]) -> ReplyMode | None:
    return next((mode for mode in modes if mode.allowed), None)


def _reply_options(thread):
    """The composer's send modes for one conversation (none when there is nowhere to reply)."""
    modes = thread.channel.adapter().reply_modes(reply_target(thread)) if thread else []
    return {
        "reply_thread": thread,
        "reply_modes": modes,
        # One mode without a key (Slack, locmem): the form sends no ``mode`` and the service picks it.
        "choose_mode": any(mode.key for mode in modes),
        "default_mode": _default_mode(modes),
    }


@dataclass(frozen=True)
class Draft:
    """What an agent had written when sending was held back (the ticket changed) or refused: shown again as it was."""

    body: str
    kind: str  # "reply" or "note"
    mode: str | None = None
    #: The conversation it was written for, when the ticket has several.
    thread: TicketThread | None = None
    #: The canned response chosen for it, so "Send anyway" still applies the macro's actions.
    macro: Macro | None = None


def _ticket_page_context(request, ticket, draft: Draft | None = None):
    choices = conversations(ticket)
    current = default_conversation(choices)
    if draft is not None and draft.thread is not None:
        current = next((c for c in choices if c.thread.pk == draft.thread.pk), current)
    options = _reply_options(current.thread if current else None)
    if draft is not None and draft.mode is not None:
        wanted = (mode for mode in options["reply_modes"] if mode.key == draft.mode and mode.allowed)
        options["default_mode"] = next(wanted, options["default_mode"])
    default = options["default_mode"]
    # The textarea's hard limit must fit every conversation the agent may switch to; the counter
    # shows the chosen one's, and the server enforces it.
    limits = [mode.max_length for mode in options["reply_modes"] if mode.allowed]
    limits += [_reply_limit(c.thread.channel) or 0 for c in choices if c is not current]
    timeline = _timeline_context(ticket)
    label_conversations(timeline["timeline"], choices)
    return {
        "ticket": ticket,
        **timeline,
        # What this page shows: the live poll continues from here, and the composer sends it back so that
        # the server can tell what changed since (tickets.changes).
        "seen": Seen.of_page(timeline["timeline"], settled=ticket.settled_mark),
        "facts_version": facts_version(ticket),
        "heartbeat_seconds": HEARTBEAT_SECONDS,
        **requester_panel(ticket),
        "update_form": TicketUpdateForm.for_ticket(ticket),
        "conversations": choices,
        **options,
        "reply_limit": max(limits) if any(limits) else _reply_limit(ticket.channel),
        "draft": draft,
        **_counter(0, default.max_length if default else None),
        **_composer_files(options["reply_modes"], default),
        **macro_picker(request.user),
    }


@agent_required
def ticket_detail(request, pk):
    ticket = get_object_or_404(detail_tickets(), pk=pk)
    return render(request, "console/ticket_detail.html", _ticket_page_context(request, ticket))


def _composer_files(modes, default):
    """The composer's file input: offered for the reply modes that carry files, enabled for the default one."""
    carrying = [mode for mode in modes if mode.allowed and mode.attachments]
    shown = default if default in carrying else (carrying[0] if carrying else None)
    return {
        "file_modes": [mode.key for mode in carrying],
        "file_limits": reply_limits(shown),
        "files_enabled": default in carrying,
    }


def _timeline_context(ticket, before=None):
    entries, oldest, has_earlier = timeline_page(ticket.pk, before=before)
    return {"timeline": entries, "oldest": oldest, "has_earlier": has_earlier}


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
        try:
            macro = usable_macro(request.user, request.POST["macro"])
        except MacroError:
            pass  # gone meanwhile: the draft comes back without it (sending again then sends the text alone)
    thread = _chosen_thread(request, ticket)
    draft = Draft(
        body=_reply_body(request), kind=kind, mode=request.POST.get("mode"), thread=thread, macro=macro
    )
    context = {
        **_ticket_page_context(request, ticket, draft),
        "collision": collision,
        "refusal": refusal,
        # A browser cannot be handed files back: say so rather than let the next send go without them.
        "files_dropped": kind == "reply" and bool(request.FILES),
    }
    if kind == "reply":
        context.update(_measure_in(ticket, draft.body.strip(), thread, draft.mode))
    return render(request, "console/ticket_detail.html", context, status=status)


@agent_required
def ticket_earlier(request, pk):
    """The timeline page before message ``?before=<id>`` (keyset on created_at, id), for "Show earlier messages"."""
    ticket = get_object_or_404(Ticket.objects.only("pk"), pk=pk)
    try:
        before_id = int(request.GET.get("before", ""))
    except ValueError:
        return HttpResponseBadRequest("before must be a message id")
    before = get_object_or_404(Message.objects.only("id", "created_at"), ticket_id=ticket.pk, pk=before_id)
    timeline = _timeline_context(ticket, before)
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
            events = change_ticket(ticket=ticket, actor=request.user, assignee=request.user)
        elif action == "resolve":
            events = change_ticket(ticket=ticket, actor=request.user, status=Ticket.Status.RESOLVED)
        else:
            form = TicketUpdateForm(request.POST)
            if not form.is_valid():
                for field, errors in form.errors.items():
                    messages.error(request, f"{form.fields[field].label or field}: {' '.join(errors)}")
                return redirect("console:ticket-detail", pk=ticket.pk)
            events = change_ticket(ticket=ticket, actor=request.user, **form.cleaned_data)
    except TicketChangeError as exc:
        messages.error(request, str(exc))
    else:
        if events:
            forget_view_counts()
        messages.success(request, "Ticket updated." if events else "Nothing to change.")
    return redirect("console:ticket-detail", pk=ticket.pk)


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
    except (ReplyError, TicketChangeError, MacroError) as exc:
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
    return _measure(body, thread, wanted or _default_mode(modes) or (modes[0] if modes else None))


def _measure(body, thread, mode):
    if mode is None:  # nowhere to reply (the reply itself will say so): plain characters, no limit
        return _counter(len(body), None)
    if len(body) > MAX_BODY_LENGTH:
        # Far past every channel's limit: not worth weighing (twitter-text takes ~10 µs a character).
        return _counter(len(body), mode.max_length)
    return _counter(thread.channel.adapter().reply_length(body, mode.key), mode.max_length)


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
    options = _reply_options(thread)
    counter = _measure(_reply_body(request).strip(), thread, options["default_mode"])
    files = _composer_files(options["reply_modes"], options["default_mode"])
    return render(request, "console/_reply_modes.html", {**options, **counter, **files, "oob_composer": True})


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


