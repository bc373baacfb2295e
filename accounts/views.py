"""The sign-in page, for everyone: agents go on to the console, employees to the portal ("/" decides)."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from tickets.roles import is_agent


def sign_in_options() -> dict:
    """What the sign-in page offers besides a password: single sign-on, when it is configured."""
    if not settings.OIDC_ENABLED:
        return {}
    return {"sso_provider": settings.OIDC_PROVIDER_NAME}


class LoginView(auth_views.LoginView):
    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(sign_in_options())
        context["sso_failed"] = "sso" in self.request.GET
        return context

    def form_valid(self, form):
        response = super().form_valid(form)
        if self.request.session.get(settings.SECOND_FACTOR_SESSION_KEY):
            # Signed in, but not through yet: the console and the API wait for the code.
            return redirect(f"{reverse('accounts:verify')}?{urlencode({'next': self.get_success_url()})}")
        return response


def home(request):
    """The front door: agents and admins to the console, employees to the portal, everyone else to sign in."""
    if not request.user.is_authenticated:
        return redirect("login")
    return redirect("console:ticket-list" if is_agent(request.user) else "portal:tickets")
