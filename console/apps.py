from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The agent console: server-rendered pages with htmx partials (an interface: it calls the pipeline and the
    domain, and nothing calls it)."""

    name = "console"
    verbose_name = "Agent console"

    def ready(self):
        # Imported here, once models are loaded (Django's rule for ready()): the sign-in hook that puts the user's
        # time zone in their session.
        from django.contrib.auth.signals import user_logged_in  # noqa: PLC0415

        from .time_zones import remember_time_zone  # noqa: PLC0415

        user_logged_in.connect(remember_time_zone, dispatch_uid="console.remember_time_zone")
