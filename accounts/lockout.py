"""What a locked-out sign-in is told (django-axes calls ``lockout_response``: settings.AXES_LOCKOUT_CALLABLE)."""

import math

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import JsonResponse
from django.shortcuts import render

from .views import sign_in_options

#: Too Many Requests: the client may retry, later (Retry-After says when).
LOCKED_OUT = 429


def lockout_message() -> str:
    minutes = math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    return f"Too many failed sign-ins; try again in {minutes} minute{'s' if minutes != 1 else ''}."


def lockout_response(request, original_response=None, credentials=None):
    """The API's callers get JSON; people get the sign-in page again, with the reason.

    Every attempt during the lockout (the right password too) counts as a failure and starts the cool-off again,
    so it always lasts the whole AXES_COOLOFF_TIME from now.
    """
    message = lockout_message()
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=LOCKED_OUT, headers={"Retry-After": retry_after})
    username = (credentials or {}).get("username", "")
    form = AuthenticationForm(request, initial={"username": username})
    context = {"form": form, "lockout": message, "next": request.POST.get("next", ""), **sign_in_options()}
    response = render(request, "registration/login.html", context, status=LOCKED_OUT)
    response["Retry-After"] = retry_after
    return response
