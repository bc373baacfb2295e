"""What employees write in the portal, as the portal channel's envelopes: stored first, exactly once, and
ingested into tickets by the pipeline like every other channel's messages.

Each form carries an idempotency key (``new_submission_key``): a form sent twice stores one envelope, and its
files are kept once. An employee writes as the requester of the ticket: the envelope's sender is an identity
of theirs on the requester contact (``sender_for``), so a reply naming the ticket (``ticket_number``) joins it,
whichever channel it started on, in their own portal conversation (never another requester's, merged in).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from django.utils import timezone

from channel_adapters.base import DeliveryReport, Envelope, EnvelopeKind, Sender
from channels_ingest.ingest import store_envelopes
from channels_ingest.models import Channel, InboundMessage
from channels_ingest.portal_channel import KIND, forget_upload, keep_upload
from tickets.models import Contact, Identity, Message, Ticket, TicketThread
from tickets.replies import attach_thread

#: The identities employees write under in the portal.
NAMESPACE = "portal"
_KEY = re.compile(r"^[0-9a-f]{32}$")


class PortalUnavailable(Exception):
    """No portal channel is set up (or it is disabled): nothing written in the portal could reach the desk."""


def new_submission_key() -> str:
    return uuid.uuid4().hex


def is_submission_key(value: str) -> bool:
    return bool(_KEY.match(value or ""))


def portal_channel() -> Channel:
    channel = Channel.objects.filter(kind=KIND, enabled=True).order_by("pk").first()
    if channel is None:
        raise PortalUnavailable("The portal is not connected to the helpdesk yet. Please contact the service desk.")
    return channel


def _name_of(user) -> str:
    return user.get_full_name() or user.email or user.get_username()


def own_contact(user) -> Contact:
    """The contact a new ticket of ``user``'s is requested by: the oldest one with their address, or a new one."""
    contact = Contact.objects.with_email(user.email).order_by("pk").first()
    return contact or Contact.objects.create(display_name=_name_of(user), email=user.email)


def sender_for(user, contact: Contact) -> Sender:
    """``user`` writing as ``contact`` (whom they are, by their address): their portal identity on that contact."""
    sender = Sender(
        namespace=NAMESPACE,
        external_id=f"{user.pk}:{contact.pk}",
        handle=user.email,
        display_name=_name_of(user),
        email=user.email,
    )
    Identity.objects.get_or_create(
        namespace=sender.namespace,
        external_id=sender.external_id,
        defaults={
            "contact": contact,
            "handle": sender.handle,
            "display_name": sender.display_name,
            "email": user.email,
        },
    )
    return sender


@dataclass(frozen=True)
class Submitted:
    #: The ticket it opened or joined, once ingested (None while it waits for the pipeline).
    ticket_id: int | None
    #: False when the same form had been received already.
    new: bool


def submit_ticket(*, user, key: str, subject: str, description: str, files) -> Submitted:
    """A new request: it opens a ticket on the portal channel, requested by ``user``'s own contact."""
    channel = portal_channel()
    external_id = f"{user.pk}:{key}"
    if _received(channel, external_id):
        return Submitted(ticket_id=_ticket_of(channel, external_id), new=False)
    envelope = Envelope(
        external_id=external_id,
        kind=EnvelopeKind.MESSAGE,
        thread_key=external_id,
        sent_at=timezone.now(),
        sender=sender_for(user, own_contact(user)),
        text=description,
        starts_thread=True,
        subject=subject,
        attachments=tuple(keep_upload(upload) for upload in files),
    )
    return _store(channel, envelope)


def submit_reply(*, user, ticket: Ticket, key: str, text: str, files) -> Submitted:
    """A reply on ``ticket`` (the caller has checked it is ``user``'s own): it joins the ticket by its number,
    in the ticket's portal conversation (a new one if the ticket started on another channel). A ticket merged
    into another is answered where its conversation lives now, still as its own requester."""
    channel = portal_channel()
    external_id = f"{user.pk}:{key}"
    if _received(channel, external_id):
        return Submitted(ticket_id=_ticket_of(channel, external_id), new=False)
    sender = sender_for(user, ticket.requester)
    home = ticket.conversation_home()
    if _only_others_conversations(channel, home, sender):
        # A reply naming the ticket would join the latest of them (someone else's, merged in): open their own.
        attach_thread(ticket=home, channel=channel, key=external_id)
    envelope = Envelope(
        external_id=external_id,
        kind=EnvelopeKind.MESSAGE,
        thread_key=external_id,
        sent_at=timezone.now(),
        sender=sender,
        text=text,
        ticket_number=ticket.pk,  # ingestion follows a merged ticket to where it lives, as for any channel
        attachments=tuple(keep_upload(upload) for upload in files),
    )
    return _store(channel, envelope)


def _only_others_conversations(channel: Channel, ticket: Ticket, sender: Sender) -> bool:
    """Whether the ticket has portal conversations, none of them this sender's (another requester's ticket was
    merged into it)."""
    conversations = TicketThread.objects.filter(ticket=ticket, channel=channel, detached_at=None)
    own = conversations.filter(
        messages__author_identity__namespace=sender.namespace,
        messages__author_identity__external_id=sender.external_id,
    )
    return conversations.exists() and not own.exists()


def _store(channel: Channel, envelope: Envelope) -> Submitted:
    new = store_envelopes(channel, [envelope]) == 1
    if not new:  # the same form, sent at the same moment from another tab, was stored first with its own copies
        for attachment in envelope.attachments:
            forget_upload(attachment.ref)
    # Ingested already when the pipeline runs inline (the embedded demo, the tests); else by a worker shortly.
    return Submitted(ticket_id=_ticket_of(channel, envelope.external_id), new=new)


def _received(channel: Channel, external_id: str) -> bool:
    return InboundMessage.objects.filter(channel=channel, external_id=external_id).exists()


def _ticket_of(channel: Channel, external_id: str) -> int | None:
    return (
        Message.objects.filter(thread__channel=channel, external_id=external_id)
        .values_list("ticket_id", flat=True)
        .first()
    )


#: Replies the portal has shown, but not yet reported read.
_UNREAD = (Message.DeliveryStatus.SENT, Message.DeliveryStatus.DELIVERED)


def report_read(conversation) -> None:
    """The requester has seen these messages in the portal: the desk's replies sent in the portal's conversations
    are reported read, as a platform's read receipts are (a report on each, stored once; the pipeline applies it)."""
    unread = [
        message
        for message in conversation
        if message.direction == Message.Direction.OUTBOUND
        and message.delivery_status in _UNREAD
        and message.external_id
        and message.thread is not None
        and message.thread.channel.kind == KIND
    ]
    if not unread:
        return
    now = timezone.now()
    envelopes = [
        Envelope(
            external_id=f"read:{message.external_id}",
            kind=EnvelopeKind.STATUS,
            thread_key=message.thread.key,
            sent_at=now,
            target_id=message.external_id,
            meta={"status": str(DeliveryReport.READ)},
        )
        for message in unread
    ]
    store_envelopes(unread[0].thread.channel, envelopes)
