from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from .views import home

urlpatterns = [
    path("", home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("console/", include("console.urls")),
    path("api/", include("api.urls")),
    path("portal/", include("portal.urls")),
    path("webhooks/", include("channels_ingest.urls")),
    path("admin/", admin.site.urls),
]
