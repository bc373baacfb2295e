"""Who may use the portal: anyone signed in, each seeing their own tickets only (by their email address)."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.urls import reverse


def signed_in_required(view):
    """Send anonymous visitors to the portal's own sign-in page (a link by email), not the agents' login."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("portal:sign-in"))
        return view(request, *args, **kwargs)

    return wrapper
