"""What X bills for reads on pay-per-use: each resource an answer returns, once per resource per UTC day.

docs.x.com/x-api/getting-started/pricing: reads are "charged per resource returned in the response",
and "all resources are deduplicated within a 24-hour UTC day window" (the window resets at midnight
UTC; it applies to Posts, users, and every other billable resource). X calls the dedup a soft
guarantee; the emulator keeps it always, so a meter can be checked against it exactly.
"""

import threading
from collections import Counter
from datetime import UTC, datetime

#: The kind of resource in an answer's ``data``, by the route's rate-limit endpoint name. GET /2/users/me (a
#: credentials check) is left out: X's price list does not say whether, or as what, it is billed.
DATA_KINDS = {"mentions": "post", "tweets": "post", "dm_events": "dm_event", "users": "user"}


class ReadBilling:
    """Resources returned (every time) and billed (first time in a UTC day), by kind: post, dm_event, user, media."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._day = ""
            self._billed_today: set[tuple[str, str]] = set()
            self._returned: Counter = Counter()
            self._billed: Counter = Counter()

    def record(self, endpoint: str, answer: dict) -> None:
        """Count what a successful read returned: its ``data``, and the users and media in ``includes``."""
        kind = DATA_KINDS.get(endpoint)
        if kind is None:
            return  # writes are billed per request, not per resource
        data = answer.get("data") or []
        items = [(kind, item.get("id")) for item in (data if isinstance(data, list) else [data])]
        includes = answer.get("includes") or {}
        items += [("user", user.get("id")) for user in includes.get("users", [])]
        items += [("media", media.get("media_key")) for media in includes.get("media", [])]
        day = datetime.now(UTC).date().isoformat()
        with self._lock:
            if day != self._day:
                self._day, self._billed_today = day, set()
            for resource in items:
                self._returned[resource[0]] += 1
                if resource not in self._billed_today:
                    self._billed_today.add(resource)
                    self._billed[resource[0]] += 1

    def snapshot(self) -> dict:
        with self._lock:
            return {"returned": dict(self._returned), "billed": dict(self._billed)}
