"""Who may use the console: agents and admins."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse

from tickets.roles import Role, role_of


def request_role(request) -> Role | None:
    """The signed-in user's role, looked up (one query) at most once per request.

    It is kept on the request, never across requests: a demoted agent loses access with their next request.
    """
    if not hasattr(request, "_console_role"):
        request._console_role = role_of(request.user)
    return request._console_role


def agent_required(view):
    """Send anonymous users to the login page; refuse signed-in non-agents with a 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            if request.headers.get("HX-Request"):
                # A poll after the session expired: reload the whole page (which then
                # redirects to login) instead of swapping the login form into a table.
                return HttpResponse(status=401, headers={"HX-Refresh": "true"})
            return redirect_to_login(request.get_full_path())
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
