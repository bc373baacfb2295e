"""Who may use the console: agents and admins."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse

from tickets.roles import is_agent


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
        if not is_agent(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper
