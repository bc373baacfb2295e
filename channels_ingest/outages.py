"""Outage or bad input: the one rule by which the pipeline decides between "wait and retry" and "fail".

An outage of the database, the cache or the broker says nothing about the message being handled. The work
stays where it is (a pending inbound row, a queued reply) and is retried with backoff, or found again by the
sweep. Only an error about the data itself ends as a failure of that one item: an adapter or parser that
cannot understand a payload, or a database that refuses one row's values (``DataError``, ``IntegrityError``).

Of the database's errors only ``OperationalError`` (connection refused or lost, server starting or shutting
down, SQLite locked, deadlocks, timeouts) and ``InterfaceError`` (the connection is closed) are outages. The
others are left out on purpose: ``ProgrammingError``, ``NotSupportedError`` and ``InternalError`` (a failed
transaction carried on, corrupted data) are bugs or damage that may depend on what one row holds, and Django's
own bare ``DatabaseError`` says a row was not where it should be. Called outages, they would retry that row
forever and hold up its whole channel behind it; as failures, the row waits, payload kept, for a fix and a
re-queue.
"""

from __future__ import annotations

import functools
import logging

import redis.exceptions
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerUnavailable

from .backoff import backoff_delay

logger = logging.getLogger(__name__)

#: How often a task stopped by an outage retries itself (about 15 minutes of backoff); the sweep takes over then.
OUTAGE_RETRIES = 10

OUTAGES = (
    # The database.
    OperationalError,
    InterfaceError,
    # The cache (Django's Redis backend raises redis-py's errors as they are).
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,  # a replica during a failover
    # The broker, as Celery reports a failed publish.
    BrokerUnavailable,
    # Sockets, and the file cache of the embedded mode (disk full, permissions).
    OSError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or the error it was raised from) is an outage of the database, cache or broker, rather
    than something wrong with the data at hand."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OUTAGES):
            return True
        seen = seen.__cause__
    return False


def warn_outage(consequence: str, exc: BaseException) -> None:
    """One line in the log for a step that degraded (``consequence``: what the outage left undone), without a
    traceback: during an outage every request would add one."""
    logger.warning("%s (%s: %s)", consequence, type(exc).__name__, exc)


def retried_through_outages(task_body):
    """For a bound Celery task (``bind=True, max_retries=OUTAGE_RETRIES``): an outage becomes a retry with
    backoff (Celery's countdown); any other error propagates as it is."""

    @functools.wraps(task_body)
    def run(task, *args):
        try:
            return task_body(task, *args)
        except Exception as exc:
            if not is_outage(exc):
                raise
            countdown = backoff_delay(task.request.retries + 1)
            warn_outage(f"{task.name}{args!r} stopped by an outage, retrying in {countdown:.0f}s", exc)
            raise task.retry(countdown=countdown, exc=exc) from None

    return run
