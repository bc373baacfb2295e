"""Thin Celery tasks: ids in, a workflow module does the work, safe to run twice.

Only this module imports the workflows' task entry points; they queue each other by name
(``queueing.TaskName``).
"""

from celery import shared_task

from channel_adapters.base import Sender
from tickets import sla

from . import delivery, downloads, ingest, names, polling, sweep
from .outages import OUTAGE_RETRIES, retried_through_outages
from .queueing import TaskName


@shared_task(name=TaskName.POLL)
def poll_channel(channel_id):
    polling.poll_channel(channel_id)


@shared_task(name=TaskName.INGEST, bind=True, max_retries=OUTAGE_RETRIES)
@retried_through_outages
def ingest_channel(self, channel_id):
    ingest.ingest_channel(channel_id)


@shared_task(name=TaskName.DESCRIBE_SENDERS, bind=True, max_retries=OUTAGE_RETRIES)
@retried_through_outages
def describe_senders(self, channel_id, senders):
    names.describe_senders(channel_id, [Sender(**sender) for sender in senders])


# An outage before the claim is retried; one after it leaves the reply ``sending`` for the sweep, which checks
# whether it arrived before sending it again (delivery.recover_stalled_sends).
@shared_task(name=TaskName.DELIVER, bind=True, max_retries=None)
@retried_through_outages
def deliver_message(self, message_id):
    outcome = delivery.deliver_message(message_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(name=TaskName.DOWNLOAD, bind=True, max_retries=None)
def fetch_attachment(self, attachment_id):
    outcome = downloads.download_attachment(attachment_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(name=TaskName.REFRESH_STATE)
def refresh_state(channel_id):
    polling.refresh_state(channel_id)


@shared_task(name=TaskName.SWEEP)
def run_sweep():
    sweep.sweep()


@shared_task(name=TaskName.SLA_SCAN)
def run_sla_scan():
    """Record the SLA warnings and breaches that have come due (``tickets.sla.scan``)."""
    result = sla.scan()
    return {"checked": result.checked, "warnings": result.warnings, "breaches": result.breaches}
