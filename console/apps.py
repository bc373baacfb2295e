from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The agent console: server-rendered pages with htmx partials (an interface: it calls the pipeline and the
    domain, and nothing calls it)."""

    name = "console"
    verbose_name = "Agent console"
