"""The domain's one seam to the channels: a port that the pipeline registers at start-up.

The domain knows no platform and no pipeline, yet a reply needs both: its conversation's channel decides
what a reply may be (how long, in which modes, with which files), and somebody must deliver it once it is
stored. The domain asks this port for both and never imports who answers. ``channels_ingest`` registers
its implementation in ``ChannelsIngestConfig.ready()``, much as Zulip's actions hand events to
``send_event_on_commit`` without importing the event machinery.

The port speaks the adapter contract (``channel_adapters.base``), the layer below the domain.
"""

from __future__ import annotations

from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from channel_adapters.base import ChannelAdapter


class ChannelPort(Protocol):
    def adapter_for(self, channel: Any) -> ChannelAdapter:
        """The adapter that speaks for ``channel`` (a ``TicketThread.channel``), built with its configuration."""
        ...

    def deliver(self, message_id: int) -> None:
        """Have the stored, queued reply ``message_id`` delivered. Must not raise for an outage: the reply is
        stored, and delivery is retried from the database."""
        ...


_registered: ChannelPort | None = None


def register(port: ChannelPort) -> None:
    global _registered
    _registered = port


def channel_port() -> ChannelPort:
    if _registered is None:
        raise ImproperlyConfigured("No channel port is registered: is channels_ingest in INSTALLED_APPS?")
    return _registered


def deliver_on_commit(message_id: int) -> None:
    """Hand the reply to delivery once the transaction storing it commits (never a reply that rolled back)."""
    transaction.on_commit(lambda: channel_port().deliver(message_id))
