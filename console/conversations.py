"""A ticket's conversations (threads) as the composer offers them: which channel, with whom, and the default.

A ticket holds several conversations after a merge (or when a reply moved to a DM). Each reply goes
to one of them; the agent picks which, and the default is where the requester wrote last.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import models
from django.utils.text import capfirst

from channels_ingest.registry import adapter_class
from tickets.models import Message, Ticket, TicketThread
from tickets.replies import ReplyError


@dataclass(frozen=True)
class Conversation:
    thread: TicketThread
    #: The channel's kind and name, and what kind of conversation it is there if not the usual one.
    channel_label: str
    #: Who wrote last in it (their name, else handle, else account id); "" before anyone wrote.
    requester: str
    last_inbound_at: datetime | None

    @property
    def label(self):
        return f"{self.channel_label} — {self.requester}" if self.requester else self.channel_label


def _channel_label(thread):
    channel = thread.channel
    label = f"{capfirst(channel.kind)} {channel.name}"
    try:
        kind = adapter_class(channel.kind).describe_thread(thread.key)
    except LookupError:  # a channel kind no longer configured
        kind = ""
    return f"{label} · {kind}" if kind else label


def conversations(ticket: Ticket) -> list[Conversation]:
    """The ticket's conversations, oldest first, each with its last inbound author: ONE query."""
    inbound = Message.objects.filter(thread=models.OuterRef("pk"), direction=Message.Direction.INBOUND).order_by(
        "-created_at", "-id"
    )
    threads = (
        TicketThread.objects.filter(ticket_id=ticket.pk)
        .select_related("channel")
        .annotate(
            last_inbound_at=models.Subquery(inbound.values("created_at")[:1]),
            author_name=models.Subquery(inbound.values("author_identity__display_name")[:1]),
            author_handle=models.Subquery(inbound.values("author_identity__handle")[:1]),
            author_id=models.Subquery(inbound.values("author_identity__external_id")[:1]),
        )
        .order_by("created_at", "id")
    )
    return [
        Conversation(
            thread=thread,
            channel_label=_channel_label(thread),
            requester=thread.author_name or thread.author_handle or thread.author_id or "",
            last_inbound_at=thread.last_inbound_at,
        )
        for thread in threads
    ]


def default_conversation(choices: list[Conversation]) -> Conversation | None:
    """Where the requester wrote last (as ``tickets.replies.latest_thread``); None if nobody wrote on any."""
    written = [c for c in choices if c.last_inbound_at is not None]
    return max(written, key=lambda c: (c.last_inbound_at, c.thread.pk)) if written else None


def thread_of(ticket: Ticket, thread_id) -> TicketThread:
    """The ticket's conversation with this id (as posted by a form); ``ReplyError`` if it is not one of them."""
    try:
        pk = int(thread_id)
    except (TypeError, ValueError):
        pk = None
    thread = TicketThread.objects.select_related("channel").filter(pk=pk, ticket_id=ticket.pk).first() if pk else None
    if thread is None:
        raise ReplyError(f"That conversation is not part of ticket #{ticket.pk}; pick one of its own conversations.")
    return thread
