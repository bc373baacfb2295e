"""The view tabs' counts, cheap enough to show on every queue render and every 5-second poll.

Counting the shared views (unassigned, all open, pending, resolved) scans the whole ticket table (its cost
at 100,000 tickets is in docs/benchmarks.md), and is the same for every agent. So it runs at most once per
``CONSOLE_VIEW_COUNTS_TTL`` seconds for the whole desk and is kept in the cache (Redis in production,
so every web process shares it). "My open" differs per agent and is one index read, so it is always
exact. Shared counts may lag by up to the TTL; the rows themselves are never cached.

While the cache is down the shared counts are hidden (None), not counted on every request: every agent's
5-second poll would scan the ticket table. "My open" stays.
"""

from collections import defaultdict

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count

from channels_ingest.outages import is_outage, warn_outage
from tickets.models import Ticket

SHARED_COUNTS_KEY = "console:view-counts:v2"  # v2: with the SLA views (breaching, breached)


def view_counts(user) -> dict[str, int | None]:
    """Each view's count by key; None for the shared ones while the cache is down."""
    mine = Ticket.objects.assigned_open(user).aggregate(mine=Count("pk"))["mine"]
    try:
        shared = cache.get(SHARED_COUNTS_KEY)
        if shared is None:
            shared = Ticket.objects.view_counts()
            cache.set(SHARED_COUNTS_KEY, shared, settings.CONSOLE_VIEW_COUNTS_TTL)
    except Exception as exc:
        if not is_outage(exc):
            raise
        warn_outage("queue view counts hidden: the cache is unavailable", exc)
        return defaultdict(lambda: None, mine=mine)
    return {"mine": mine, **shared}


def forget_view_counts() -> None:
    """After an agent's own change, so the tabs they return to agree with what they just did."""
    try:
        cache.delete(SHARED_COUNTS_KEY)
    except Exception as exc:
        if not is_outage(exc):
            raise
        warn_outage("queue view counts not refreshed: the cache is unavailable", exc)
