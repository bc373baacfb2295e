from django.conf import settings
from rest_framework.permissions import BasePermission

from tickets.roles import is_agent


class IsAgent(BasePermission):
    message = "Only agents and admins may use this endpoint."

    def has_permission(self, request, view):
        if request.auth is None and _awaits_second_factor(request):
            return False  # a session signed in with a password whose second factor is still to come
        return is_agent(request.user)


def _awaits_second_factor(request) -> bool:
    session = getattr(request, "session", None)
    if not session or not session.get(settings.SECOND_FACTOR_SESSION_KEY):
        return False
    return not request._request.user.is_verified()
