"""Routing: the rules admins keep (``RoutingRule``) decide, when a message opens a ticket, its team or queue,
priority, type, category, tags and assignee; a team's automatic assignment picks one of its available members.

Rules are tried in their order (``position``). The first rule whose conditions all hold applies, and routing
stops there, unless that rule says ``continue_matching``: then the rules below it are tried as well, each seeing
the ticket as the rules before it left it (a later rule's type or category counts), and a later rule's action
wins where two set the same thing. No rule matching leaves the ticket as it was opened.

Each applied rule is one ``TicketEvent.Kind.ROUTED`` on the ticket's timeline ("Routed by rule 'Network issues':
team Network, priority P2 · High"). ``route_new_tickets`` runs in the transaction that inserts the tickets
(``tickets.inbound``), so a ticket is routed exactly once: a message delivered again opens nothing.

Regular expressions come from admins but run on anyone's text. They are compiled with the ``regex`` module and
every search has a time limit (``PATTERN_TIMEOUT``) on a capped text (``PATTERN_TEXT_LIMIT``): Python's ``re``
cannot be interrupted, and a pattern with nested quantifiers can backtrack for minutes on a few dozen
characters, so capping the input alone would not be enough. A pattern that needs too long on a probe text is
refused when saved; one that times out on a real message counts as not matching, and is logged.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

import regex
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from .audit import record_change
from .models import Profile, RoutingRule, Team, Ticket, TicketEvent
from .patterns import PATTERN_TEXT_LIMIT, PATTERN_TIMEOUT, compile_pattern

logger = logging.getLogger(__name__)

#: Who the timeline says routed a ticket.
ROUTING_ACTOR = "Routing"


@lru_cache(maxsize=1024)
def _keyword(word: str) -> re.Pattern:
    # An escaped literal: linear time, so the standard module is fine here.
    return re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)


def split_words(text: str) -> list[str]:
    return [word.strip() for word in text.split(",") if word.strip()]


@dataclass
class Sample:
    """What the rules look at: a new ticket, or the rule tester's sample message."""

    text: str
    at: datetime
    channel_id: int | None = None
    channel_kind: str = ""
    department: str = ""
    vip: bool = False
    language: str = ""
    kind: str = Ticket.Kind.INCIDENT
    category_id: int | None = None


def matches(rule: RoutingRule, sample: Sample) -> bool:
    """Whether every condition of ``rule`` holds for ``sample`` (an empty condition always does)."""
    if rule.channel_kind and rule.channel_kind != sample.channel_kind:
        return False
    if rule.channel_id and rule.channel_id != sample.channel_id:
        return False
    if rule.department and rule.department.casefold() != sample.department.casefold():
        return False
    if rule.vip and (rule.vip == RoutingRule.Vip.YES) != sample.vip:
        return False
    if rule.language and not _same_language(rule.language, sample.language):
        return False
    if rule.kind and rule.kind != sample.kind:
        return False
    if rule.category_id and rule.category_id != sample.category_id:
        return False
    if rule.time_from is not None and rule.time_until is not None:
        local = sample.at.astimezone(ZoneInfo(rule.time_zone or "UTC")).time()
        if not in_window(local, rule.time_from, rule.time_until):
            return False
    words = split_words(rule.keywords)
    if words and not any(_keyword(word).search(sample.text) for word in words):
        return False
    return not rule.pattern or _search(rule, sample.text)


def _same_language(wanted: str, language: str) -> bool:
    """``de`` matches ``de`` and ``de-AT``."""
    wanted, language = wanted.lower(), language.lower()
    return language == wanted or language.startswith(f"{wanted}-")


def in_window(moment: time, start: time, until: time) -> bool:
    """Whether ``moment`` is in [start, until); a window whose end is before its start crosses midnight, and one
    whose ends are equal is the whole day."""
    if start == until:
        return True
    if start < until:
        return start <= moment < until
    return moment >= start or moment < until


def _search(rule: RoutingRule, text: str) -> bool:
    try:
        return compile_pattern(rule.pattern).search(text[:PATTERN_TEXT_LIMIT], timeout=PATTERN_TIMEOUT) is not None
    except TimeoutError:
        logger.warning("routing rule %s: its expression timed out; taken as not matching", rule.pk)
        return False
    except regex.error:
        logger.warning("routing rule %s: its expression does not compile; taken as not matching", rule.pk)
        return False


def describe(rule: RoutingRule) -> list[str]:
    """What ``rule`` does, in words: ["team Network", "priority P2 · High", "tags vpn"]."""
    done = []
    if rule.set_queue_id:
        done.append(f"queue {rule.set_queue}")
    if rule.set_team_id:
        done.append(f"team {rule.set_team}")
    if rule.set_priority:
        done.append(f"priority {Ticket.Priority(rule.set_priority).label}")
    if rule.raise_priority:
        done.append("priority raised one step")
    if rule.set_kind:
        done.append(f"type {Ticket.Kind(rule.set_kind).label}")
    if rule.set_category_id:
        done.append(f"category {rule.set_category}")
    if rule.add_tags:
        done.append(f"tags {', '.join(split_words(rule.add_tags))}")
    if rule.set_assignee_id:
        done.append(f"assignee {_name(rule.set_assignee)}")
    return done or ["nothing"]


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


def active_rules() -> list[RoutingRule]:
    return list(
        RoutingRule.objects.filter(active=True).select_related("set_queue", "set_team", "set_category", "set_assignee")
    )


def matching_rules(rules: list[RoutingRule], sample: Sample) -> list[RoutingRule]:
    """The rules that apply to ``sample``, in order: up to the first match that does not continue. ``sample``'s
    type and category follow what each applied rule sets."""
    applied = []
    for rule in rules:
        if not matches(rule, sample):
            continue
        applied.append(rule)
        sample.kind = rule.set_kind or sample.kind
        sample.category_id = rule.set_category_id or sample.category_id
        if not rule.continue_matching:
            break
    return applied


def route_new_tickets(texts: dict[int, str]) -> None:
    """Apply the routing rules to tickets just opened (``{ticket id: the text of the message that opened it}``).
    Must run in the transaction that inserted them. One query without rules; with rules, four, and a few more
    for each ticket a team's automatic assignment assigns."""
    if not texts:
        return
    rules = active_rules()
    if not rules:
        return
    tickets = Ticket.objects.filter(pk__in=texts).select_related("requester", "channel").order_by("pk")
    now = timezone.now()
    events, routed = [], []
    for ticket in tickets:
        sample = Sample(
            text=texts[ticket.pk],
            at=ticket.created_at,
            channel_id=ticket.channel_id,
            channel_kind=ticket.channel.kind if ticket.channel else "",
            department=ticket.requester.department,
            vip=ticket.requester.vip,
            language=ticket.requester.language,
            kind=ticket.kind,
            category_id=ticket.category_id,
        )
        applied = matching_rules(rules, sample)
        if not applied:
            continue
        for rule in applied:
            done = apply_rule(ticket, rule)
            events.append(
                TicketEvent(
                    ticket_id=ticket.pk,
                    kind=TicketEvent.Kind.ROUTED,
                    new_value=rule.name[:200],
                    reason=", ".join(done)[:200],
                    actor_label=ROUTING_ACTOR,
                    created_at=now,
                )
            )
        routed.append(ticket)
    if routed:
        Ticket.objects.bulk_update(routed, ["queue", "team", "priority", "kind", "category", "tags", "assignee"])
        TicketEvent.objects.bulk_create(events)


def apply_rule(ticket: Ticket, rule: RoutingRule) -> list[str]:
    """Change ``ticket`` (unsaved) as ``rule`` says; returns what was done, in words."""
    done = describe(rule)
    ticket.queue_id = rule.set_queue_id or ticket.queue_id
    ticket.team_id = rule.set_team_id or ticket.team_id
    if rule.set_priority:
        ticket.priority = rule.set_priority
    if rule.raise_priority:
        ticket.priority = min(ticket.priority + 1, Ticket.Priority.URGENT)
    ticket.kind = rule.set_kind or ticket.kind
    ticket.category_id = rule.set_category_id or ticket.category_id
    ticket.tags = list(dict.fromkeys([*(ticket.tags or []), *split_words(rule.add_tags)]))
    if rule.set_assignee_id:
        ticket.assignee_id = rule.set_assignee_id
    elif rule.set_team_id and rule.set_team.assignment and ticket.assignee_id is None:
        agent = assign_within(rule.set_team_id)
        if agent is not None:
            ticket.assignee_id = agent.pk
            done.append(f"assigned to {_name(agent)} ({Team.Assignment(rule.set_team.assignment).label.lower()})")
    return done


def available_members(team: Team):
    """The team's active members who are not away or offline (no profile: available), by id."""
    unavailable = [Profile.Availability.AWAY, Profile.Availability.OFFLINE]
    return (
        get_user_model()
        .objects.filter(teams=team, is_active=True)
        .exclude(profile__availability__in=unavailable)
        .order_by("pk")
    )


def assign_within(team_id: int):
    """The member the team's assignment picks for a new ticket, or None (no automatic assignment, nobody
    available). Locks the team's row, so two ingestions at once never pick from the same pointer."""
    with transaction.atomic():
        team = Team.objects.select_for_update().get(pk=team_id)
        members = available_members(team)
        if team.assignment == Team.Assignment.ROUND_ROBIN:
            agent = members.filter(pk__gt=team.last_assigned_id or 0).first() or members.first()
        elif team.assignment == Team.Assignment.LEAST_LOADED:
            agent = (
                members.annotate(
                    load=Count("assigned_tickets", filter=~Q(assigned_tickets__status__in=Ticket.CLOSED_STATUSES))
                )
                .order_by("load", "pk")
                .first()
            )
        else:
            return None
        if agent is not None:
            Team.objects.filter(pk=team.pk).update(last_assigned=agent)
        return agent


def dry_run(sample: Sample, rules: list[RoutingRule] | None = None) -> list[tuple[RoutingRule, list[str]]]:
    """What routing would do to ``sample``: each rule that would apply, and its actions in words. Saves nothing."""
    rules = active_rules() if rules is None else rules
    return [(rule, describe(rule)) for rule in matching_rules(rules, sample)]


# Admins keep the rules (console.routing_views); every change is in the audit log. ------------------------------

RULE_FIELDS = (
    "name",
    "position",
    "active",
    "continue_matching",
    "channel_kind",
    "channel",
    "keywords",
    "pattern",
    "department",
    "vip",
    "language",
    "kind",
    "category",
    "time_from",
    "time_until",
    "time_zone",
    "set_queue",
    "set_team",
    "set_priority",
    "raise_priority",
    "set_kind",
    "set_category",
    "add_tags",
    "set_assignee",
)


def rule_values(rule: RoutingRule) -> dict:
    """A rule as the audit log keeps it: names and plain values."""
    values = {}
    for name in RULE_FIELDS:
        value = getattr(rule, name)
        if hasattr(value, "pk"):
            value = str(value)
        elif isinstance(value, time):
            value = value.strftime("%H:%M")
        values[name] = value
    return values


def save_rule(rule: RoutingRule, *, actor, before: dict | None) -> RoutingRule:
    """Save a rule an admin created (placed last) or edited (``before``: its values as they were)."""
    with transaction.atomic():
        creating = rule.pk is None
        if creating:
            last = RoutingRule.objects.order_by("-position").values_list("position", flat=True).first()
            rule.position = (last or 0) + 1
        rule.save()
        after = rule_values(rule)
        if after != before:
            record_change(
                actor=actor,
                action="routing_rule.create" if creating else "routing_rule.update",
                target=rule,
                before=before,
                after=after,
            )
    return rule


def delete_rule(rule: RoutingRule, *, actor) -> None:
    with transaction.atomic():
        record_change(actor=actor, action="routing_rule.delete", target=rule, before=rule_values(rule), after=None)
        rule.delete()


def move_rule(rule: RoutingRule, *, up: bool, actor) -> None:
    """Swap ``rule`` with the one above (``up``) or below it; the rules are renumbered 1, 2, 3… on the way."""
    with transaction.atomic():
        rules = list(RoutingRule.objects.select_for_update().order_by("position", "id"))
        index = next(i for i, other in enumerate(rules) if other.pk == rule.pk)
        other = index - 1 if up else index + 1
        if not 0 <= other < len(rules):
            return
        rules[index], rules[other] = rules[other], rules[index]
        for position, each in enumerate(rules, start=1):
            each.position = position
        RoutingRule.objects.bulk_update(rules, ["position"])
        record_change(
            actor=actor,
            action="routing_rule.move",
            target=rule,
            before={"position": index + 1},
            after={"position": other + 1},
        )
