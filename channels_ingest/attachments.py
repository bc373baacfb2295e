"""Downloading the files that came with inbound messages, after ingestion (which never waits on them).

The adapter fetches the bytes; ``tickets.attachments`` keeps them. Transient errors are retried with
backoff up to ATTACHMENT_FETCH_MAX_ATTEMPTS; anything else fails the attachment with the platform's
error, shown on the ticket.
"""

import logging
from dataclasses import dataclass

from django.conf import settings

from tickets.attachments import claim_download, fail_download, retry_download_later, store_download

from .adapters.base import AdapterError, CredentialsError, TransientError
from .delivery import retry_delay
from .models import Channel
from .usage import record_usage

logger = logging.getLogger(__name__)

@dataclass
class DownloadOutcome:
    status: str
    retry_in: float | None = None


def download_attachment(attachment_id: int) -> DownloadOutcome:
    """Fetch and keep one pending attachment. Does nothing unless it is still pending."""
    pending = claim_download(attachment_id)
    if pending is None:
        return DownloadOutcome(status="noop")
    channel = Channel.objects.filter(pk=pending.channel_id).first() if pending.channel_id else None
    if channel is None:
        fail_download(attachment_id, "The conversation this file came from is gone.")
        return DownloadOutcome(status="failed")
    adapter = channel.adapter()
    try:
        return DownloadOutcome(status=store_download(attachment_id, adapter.fetch_attachment(pending.ref)))
    except TransientError as exc:
        if pending.attempts >= settings.ATTACHMENT_FETCH_MAX_ATTEMPTS:
            fail_download(attachment_id, f"{exc} (gave up after {pending.attempts} attempts)")
            return DownloadOutcome(status="failed")
        delay = retry_delay(pending.attempts, exc)
        retry_download_later(attachment_id, f"Attempt {pending.attempts} failed: {exc}", delay)
        return DownloadOutcome(status="retry", retry_in=delay)
    except AdapterError as exc:
        if isinstance(exc, CredentialsError):
            channel.record_error(f"Credentials rejected: {exc}", unhealthy=True)
        logger.warning("attachment %s: download failed: %s", attachment_id, exc)
        fail_download(attachment_id, str(exc))
        return DownloadOutcome(status="failed")
    finally:
        record_usage(channel, adapter.usage)
