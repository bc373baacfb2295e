"""Queueing the pipeline's Celery tasks: by name, and never failing the caller for a broker outage.

``tasks.py`` imports every workflow module, so no workflow module imports ``tasks.py``: they queue its
tasks by the names below. The names are also what the broker and beat's schedule carry.
"""

import enum
import logging
from collections.abc import Iterable

from celery import current_app
from django.db import transaction

from .outages import is_outage

logger = logging.getLogger(__name__)


class TaskName(enum.StrEnum):
    POLL = "channels_ingest.poll_channel"
    INGEST = "channels_ingest.ingest_channel"
    DESCRIBE_SENDERS = "channels_ingest.describe_senders"
    DELIVER = "channels_ingest.deliver_message"
    DOWNLOAD = "channels_ingest.fetch_attachment"
    SWEEP = "channels_ingest.sweep"
    REFRESH_STATE = "channels_ingest.refresh_state"
    SLA_SCAN = "channels_ingest.sla_scan"


def enqueue(name: TaskName, *args) -> None:
    """Queue a task. If the broker is down, say so and carry on: the work is in the database, and beat's
    sweep queues it again once the broker is back."""
    try:
        current_app.tasks[name].delay(*args)
    except Exception as exc:
        if not is_outage(exc):
            raise
        logger.error("could not queue %s%r: %s; the sweep will retry", name, args, exc)


def enqueue_each(name: TaskName, ids: Iterable[int]) -> int:
    """Queue one task per id (each with that id alone); returns how many were queued."""
    ids = list(ids)
    for item_id in ids:
        enqueue(name, item_id)
    return len(ids)


def enqueue_on_commit(name: TaskName, *args) -> None:
    """Queue a task once the current transaction commits, so it never runs on rows that rolled back."""
    transaction.on_commit(lambda: enqueue(name, *args))
