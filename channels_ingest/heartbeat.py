"""A heartbeat: a thread that renews a claim in the database while the work holding it runs.

Polls (the channel's poll lease) and sends (a reply ``sending``) hold claims that others take over once they
lapse. Renewing from a thread of its own keeps a claim alive while the work waits on a platform (a client
waits up to its timeout, a poll's page or an upload may take many calls); the thread dies with its worker, so
a dead worker's claim lapses within its lease.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from django.db import DatabaseError, connections

logger = logging.getLogger(__name__)


class Heartbeat(threading.Thread):
    """Calls ``renew`` every ``every`` until stopped, until ``renew`` returns False (the claim is no longer
    ours), or after ``limit`` (work stuck that long lets its claim lapse). A renewal that meets a database
    error (an outage) is tried again at the next beat."""

    def __init__(self, name: str, renew: Callable[[], bool], *, every: timedelta, limit: timedelta):
        super().__init__(name=name, daemon=True)
        self.renew, self.every, self.limit = renew, every, limit
        self.stopped = threading.Event()

    def run(self):
        try:
            for _ in range(int(self.limit / self.every)):
                if self.stopped.wait(self.every.total_seconds()):
                    return
                try:
                    if not self.renew():
                        return
                except DatabaseError as exc:
                    logger.warning("%s: could not renew: %s", self.name, exc)
                    # Django reconnects only at a request's edges: a connection the outage broke would fail
                    # every later beat, and a live claim would lapse once the database is back.
                    connections.close_all()
        finally:
            connections.close_all()  # this thread's own connections

    def stop(self):
        self.stopped.set()
        # Bounded: a renewal waiting on a row that the work's own transaction has locked ends once that commits
        # (and then renews nothing if the claim was given up meanwhile).
        self.join(timeout=self.every.total_seconds())
