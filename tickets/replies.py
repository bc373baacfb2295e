"""What agents write on a ticket: replies, which go back out on a conversation's channel, and internal notes,
which never leave the desk.

A reply is checked against its channel's rules (through ``channel_port``), stored ``queued``, and handed to
delivery once committed; from then on its delivery status is the pipeline's (``channels_ingest.delivery``).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from channel_adapters.base import ReplyMode, ReplyTarget

from .attachments import attach_reply_files, check_reply_files
from .channel_port import channel_port, deliver_on_commit
from .models import Identity, Message, Ticket, TicketThread


class ReplyError(ValueError):
    """A reply or note that cannot be sent as written."""


def latest_thread(ticket: Ticket) -> TicketThread | None:
    """The conversation a reply goes to by default: where the requester wrote last."""
    return (
        TicketThread.objects.filter(ticket=ticket, messages__direction=Message.Direction.INBOUND)
        .select_related("channel")
        .order_by("-messages__created_at")
        .first()
    )


def reply_target(thread: TicketThread, *, mode: str = "", writer=None, subject: str = "") -> ReplyTarget:
    """What the channel needs to answer this conversation: the last inbound message and its author, who else
    follows it on that platform, and who on the desk writes (``writer``, an agent; None for the desk itself)
    under which ``subject`` ("" for the channel's usual one)."""
    last = (
        thread.messages.filter(direction=Message.Direction.INBOUND)
        .select_related("author_identity")
        .order_by("-created_at", "-id")
        .first()
    )
    author = last.author_identity if last else None
    return ReplyTarget(
        thread_key=thread.key,
        mode=mode,
        reply_to=last.external_id if last else "",
        reply_to_meta=last.meta if last else {},
        recipient=author.external_id if author else "",
        last_inbound_at=last.created_at if last else None,
        followers=_followers(thread, author) if author else (),
        ticket_number=thread.ticket_id,
        author_name=(writer.get_full_name() or writer.get_username()) if writer is not None else "",
        subject=subject,
    )


def _followers(thread: TicketThread, author: Identity) -> tuple[str, ...]:
    """The ids of everyone else in the conversation on the author's platform: the ticket's followers, and its
    requester when someone else wrote last (a follower answered), so a reply-all reaches them all. One query."""
    on_platform = Identity.objects.filter(namespace=author.namespace).exclude(pk=author.pk)
    followers = on_platform.filter(follows__ticket_id=thread.ticket_id).values_list("id", "external_id")
    requester = on_platform.filter(contact__tickets__pk=thread.ticket_id).values_list("id", "external_id")
    return tuple(external_id for _, external_id in followers.union(requester).order_by("id"))


def reply_modes(ticket: Ticket, thread: TicketThread | None = None) -> list[ReplyMode]:
    """How an agent may answer this ticket right now (e.g. public reply or DM), per its channel's rules."""
    thread = thread or latest_thread(ticket)
    if thread is None:
        return []
    return channel_port().adapter_for(thread.channel).reply_modes(reply_target(thread))


def reply_to_ticket(
    *,
    ticket: Ticket,
    author,
    body: str,
    mode: str | None = None,
    thread: TicketThread | None = None,
    files=(),
    meta: dict | None = None,
) -> Message:
    """Store an agent's reply as queued and hand it to delivery once committed.

    ``mode`` picks one of the channel's reply modes; None takes the first allowed one. ``thread``
    picks which of the ticket's conversations to answer; None takes where the requester wrote last.
    ``files`` (uploaded files) are kept on the reply and sent after its text, if the mode carries attachments.
    ``author`` None is the desk itself (an automatic acknowledgement). ``meta`` is kept on the reply for its
    channel (what ``Message.meta`` holds).
    """
    body = body.strip()
    if not body:
        raise ReplyError("A reply needs some text.")
    if len(body) > Message.MAX_BODY_LENGTH:  # before any (possibly slow) weighing by the channel
        raise ReplyError(f"The reply is {len(body)} characters; replies take at most {Message.MAX_BODY_LENGTH}.")
    if ticket.merged_into_id:
        raise ReplyError(f"This ticket was merged into #{ticket.merged_into_id}; reply there.")
    if thread is not None and thread.ticket_id != ticket.pk:
        raise ReplyError(f"That conversation is not part of ticket #{ticket.pk}.")
    thread = thread or latest_thread(ticket)
    if thread is None:
        raise ReplyError("This ticket has no channel conversation to reply to.")
    adapter = channel_port().adapter_for(thread.channel)
    modes = adapter.reply_modes(reply_target(thread))
    chosen = next((m for m in modes if (m.key == mode if mode is not None else m.allowed)), None)
    if chosen is None and mode is None and modes:
        chosen = modes[0]  # none is allowed: the first one's refusal says why
    if chosen is None:
        raise ReplyError(f"This channel has no reply mode {mode!r}." if mode is not None else "No way to reply here.")
    if not chosen.allowed:
        raise ReplyError(f"{chosen.label} is not possible here: {chosen.reason}")
    length = adapter.reply_length(body, chosen.key)
    if length > chosen.max_length:
        what = f"a {chosen.label.lower()}" if chosen.key else "this channel"
        raise ReplyError(f"The reply is {length} characters; {what} takes at most {chosen.max_length}.")
    refused = check_reply_files(files, chosen)
    if refused:
        raise ReplyError(refused)

    now = timezone.now()
    with transaction.atomic():
        message = Message.objects.create(
            ticket=ticket,
            thread=thread,
            direction=Message.Direction.OUTBOUND,
            author_user=author,
            body=body,
            created_at=now,
            reply_mode=chosen.key,
            delivery_status=Message.DeliveryStatus.QUEUED,
            delivery_next_attempt_at=now,
            meta=meta or {},
        )
        attach_reply_files(message, files)
        opened = ticket.record_agent_reply(at=now, author=author)
        ticket.save(update_fields=["status", "last_activity_at", "message_count", "first_responded_at"])
        if opened:
            opened.save()
        deliver_on_commit(message.pk)
    return message


def add_note(*, ticket: Ticket, author, body: str) -> Message:
    """Store an agent's internal note: seen by agents in the timeline, never delivered to the requester.

    A note has no thread and no delivery status. It counts as activity (``last_activity_at``,
    ``message_count``) but leaves the status alone: nobody answered the requester.
    """
    body = body.strip()
    if not body:
        raise ReplyError("A note needs some text.")
    if len(body) > Message.MAX_BODY_LENGTH:
        raise ReplyError(f"The note is {len(body)} characters; notes take at most {Message.MAX_BODY_LENGTH}.")
    now = timezone.now()
    with transaction.atomic():
        message = Message.objects.create(
            ticket=ticket,
            direction=Message.Direction.NOTE,
            author_user=author,
            body=Message.clean_body(body),
            created_at=now,
        )
        Ticket.objects.filter(pk=ticket.pk).update(
            last_activity_at=Greatest(F("last_activity_at"), now), message_count=F("message_count") + 1
        )
    ticket.refresh_from_db(fields=["last_activity_at", "message_count"])
    return message


def attach_thread(*, ticket: Ticket, channel, key: str) -> None:
    """A reply opened a new conversation (e.g. moved to DM): the requester's answers there join this ticket."""
    thread, created = TicketThread.objects.get_or_create(
        channel=channel, key=key, detached_at=None, defaults={"ticket": ticket}
    )
    if not created and thread.ticket_id != ticket.pk and not thread.ticket.is_open:
        thread.detached_at = timezone.now()
        thread.save(update_fields=["detached_at"])
        TicketThread.objects.create(channel=channel, key=key, ticket=ticket)


def remember_on_answered(thread: TicketThread, external_id: str, facts: dict) -> None:
    """Keep what the channel said about the message a reply answered (e.g. its one private reply is used)."""
    answered = thread.messages.filter(external_id=external_id).first()
    if answered is not None:
        answered.meta = {**answered.meta, **facts}
        answered.save(update_fields=["meta"])
