from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from accounts import oidc
from accounts.tokens import ObtainTokenView
from accounts.views import LoginView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="console:ticket-list", permanent=False)),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", include("accounts.urls")),
    # Single sign-on (404 unless OIDC is set up); mozilla-django-oidc knows these names.
    path("oidc/authenticate/", oidc.start, name="oidc_authentication_init"),
    path("oidc/callback/", oidc.callback, name="oidc_authentication_callback"),
    path("console/", include("console.urls")),
    # The API's sign-in lives with the others (accounts/tokens.py); the API itself only checks tokens.
    path("api/auth/token/", ObtainTokenView.as_view(), name="api-token"),
    path("api/", include("api.urls")),
    path("webhooks/", include("channels_ingest.urls")),
    path("admin/", admin.site.urls),
]
