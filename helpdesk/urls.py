from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, reverse_lazy

from accounts import oidc
from accounts.tokens import ObtainTokenView
from accounts.views import LoginView, home

urlpatterns = [
    path("", home, name="home"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", include("accounts.urls")),
    # Single sign-on (404 unless OIDC is set up); mozilla-django-oidc knows these names.
    path("oidc/authenticate/", oidc.start, name="oidc_authentication_init"),
    path("oidc/callback/", oidc.callback, name="oidc_authentication_callback"),
    # An invitation's link (console/invitations.py): Django's password-reset confirmation, in our templates.
    path(
        "password/set/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="registration/set_password.html", success_url=reverse_lazy("password-set-done")
        ),
        name="password-set",
    ),
    path(
        "password/set/done/",
        auth_views.PasswordResetCompleteView.as_view(template_name="registration/set_password_done.html"),
        name="password-set-done",
    ),
    path("console/", include("console.urls")),
    # The API's sign-in lives with the others (accounts/tokens.py); the API itself only checks tokens.
    path("api/auth/token/", ObtainTokenView.as_view(), name="api-token"),
    path("api/", include("api.urls")),
    path("portal/", include("portal.urls")),
    path("webhooks/", include("channels_ingest.urls")),
    path("admin/", admin.site.urls),
]
