"""Thin Celery tasks: ids in, services do the work, safe to run twice."""

from celery import shared_task

from . import services


@shared_task(name="channels_ingest.poll_channel")
def poll_channel(channel_id):
    services.poll_channel(channel_id)


@shared_task(name="channels_ingest.ingest_channel")
def ingest_channel(channel_id):
    services.ingest_channel(channel_id)


@shared_task(name="channels_ingest.deliver_message", bind=True, max_retries=None)
def deliver_message(self, message_id):
    outcome = services.deliver_message(message_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(name="channels_ingest.sweep")
def sweep():
    services.sweep()
