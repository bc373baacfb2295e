"""The pipeline's side of the domain's one seam (``tickets.channel_port``), registered at start-up (``apps.py``)."""

from channel_adapters.base import ChannelAdapter

from .models import Channel
from .queueing import TaskName, enqueue


class PipelinePort:
    """What the domain may ask of the pipeline: a channel's adapter, and the delivery of a stored reply."""

    def adapter_for(self, channel: Channel) -> ChannelAdapter:
        return channel.adapter()

    def deliver(self, message_id: int) -> None:
        enqueue(TaskName.DELIVER, message_id)
