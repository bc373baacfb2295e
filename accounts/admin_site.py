"""Django's admin site, with the second factor: a session that still owes its code is not let in."""

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse

from .two_factor import awaits_second_factor


class SecondFactorAdminSite(admin.AdminSite):
    def has_permission(self, request):
        return super().has_permission(request) and not awaits_second_factor(request)

    def login(self, request, extra_context=None):
        if request.user.is_authenticated and awaits_second_factor(request):
            return redirect_to_login(request.GET.get("next") or reverse("admin:index"), reverse("accounts:verify"))
        return super().login(request, extra_context)
