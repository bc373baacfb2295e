from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        # Imported here, once models are loaded (Django's rule for ready()): it connects the sign-in signal that
        # asks for the second factor.
        from . import two_factor  # noqa: F401, PLC0415


class AdminConfig(admin_apps.AdminConfig):
    """Django's admin (in INSTALLED_APPS in its place), whose site asks for the second factor too."""

    default = False  # the accounts app's own config is AccountsConfig

    default_site = "accounts.admin_site.SecondFactorAdminSite"
