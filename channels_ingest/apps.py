from django.apps import AppConfig


class ChannelsIngestConfig(AppConfig):
    name = "channels_ingest"
    verbose_name = "Channels"

    def ready(self):
        # Imported here, once models are loaded (Django's rule for ready()): the Celery tasks, registered so that
        # workflows can queue them by name (queueing.py), and the pipeline's side of the domain's one seam.
        from tickets import channel_port  # noqa: PLC0415

        from . import tasks  # noqa: F401, PLC0415
        from .pipeline_port import PipelinePort  # noqa: PLC0415

        channel_port.register(PipelinePort())
