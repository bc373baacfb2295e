from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API (DRF, with an OpenAPI schema): an interface, like the console."""

    name = "api"
    verbose_name = "REST API"
