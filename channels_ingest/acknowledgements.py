"""The desk's own answer to a message that opened a ticket, with the ticket's number.

Two options of a channel's config, for any kind of channel:

- ``public_ack``: a template answering a public message where everyone saw it (``"Ticket #{ticket} is open"``).
- ``auto_ack``: ``{"subject": ..., "body": ...}``, answering any other message. Templates may use ``{ticket}``
  (the number, required in the body), ``{subject}`` (the ticket's) and ``{name}`` (the requester's). The reply
  keeps ``{"auto_ack": true, "subject": <rendered subject>}`` in its meta, for channels whose messages have a
  subject (email).

Loop protection: no acknowledgement to a robot (``tickets.robots``), and at most
``AUTO_ACK_PER_SENDER_PER_HOUR`` to one requester in any hour. Each ticket is acknowledged once: only the
message that opened it is, and a message already stored opens nothing when it comes again.
"""

from __future__ import annotations

import logging
import string
from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from channel_adapters.base import ConfigError, Envelope
from tickets.inbound import Outcome
from tickets.models import Message, Ticket
from tickets.replies import ReplyError, reply_to_ticket
from tickets.robots import is_robot

logger = logging.getLogger(__name__)

#: What an ``auto_ack`` template may name.
PLACEHOLDERS = ("ticket", "subject", "name")


def validate(config: dict) -> None:
    """Refuse acknowledgement templates that cannot work (``ConfigError``)."""
    template = config.get("public_ack", "")
    if template and (not isinstance(template, str) or "{ticket}" not in template):
        raise ConfigError("public_ack must contain {ticket} (the ticket number).")
    if "auto_ack" not in config:
        return
    ack = config["auto_ack"]
    if not isinstance(ack, dict) or set(ack) - {"subject", "body"}:
        raise ConfigError('auto_ack must be an object with a "body" and, optionally, a "subject".')
    for part in ("subject", "body"):
        if not isinstance(ack.get(part, ""), str):
            raise ConfigError(f"auto_ack.{part} must be text.")
        _check_placeholders(f"auto_ack.{part}", ack.get(part, ""))
    if "{ticket}" not in ack.get("body", ""):
        raise ConfigError("auto_ack.body must contain {ticket} (the ticket number).")


def _check_placeholders(name: str, template: str) -> None:
    allowed = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
        unknown = [field for field in fields if field not in PLACEHOLDERS]
        if not unknown:
            template.format(ticket=1, subject="", name="")  # what parsing misses, e.g. a field in a format spec
    except (ValueError, KeyError, IndexError):
        raise ConfigError(f"{name} is not a valid template; it may use {allowed}, and {{{{ }}}} for braces.") from None
    if unknown:
        raise ConfigError(f"{name} has an unknown placeholder {{{unknown[0]}}}; it may use {allowed}.")


def acknowledge(channel, envelopes: list[Envelope], outcomes: dict[str, Outcome]) -> None:
    """Answer each message of the batch that opened a ticket, as the channel's config says."""
    opened = [
        (envelope, outcomes[envelope.external_id].ticket_id)
        for envelope in envelopes
        if envelope.external_id in outcomes and outcomes[envelope.external_id].opened_ticket
    ]
    if not opened:
        return
    public_ack = channel.config.get("public_ack")
    if public_ack:
        _acknowledge_publicly(channel, public_ack, {ticket_id for envelope, ticket_id in opened if envelope.public})
    auto_ack = channel.config.get("auto_ack")
    if auto_ack:
        _acknowledge(
            channel,
            auto_ack,
            {
                ticket_id
                for envelope, ticket_id in opened
                if not envelope.public and envelope.sender and not is_robot(envelope.sender)
            },
        )


def _acknowledge_publicly(channel, template: str, ticket_ids: set[int]) -> None:
    for ticket in Ticket.objects.filter(pk__in=ticket_ids).order_by("pk"):
        _reply(channel, ticket, template.format(ticket=ticket.pk), mode="public")


def _acknowledge(channel, template: dict, ticket_ids: set[int]) -> None:
    if not ticket_ids:
        return
    tickets = list(Ticket.objects.filter(pk__in=ticket_ids).select_related("requester").order_by("pk"))
    sent = _acknowledged_last_hour({ticket.requester_id for ticket in tickets})
    for ticket in tickets:
        if sent.get(ticket.requester_id, 0) >= settings.AUTO_ACK_PER_SENDER_PER_HOUR:
            logger.info(
                "channel %s: no acknowledgement for ticket %s, its requester had %d in the last hour",
                channel.name,
                ticket.pk,
                settings.AUTO_ACK_PER_SENDER_PER_HOUR,
            )
            continue
        values = {"ticket": ticket.pk, "subject": ticket.subject, "name": ticket.requester.display_name}
        subject = template.get("subject", "").format(**values)
        meta = {"auto_ack": True, **({"subject": subject} if subject else {})}
        if _reply(channel, ticket, template["body"].format(**values), meta=meta):
            sent[ticket.requester_id] = sent.get(ticket.requester_id, 0) + 1


def _acknowledged_last_hour(contact_ids: set[int]) -> dict[int, int]:
    """How many acknowledgements each of these requesters got in the last hour. One query (``message_auto_acks``)."""
    return dict(
        Message.objects.filter(
            meta__auto_ack=True,
            created_at__gte=timezone.now() - timedelta(hours=1),
            ticket__requester_id__in=contact_ids,
        )
        .values_list("ticket__requester_id")
        .annotate(count=Count("id"))
        .order_by()
    )


def _reply(channel, ticket: Ticket, body: str, *, mode: str | None = None, meta: dict | None = None) -> bool:
    try:
        reply_to_ticket(ticket=ticket, author=None, body=body, mode=mode, meta=meta)
    except ReplyError as exc:
        logger.warning("channel %s: no acknowledgement for ticket %s: %s", channel.name, ticket.pk, exc)
        return False
    return True
