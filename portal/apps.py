from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The employee portal: employees sign in by a link in their email, open tickets and follow their own (an
    interface: what they write travels the pipeline as the portal channel's messages)."""

    name = "portal"
    verbose_name = "Employee portal"
