"""Who may use the console: agents and admins."""

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.urls import reverse

from tickets.roles import Role, role_of


def request_role(request) -> Role | None:
    """The signed-in user's role, looked up (one query) at most once per request.

    It is kept on the request, never across requests: a demoted agent loses access with their next request.
    """
    if not hasattr(request, "_console_role"):
        request._console_role = role_of(request.user)
    return request._console_role


def awaits_second_factor(request) -> bool:
    """Signed in with a password, with a second factor whose code this session has not given yet."""
    return bool(request.session.get(settings.SECOND_FACTOR_SESSION_KEY)) and not request.user.is_verified()


def agent_required(view):
    """Send anonymous users to the login page, and users who have a second factor but have not entered its code in
    this session to the code page (accounts/two_factor.py); refuse signed-in non-agents with a 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        signed_in = request.user.is_authenticated
        awaiting_code = signed_in and awaits_second_factor(request)
        if not signed_in or awaiting_code:
            if request.headers.get("HX-Request"):
                # A poll after the session expired: reload the whole page (which then
                # redirects to login) instead of swapping the login form into a table.
                return HttpResponse(status=401, headers={"HX-Refresh": "true"})
            login_page = reverse("accounts:verify") if awaiting_code else None
            return redirect_to_login(request.get_full_path(), login_page)
        if request_role(request) not in (Role.ADMIN, Role.AGENT):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def admin_required(view):
    """Like ``agent_required``, for what only admins may do: channels, users, teams, the audit log."""

    @wraps(view)
    @agent_required
    def wrapper(request, *args, **kwargs):
        if request_role(request) != Role.ADMIN:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper
