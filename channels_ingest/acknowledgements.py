"""The desk's own answer to a message that opened a ticket, with the ticket's number.

Two options of a channel's config, for any kind of channel:

- ``public_ack``: a template answering a public message where everyone saw it (``"Ticket #{ticket} is open"``);
  it may use the placeholders below too (``{expected_response}`` in English).
- ``auto_ack``: ``{"subject": ..., "body": ...}``, answering any other message. Templates may use ``{ticket}``
  (the number, required in the body), ``{subject}`` (the ticket's) and ``{name}`` (the requester's). The reply
  keeps ``{"auto_ack": true, "subject": <rendered subject>}`` in its meta, for channels whose messages have a
  subject (email).

  When the ticket must have a first response by a time (``Ticket.first_response_due_at``, which its SLA policy
  sets), ``{first_response_due}`` names it ("14:00 CET on 5 Dec", in the channel's ``time_zone``, else UTC) and
  ``{expected_response}`` is a sentence saying so: ``auto_ack.expected_response`` (``"We aim to answer by
  {first_response_due}."`` by default). Without a due time both are empty, so write the body to read well either
  way ("Ticket #{ticket} is open. {expected_response}").

  ``auto_ack.languages`` holds the same templates per language (``{"de": {"body": ..., "subject": ...,
  "expected_response": ...}}``): a requester gets those of their language (``Contact.language``; ``de`` serves
  ``de-AT``), else those of the channel's ``language``, else the ones at the top (English). A language's
  template may leave out a part: the top one's serves.

Loop protection: no acknowledgement to a robot (``tickets.robots``), and at most
``AUTO_ACK_PER_SENDER_PER_HOUR`` to one requester in any hour. Each ticket is acknowledged once: only the
message that opened it is, and a message already stored opens nothing when it comes again.
"""

from __future__ import annotations

import logging
import re
import string
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from channel_adapters.base import ConfigError, Envelope
from tickets.inbound import Outcome
from tickets.models import Message, Ticket, time_zone_names
from tickets.replies import ReplyError, reply_to_ticket
from tickets.robots import is_robot

logger = logging.getLogger(__name__)

#: What an ``auto_ack`` template may name.
PLACEHOLDERS = ("ticket", "subject", "name", "first_response_due", "expected_response")
#: The parts of an ``auto_ack`` (or one language's) template.
PARTS = ("subject", "body", "expected_response")
DEFAULT_EXPECTED_RESPONSE = "We aim to answer by {first_response_due}."


def validate(config: dict) -> None:
    """Refuse acknowledgement templates that cannot work (``ConfigError``)."""
    template = config.get("public_ack", "")
    if template and (not isinstance(template, str) or "{ticket}" not in template):
        raise ConfigError("public_ack must contain {ticket} (the ticket number).")
    if template:
        _check_placeholders("public_ack", template)
    if "auto_ack" not in config:
        return
    ack = config["auto_ack"]
    if not isinstance(ack, dict) or set(ack) - {*PARTS, "languages"}:
        raise ConfigError(
            'auto_ack must be an object with a "body" and, optionally, a "subject", an "expected_response" and '
            '"languages".'
        )
    _check_parts("auto_ack", ack)
    if "{ticket}" not in ack.get("body", ""):
        raise ConfigError("auto_ack.body must contain {ticket} (the ticket number).")
    languages = ack.get("languages", {})
    if not isinstance(languages, dict):
        raise ConfigError('auto_ack.languages must be an object: {"de": {"body": ...}, ...}.')
    for language, templates in languages.items():
        name = f"auto_ack.languages.{language}"
        if not isinstance(templates, dict) or set(templates) - set(PARTS):
            raise ConfigError(f'{name} must be an object with a "body", a "subject" or an "expected_response".')
        _check_parts(name, templates)
        if "body" in templates and "{ticket}" not in templates["body"]:
            raise ConfigError(f"{name}.body must contain {{ticket}} (the ticket number).")
    if not isinstance(config.get("language", ""), str) or not isinstance(config.get("time_zone", ""), str):
        raise ConfigError("language and time_zone must be text.")
    if config.get("time_zone") and config["time_zone"] not in time_zone_names():
        raise ConfigError(f"time_zone {config['time_zone']} is not a time zone name such as Europe/Berlin.")


def _check_parts(name: str, templates: dict) -> None:
    for part in PARTS:
        if not isinstance(templates.get(part, ""), str):
            raise ConfigError(f"{name}.{part} must be text.")
        _check_placeholders(f"{name}.{part}", templates.get(part, ""))


def _check_placeholders(name: str, template: str) -> None:
    allowed = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
        unknown = [field for field in fields if field not in PLACEHOLDERS]
        if not unknown:
            template.format(**dict.fromkeys(PLACEHOLDERS, ""))  # what parsing misses, e.g. a field in a format spec
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
            {
                ticket_id
                for envelope, ticket_id in opened
                if not envelope.public and envelope.sender and not is_robot(envelope.sender)
            },
        )


def _acknowledge_publicly(channel, template: str, ticket_ids: set[int]) -> None:
    for ticket in Ticket.objects.filter(pk__in=ticket_ids).select_related("requester").order_by("pk"):
        _reply(channel, ticket, _tidy(template.format(**_values(channel.config, ticket))), mode="public")


def templates_for(config: dict, language: str) -> dict[str, str]:
    """The ``auto_ack`` templates for a requester who reads ``language`` (may be empty): theirs, else the
    channel's language's, else the top ones; a part a language leaves out is the top one."""
    ack = config["auto_ack"]
    languages = {key.lower(): value for key, value in ack.get("languages", {}).items()}
    chosen: dict = {}
    for wanted in (language.lower(), language.lower().split("-")[0], str(config.get("language", "")).lower()):
        if wanted and wanted in languages:
            chosen = languages[wanted]
            break
    top = {"expected_response": DEFAULT_EXPECTED_RESPONSE, **{part: ack[part] for part in PARTS if part in ack}}
    return {part: chosen.get(part, top.get(part, "")) for part in PARTS}


def due_text(due: datetime | None, zone_name: str = "") -> str:
    """A due time as anyone reads it, whatever their language: "14:00 CET on 5 Dec"; empty for None."""
    if due is None:
        return ""
    local = due.astimezone(ZoneInfo(zone_name or "UTC"))
    return f"{local:%H:%M} {local.tzname()} on {local.day} {MONTHS[local.month - 1]}"


#: Month abbreviations as numbers' neighbours read them everywhere (not the server's locale).
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def render(config: dict, ticket: Ticket) -> tuple[str, str]:
    """The acknowledgement's (subject, body) for ``ticket``, as the channel's ``config`` says."""
    templates = templates_for(config, ticket.requester.language)
    values = _values(config, ticket, templates["expected_response"])
    return templates["subject"].format(**values), _tidy(templates["body"].format(**values))


def _sla_zone(ticket: Ticket) -> str:
    """The zone of the calendar the ticket's SLA counts in: its due time reads best there (office hours Berlin)."""
    policy = ticket.sla_policy if ticket.sla_policy_id else None
    return policy.calendar.time_zone if policy is not None else ""


def _values(config: dict, ticket: Ticket, expected_response: str = DEFAULT_EXPECTED_RESPONSE) -> dict:
    """What the templates may name, for ``ticket``: ``expected_response`` is empty without a due time."""
    due = due_text(ticket.first_response_due_at, config.get("time_zone", "") or _sla_zone(ticket))
    values = {
        "ticket": ticket.pk,
        "subject": ticket.subject,
        "name": ticket.requester.display_name,
        "first_response_due": due,
        "expected_response": "",
    }
    if due:
        values["expected_response"] = expected_response.format(**values)
    return values


def _tidy(text: str) -> str:
    """An empty sentence leaves no doubled space, nor a space before the end of a line."""
    return re.sub(r"[ \t]+(?=\n|$)", "", re.sub(r"  +", " ", text))


def _acknowledge(channel, ticket_ids: set[int]) -> None:
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
        subject, body = render(channel.config, ticket)
        meta = {"auto_ack": True, **({"subject": subject} if subject else {})}
        if _reply(channel, ticket, body, meta=meta):
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
