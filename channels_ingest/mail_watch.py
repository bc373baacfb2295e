"""Mail within seconds: mailboxes whose channel has ``idle`` on are watched with IMAP IDLE, and a poll is queued as
soon as the server announces new mail. The poll does the work (and its lease keeps it single), so a watcher that
stops or dies costs only latency: the channel's regular polls still run.

One process (``manage.py watch_mailboxes``) watches every such channel, a thread each; channels added, changed
or disabled are picked up within ``RESCAN_SECONDS``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading

from django.db import close_old_connections, connection

from channel_adapters.base import AdapterError

from .backoff import retry_delay
from .models import Channel
from .queueing import TaskName, enqueue

logger = logging.getLogger(__name__)

#: RFC 2177: a client re-issues IDLE at least every 29 minutes, or the server may drop it.
IDLE_SECONDS = 25 * 60
RESCAN_SECONDS = 60


def watched_channels() -> dict[int, str]:
    """Enabled channels configured to wait with IDLE: id → a digest of their settings and credentials, so a
    watcher restarts when either changes."""
    return {
        pk: hashlib.sha256(json.dumps([config, secrets], sort_keys=True).encode()).hexdigest()
        for pk, config, secrets in Channel.objects.filter(enabled=True, config__idle=True).values_list(
            "pk", "config", "secrets"
        )
    }


def watch_channel(channel_id: int, stop: threading.Event) -> None:
    """Wait for mail on one channel until ``stop``; queue a poll each time mail arrives."""
    failures = 0
    while not stop.is_set():
        channel = Channel.objects.filter(pk=channel_id, enabled=True).first()
        connection.close()  # not held through a wait of many minutes
        if channel is None:
            return
        try:
            arrived = channel.adapter().wait_for_mail(IDLE_SECONDS)
        except AdapterError as exc:
            failures += 1
            delay = retry_delay(failures, exc)
            logger.warning("channel %s: IDLE failed (%s); trying again in %.0fs", channel.name, exc, delay)
            stop.wait(delay)
            continue
        failures = 0
        if arrived:
            logger.info("channel %s: new mail announced; polling", channel.name)
            enqueue(TaskName.POLL, channel_id)
    connection.close()


def watch_mailboxes(stop: threading.Event) -> None:
    """Watch every channel with ``idle`` on, following changes, until ``stop``."""
    watchers: dict[int, tuple[str, threading.Event, threading.Thread]] = {}
    while not stop.is_set():
        close_old_connections()
        wanted = watched_channels()
        for pk, (fingerprint, halt, _thread) in list(watchers.items()):
            if wanted.get(pk) != fingerprint:
                halt.set()
                del watchers[pk]
        for pk, fingerprint in wanted.items():
            if pk not in watchers:
                halt = threading.Event()
                thread = threading.Thread(target=watch_channel, args=(pk, halt), name=f"idle-{pk}", daemon=True)
                thread.start()
                watchers[pk] = (fingerprint, halt, thread)
        stop.wait(RESCAN_SECONDS)
    for _fingerprint, halt, _thread in watchers.values():
        halt.set()
