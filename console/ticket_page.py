"""What the ticket page shows: its context for the template, the composer's options for a conversation (send
modes, the live counter, files), and the draft an agent had written when a send was held back or refused.
"""

from dataclasses import dataclass

from channel_adapters.base import ReplyMode
from channels_ingest.registry import adapter_class
from tickets.attachments import reply_limits
from tickets.changes import Seen
from tickets.models import Macro, TicketThread
from tickets.replies import reply_target

from .conversations import conversations, default_conversation
from .forms import TicketUpdateForm, facts_version
from .itil_forms import itil_panel
from .people import requester_panel
from .presence import HEARTBEAT_SECONDS
from .timeline import label_conversations, timeline_page


def reply_limit(channel):
    """The channel's longest reply, for the textarea; ``reply_to_ticket`` enforces it anyway."""
    if channel is None:
        return None
    try:
        return adapter_class(channel.kind).max_reply_length
    except LookupError:  # a channel kind no longer configured
        return None


def counter(length, max_length):
    """The live counter's context: how long, against which limit, and by how much it is over."""
    over = length - max_length if max_length is not None and length > max_length else 0
    return {"length": length, "max_length": max_length, "over": over}


def default_mode(modes: list[ReplyMode]) -> ReplyMode | None:
    return next((mode for mode in modes if mode.allowed), None)


def reply_options(thread):
    """The composer's send modes for one conversation (none when there is nowhere to reply)."""
    modes = thread.channel.adapter().reply_modes(reply_target(thread)) if thread else []
    return {
        "reply_thread": thread,
        "reply_modes": modes,
        # One mode without a key (Slack, locmem): the form sends no ``mode`` and the service picks it.
        "choose_mode": any(mode.key for mode in modes),
        "default_mode": default_mode(modes),
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


def ticket_page_context(request, ticket, draft: Draft | None = None):
    choices = conversations(ticket)
    current = default_conversation(choices)
    if draft is not None and draft.thread is not None:
        current = next((c for c in choices if c.thread.pk == draft.thread.pk), current)
    options = reply_options(current.thread if current else None)
    if draft is not None and draft.mode is not None:
        wanted = (mode for mode in options["reply_modes"] if mode.key == draft.mode and mode.allowed)
        options["default_mode"] = next(wanted, options["default_mode"])
    default = options["default_mode"]
    # The textarea's hard limit must fit every conversation the agent may switch to; the counter
    # shows the chosen one's, and the server enforces it.
    limits = [mode.max_length for mode in options["reply_modes"] if mode.allowed]
    limits += [reply_limit(c.thread.channel) or 0 for c in choices if c is not current]
    timeline = timeline_context(ticket)
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
        **itil_panel(ticket),
        "conversations": choices,
        **options,
        "reply_limit": max(limits) if any(limits) else reply_limit(ticket.channel),
        "draft": draft,
        **counter(0, default.max_length if default else None),
        **composer_files(options["reply_modes"], default),
        **macro_picker(request.user),
    }


def composer_files(modes, default):
    """The composer's file input: offered for the reply modes that carry files, enabled for the default one."""
    carrying = [mode for mode in modes if mode.allowed and mode.attachments]
    shown = default if default in carrying else (carrying[0] if carrying else None)
    return {
        "file_modes": [mode.key for mode in carrying],
        "file_limits": reply_limits(shown),
        "files_enabled": default in carrying,
    }


def timeline_context(ticket, before=None):
    entries, oldest, has_earlier = timeline_page(ticket.pk, before=before)
    return {"timeline": entries, "oldest": oldest, "has_earlier": has_earlier}


def macro_picker(user):
    """The composer's "Canned response" choices: one query, however many macros there are."""
    rows = list(Macro.objects.usable_by(user).only("id", "name", "owner_id"))
    return {"macros_shared": [m for m in rows if m.is_shared], "macros_mine": [m for m in rows if not m.is_shared]}
