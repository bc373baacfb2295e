"""Thin Celery tasks: ids in, services do the work, safe to run twice."""

import logging

from celery import shared_task
from kombu.exceptions import OperationalError

from . import attachments, delivery, services
from .adapters.base import Sender

logger = logging.getLogger(__name__)


def enqueue(task, *args):
    """Queue a task. If the broker is down, say so and carry on: the work is
    in the database, and beat's sweep queues it again once the broker is back."""
    try:
        task.delay(*args)
    except (OperationalError, OSError) as exc:
        logger.error("could not queue %s%r: %s; the sweep will retry", task.name, args, exc)


@shared_task(name="channels_ingest.poll_channel")
def poll_channel(channel_id):
    services.poll_channel(channel_id)


@shared_task(name="channels_ingest.ingest_channel")
def ingest_channel(channel_id):
    services.ingest_channel(channel_id)


@shared_task(name="channels_ingest.describe_senders")
def describe_senders(channel_id, senders):
    services.describe_senders(channel_id, [Sender(**sender) for sender in senders])


@shared_task(name="channels_ingest.deliver_message", bind=True, max_retries=None)
def deliver_message(self, message_id):
    outcome = delivery.deliver_message(message_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(name="channels_ingest.fetch_attachment", bind=True, max_retries=None)
def fetch_attachment(self, attachment_id):
    outcome = attachments.download_attachment(attachment_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(name="channels_ingest.sweep")
def sweep():
    services.sweep()
