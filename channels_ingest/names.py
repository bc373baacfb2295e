"""People's names: looked up on the platform after ingestion, never during it, and cached.

A profile lookup is a per-person call with its own rate limit (Slack's ``users.info``). Ingestion therefore
uses only names already in the cache; a ``describe_senders`` task then asks the platform for the rest, caches
them for a day (the Django cache: Redis in production) and updates the people they belong to. A new
person's name appears a moment after their first message.

The cache is only a shortcut here: while it is down, ingestion goes on without cached names and the lookup
asks the platform and names the people without keeping the answer.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache

from channel_adapters.base import Envelope, Sender
from tickets.inbound import refresh_identities

from .models import Channel
from .outages import is_outage, warn_outage
from .queueing import TaskName, enqueue_on_commit

NAME_CACHE_SECONDS = 24 * 3600
#: A person the platform could not name (no such profile, no permission, or the platform was down: the adapter
#: cannot say which) is not asked about again for this long, so a busy conversation queues no lookup per batch.
MISS_CACHE_SECONDS = 10 * 60
_MISS = {"unknown": True}


def cache_key(sender: Sender) -> str:
    """Hashed: an id may hold anything a platform or a mail header gives (spaces, any script, 1,000 characters),
    which not every cache backend takes in a key."""
    digest = hashlib.sha256(f"{sender.namespace}\0{sender.external_id}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"sender-name:{digest}"


def _with_profile(sender: Sender, profile: dict) -> Sender:
    return Sender(namespace=sender.namespace, external_id=sender.external_id, **profile)


def _cached_profiles(keys: list[str]) -> dict:
    try:
        return cache.get_many(keys)
    except Exception as exc:
        if not is_outage(exc):
            raise
        warn_outage("sender names not read: the cache is unavailable", exc)
        return {}


def _keep_profiles(profiles: dict, seconds: int = NAME_CACHE_SECONDS) -> None:
    if not profiles:
        return
    try:
        cache.set_many(profiles, seconds)
    except Exception as exc:
        if not is_outage(exc):
            raise
        warn_outage("sender names not kept: the cache is unavailable", exc)


def with_known_names(channel: Channel, envelopes: list[Envelope]) -> list[Envelope]:
    """The envelopes with the names already cached filled in; the other senders are looked up after commit."""
    senders = {e.sender for e in envelopes if e.sender and not e.sender.display_name}
    if not senders:
        return envelopes
    keys = {sender: cache_key(sender) for sender in senders}
    profiles = _cached_profiles(list(keys.values()))
    known = {
        sender.external_id: _with_profile(sender, profiles[key])
        for sender, key in keys.items()
        if key in profiles and profiles[key] != _MISS
    }
    missed = {sender.external_id for sender, key in keys.items() if profiles.get(key) == _MISS}
    unknown = [vars(sender).copy() for sender in senders if sender.external_id not in known.keys() | missed]
    if unknown:
        enqueue_on_commit(TaskName.DESCRIBE_SENDERS, channel.pk, unknown)
    return [
        Envelope(**{**vars(e), "sender": known[e.sender.external_id]})
        if e.sender and e.sender.external_id in known
        else e
        for e in envelopes
    ]


def describe_senders(channel_id: int, senders: list[Sender]) -> int:
    """Names for these senders: from the cache, else from the platform (then cached); the people they belong to
    are updated. Returns how many were found.

    Several ingest batches may queue a lookup of the same new person before the first one finishes: the cache
    is read first, so the platform is asked once. Runs after ingestion, so the channel may have been deleted
    meanwhile: then there is nothing to do.
    """
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return 0
    keys = {sender: cache_key(sender) for sender in senders}
    cached = _cached_profiles(list(keys.values()))
    described = {
        sender.external_id: _with_profile(sender, cached[key])
        for sender, key in keys.items()
        if key in cached and cached[key] != _MISS
    }
    unknown = [sender for sender, key in keys.items() if sender.external_id not in described and key not in cached]
    fetched = channel.adapter().describe_senders(unknown) if unknown else {}
    _keep_profiles(
        {
            cache_key(sender): {"handle": sender.handle, "display_name": sender.display_name, "email": sender.email}
            for sender in fetched.values()
        }
    )
    _keep_profiles({keys[s]: _MISS for s in unknown if s.external_id not in fetched}, MISS_CACHE_SECONDS)
    described.update(fetched)
    refresh_identities(list(described.values()))
    return len(described)
