"""Each user's time zone (``tickets.Profile.time_zone``), active for their requests, so every time the console
renders (``timezone.localtime``, the ``date`` filter) is in it, named ("14:03 CET").

The zone is copied into the session when the user signs in and when they change it, so a request reads it with
the session it loads anyway, not with a query of its own.
"""

from zoneinfo import ZoneInfo

from django.utils import timezone

from tickets.models import Profile, time_zone_names

SESSION_KEY = "time_zone"


def profile_time_zone(user) -> str:
    """The zone ``user`` chose, or the default when they have not saved a profile."""
    chosen = Profile.objects.filter(user=user).values_list("time_zone", flat=True).first()
    return chosen or Profile.DEFAULT_TIME_ZONE


def remember_time_zone(sender, request, user, **kwargs):
    """On sign-in (``user_logged_in``; connected in ``ConsoleConfig.ready``)."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = profile_time_zone(user)


class TimeZoneMiddleware:
    """Activate the signed-in user's zone (from their session) for the request. A session without one (anonymous,
    or older than this setting) and a zone the system no longer knows get the default, ``TIME_ZONE``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        name = session.get(SESSION_KEY) if session is not None else None
        if name and name in time_zone_names():
            timezone.activate(ZoneInfo(name))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
