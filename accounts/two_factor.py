"""The optional second factor (TOTP, django-otp) for agents and admins.

An agent enrols on their account page: it shows the secret as an ``otpauth://`` link and a QR code, and the
device counts once they have typed a code from it. From then on, a sign-in marks the session as needing the second
factor (``settings.SECOND_FACTOR_SESSION_KEY``) and the console and the API refuse it until the code page has
verified a code (``request.user.is_verified()``, from django-otp's middleware).
"""

import base64
from functools import wraps

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.signals import user_logged_in
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

from tickets.audit import record_change
from tickets.roles import is_agent


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code from your authenticator app",
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )


#: What the audit log says of a change (tickets/audit.py); the secret itself is never logged.
ON, OFF = {"two_factor": "on"}, {"two_factor": "off"}
THROTTLED = "Too many wrong codes in a row: wait a few seconds, then type the code the app shows."


def try_code(devices, code: str, wrong: str) -> tuple[TOTPDevice | None, str]:
    """The device among ``devices`` that accepts ``code`` now, or None and why not (``wrong``, or THROTTLED).

    django-otp throttles each device: after a wrong code, any code is refused for 1 second, then 2, 4, 8…, which
    makes guessing hopeless.
    """
    devices = list(devices)
    if devices and not any(device.verify_is_allowed()[0] for device in devices):
        return None, THROTTLED
    for device in devices:
        if device.verify_token(code.strip()):
            return device, ""
    return None, wrong


def verify_code(user, code: str) -> TOTPDevice | None:
    """The user's confirmed device that accepts ``code`` now, if any."""
    return try_code(TOTPDevice.objects.filter(user=user, confirmed=True), code, "")[0]


@receiver(user_logged_in)
def ask_for_second_factor(sender, request, user, **kwargs):
    if request is not None and user_has_device(user, confirmed=True):
        request.session[settings.SECOND_FACTOR_SESSION_KEY] = True


def awaits_second_factor(request) -> bool:
    """Signed in, with a second factor whose code this session has not given yet."""
    return bool(request.session.get(settings.SECOND_FACTOR_SESSION_KEY)) and not request.user.is_verified()


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return settings.LOGIN_REDIRECT_URL


@require_http_methods(["GET", "POST"])
def verify(request):
    """The sign-in's second step: a code from the user's authenticator app."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.user.is_verified() or not request.session.get(settings.SECOND_FACTOR_SESSION_KEY):
        return redirect(_next_url(request))
    form = CodeForm(request.POST or None)
    if form.is_valid():
        devices = TOTPDevice.objects.filter(user=request.user, confirmed=True)
        wrong = "That code is not right (or was already used): try the next one."
        device, refusal = try_code(devices, form.cleaned_data["code"], wrong)
        if device is not None:
            otp_login(request, device)
            return redirect(_next_url(request))
        form.add_error("code", refusal)
    return render(request, "accounts/verify.html", {"form": form, "next": _next_url(request)})


def agent_page(view):
    """For signed-in agents and admins who passed their second factor, if they have one."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if awaits_second_factor(request):
            return redirect_to_login(request.get_full_path(), reverse("accounts:verify"))
        if not is_agent(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def _qr_data_uri(text: str) -> str:
    """The QR code of ``text`` as an SVG image in a data: URI (the page's policy allows data: images, no inline SVG
    styles)."""
    svg = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage).to_string()
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()


@agent_page
@require_http_methods(["GET", "POST"])
def settings_page(request):
    """Turn the second factor on (scan, then confirm with a code) or off (with a code)."""
    user = request.user
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    form = CodeForm(request.POST or None)
    if confirmed is not None:
        if request.method == "POST" and form.is_valid():
            wrong = "That code is not right: two-factor sign-in is still on."
            device, refusal = try_code([confirmed], form.cleaned_data["code"], wrong)
            if device is not None:
                TOTPDevice.objects.filter(user=user).delete()
                request.session.pop(settings.SECOND_FACTOR_SESSION_KEY, None)
                record_change(actor=user, action="user.two_factor", target=user, before=ON, after=OFF)
                messages.success(request, "Two-factor sign-in is off.")
                return redirect("accounts:two-factor")
            form.add_error("code", refusal)
        return render(request, "accounts/two_factor.html", {"enabled": True, "form": form, "section": "two-factor"})
    pending, _ = TOTPDevice.objects.get_or_create(user=user, confirmed=False, defaults={"name": "Authenticator app"})
    if request.method == "POST" and form.is_valid():
        wrong = "That code is not right. Check the app shows this account, and try the next code."
        device, refusal = try_code([pending], form.cleaned_data["code"], wrong)
        if device is not None:
            pending.confirmed = True
            pending.save(update_fields=["confirmed"])
            record_change(actor=user, action="user.two_factor", target=user, before=OFF, after=ON)
            otp_login(request, pending)
            request.session[settings.SECOND_FACTOR_SESSION_KEY] = True
            messages.success(request, "Two-factor sign-in is on: from now on you will be asked for a code.")
            return redirect("accounts:two-factor")
        form.add_error("code", refusal)
    context = {"enabled": False, "form": form, "section": "two-factor"}
    context.update(uri=pending.config_url, qr=_qr_data_uri(pending.config_url))
    return render(request, "accounts/two_factor.html", context)
