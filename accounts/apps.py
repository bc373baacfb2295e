from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        # Imported here, once models are loaded (Django's rule for ready()): it connects the sign-in signal that
        # asks for the second factor.
        from . import two_factor  # noqa: F401, PLC0415
