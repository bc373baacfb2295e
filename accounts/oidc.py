"""Single sign-on with the company's OpenID Connect provider (mozilla-django-oidc), when OIDC_RP_CLIENT_ID is set.

People are matched by their email address, only when the provider says it verified it. Someone signing in for the
first time becomes an employee (no group): an admin makes them an agent. Afterwards they land on "/", which sends
each role to its place. A user with a second factor is asked for its code after SSO as after a password.
"""

import re
from functools import wraps

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import Http404
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

USERNAME_MAX = 150


class EmailMatchingOIDCBackend(OIDCAuthenticationBackend):
    def verify_claims(self, claims):
        return bool(claims.get("email")) and claims.get("email_verified") is True

    def filter_users_by_claims(self, claims):
        # Deactivated people too: they are matched, and then refused, rather than signed up afresh.
        return self.UserModel.objects.filter(email__iexact=claims["email"])

    def create_user(self, claims):
        email = claims["email"]
        return self.UserModel.objects.create_user(
            _free_username(email),
            email=email,
            first_name=claims.get("given_name", "")[:150],
            last_name=claims.get("family_name", "")[:150],
        )


def _free_username(email: str) -> str:
    """The email address as the username (what people recognise), or with a number if that one is taken."""
    base = re.sub(r"[^\w.@+-]", "", email)[: USERNAME_MAX - 4] or "user"
    taken = set(get_user_model().objects.filter(username__startswith=base).values_list("username", flat=True))
    candidates = (base, *(f"{base}-{n}" for n in range(2, 1000)))
    return next(name for name in candidates if name not in taken)


def _only_when_on(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not set up here.")
        return view(request, *args, **kwargs)

    return wrapper


start = _only_when_on(OIDCAuthenticationRequestView.as_view())
callback = _only_when_on(OIDCAuthenticationCallbackView.as_view())
