from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, reverse_lazy

from .views import home

urlpatterns = [
    path("", home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
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
    path("api/", include("api.urls")),
    path("portal/", include("portal.urls")),
    path("webhooks/", include("channels_ingest.urls")),
    path("admin/", admin.site.urls),
]
