"""Who else has a ticket page open, and who is typing on it: heartbeats kept in the cache with a TTL.

Each open page POSTs a heartbeat every ``HEARTBEAT_SECONDS``. An agent's presence is one cache entry per
(ticket, agent) that expires ``PRESENCE_TTL_SECONDS`` after their last heartbeat, so a closed tab, a crashed
laptop or a lost network disappears on its own; nothing is written to the database. A roster entry per
ticket lists the agents' ids, so the others are read with one ``get_many``. The roster is rewritten only
when someone joins or expires; if two agents join at the same instant one id may be lost, and that agent's
next heartbeat adds it back.

The cache must be shared by all web processes (Redis, or the file cache of the embedded default). While it
is down, presence is off: the heartbeat answers that it is unavailable, and nothing else is affected.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from channels_ingest.outages import is_outage, warn_outage

#: How often an open ticket page sends its heartbeat (console.js and the template use it).
HEARTBEAT_SECONDS = 3
#: The roster outlives any one presence; an expired roster is rebuilt by the next heartbeat.
ROSTER_SECONDS = 3600

VIEWING, TYPING = "viewing", "typing"
REPLY, NOTE = "reply", "note"
STATES = (VIEWING, TYPING)
KINDS = (REPLY, NOTE)


@dataclass(frozen=True)
class Presence:
    user_id: int
    name: str
    state: str = VIEWING
    #: What they are typing: a reply or an internal note.
    kind: str = REPLY


def _roster_key(ticket_id):
    return f"presence:{ticket_id}"


def _presence_key(ticket_id, user_id):
    return f"presence:{ticket_id}:{user_id}"


def heartbeat(ticket_id, user, *, state=VIEWING, kind=REPLY) -> None:
    """``user`` has the ticket open (and is typing, or not): keep them present for another TTL.

    Two or three cache operations, whatever the number of people on the ticket.
    """
    name = user.get_full_name() or user.get_username()
    # Plain values, not the dataclass: entries written by an older deploy still read back.
    presence = {"name": name, "state": state if state in STATES else VIEWING, "kind": kind if kind in KINDS else REPLY}
    cache.set(_presence_key(ticket_id, user.pk), presence, timeout=settings.PRESENCE_TTL_SECONDS)
    roster = cache.get(_roster_key(ticket_id)) or set()
    if user.pk not in roster:
        cache.set(_roster_key(ticket_id), roster | {user.pk}, timeout=ROSTER_SECONDS)


def check_in(ticket_id, user, *, state=VIEWING, kind=REPLY) -> list[Presence] | None:
    """The heartbeat, and who else is here; None when presence is unavailable (the cache is down)."""
    try:
        heartbeat(ticket_id, user, state=state, kind=kind)
        return others_present(ticket_id, user)
    except Exception as exc:
        if not is_outage(exc):
            raise
        warn_outage("presence off: the cache is unavailable", exc)
        return None


def leave(ticket_id, user) -> None:
    """``user`` closed the page: gone now rather than when the TTL runs out."""
    try:
        cache.delete(_presence_key(ticket_id, user.pk))
    except Exception as exc:
        if not is_outage(exc):
            raise
        warn_outage("presence off: the cache is unavailable", exc)


def others_present(ticket_id, user) -> list[Presence]:
    """Who else has the ticket open, by name; typing first. One ``get_many`` (and a roster rewrite when
    someone has expired)."""
    roster = cache.get(_roster_key(ticket_id)) or set()
    keys = {_presence_key(ticket_id, user_id): user_id for user_id in roster}
    found = cache.get_many(list(keys))
    present = [Presence(keys[key], value["name"], value["state"], value["kind"]) for key, value in found.items()]
    alive = {p.user_id for p in present}
    if alive != roster:
        cache.set(_roster_key(ticket_id), alive, timeout=ROSTER_SECONDS)
    others = [p for p in present if p.user_id != user.pk]
    return sorted(others, key=lambda p: (p.state != TYPING, p.name.casefold(), p.user_id))


def digest(presences: list[Presence] | None) -> str:
    """A short fingerprint of what a page shows, so a heartbeat can answer "no change" (204) instead."""
    if presences is None:
        return "unavailable"
    text = "|".join(f"{p.user_id}:{p.name}:{p.state}:{p.kind}" for p in presences)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
