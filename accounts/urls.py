from django.urls import path

from . import two_factor

app_name = "accounts"

urlpatterns = [
    path("verify/", two_factor.verify, name="verify"),
    path("two-factor/", two_factor.settings_page, name="two-factor"),
]
