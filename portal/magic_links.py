"""Signing in by a link sent to one's email address: single use, short-lived, for employees only.

The link carries a signed token naming the address, the user (if they have an account yet) and when they
last signed in: signing in changes that time, so a used link no longer matches (as Django's password reset
tokens do). An employee whose address the desk knows only from their tickets (a contact, or an identity on
a channel) gets an account when they first sign in. Agents and admins sign in with their password (and
second factor) only: a link never signs them in.

Whether an address is known never shows: the answer is the same, and links to one address are rate-limited.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.core import signing
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from channels_ingest.outages import is_outage, warn_outage
from tickets.models import Contact
from tickets.roles import Role, role_of

logger = logging.getLogger(__name__)

_SALT = "portal.sign-in-link"
#: A link works this long after it was sent.
LINK_SECONDS = 15 * 60
#: At most this many links to one address per LINK_SECONDS: enough for a lost email, too few to flood an inbox.
LINKS_PER_ADDRESS = 3


def _stamp(user) -> str:
    return user.last_login.isoformat() if user and user.last_login else ""


def may_sign_in_by_link(user) -> bool:
    return user.is_active and not user.is_staff and role_of(user) == Role.EMPLOYEE


def safe_next(path: str) -> str:
    """``path`` if it is a page of this site (a relative URL), else ""."""
    return path if path and url_has_allowed_host_and_scheme(path, allowed_hosts=None) else ""


def send_sign_in_link(email: str, *, next_path: str = "") -> None:
    """Email a sign-in link to ``email`` if it belongs to an employee the desk knows; otherwise do nothing. The
    link leads to ``next_path`` (a page of this site) once signed in.

    Never raises for a mail server that refuses (the answer to the visitor must not differ)."""
    email = email.strip().lower()
    if not _within_rate(email):
        logger.info("portal: sign-in links to one address exceed %d per %d s", LINKS_PER_ADDRESS, LINK_SECONDS)
        return
    User = get_user_model()
    users = list(User.objects.filter(email__iexact=email)[:2])
    if len(users) > 1:
        logger.warning("portal: no sign-in link sent, %d accounts share one address", len(users))
        return
    user = users[0] if users else None
    if user is not None and not may_sign_in_by_link(user):
        return
    if user is None and not Contact.objects.with_email(email).exists():
        return
    payload = {"e": email, "u": user.pk if user else 0, "l": _stamp(user), "n": safe_next(next_path)}
    token = signing.dumps(payload, salt=_SALT)
    link = settings.PUBLIC_BASE_URL.rstrip("/") + reverse("portal:sign-in-link") + "?" + urlencode({"token": token})
    minutes = LINK_SECONDS // 60
    body = (
        f"Open this link to sign in to the helpdesk portal:\n\n{link}\n\n"
        f"It works once, for {minutes} minutes. If you did not ask to sign in, ignore this email."
    )
    try:
        send_mail("Your sign-in link for the helpdesk", body, None, [email])
    except Exception:
        logger.exception("portal: the sign-in link could not be sent")


def _within_rate(email: str) -> bool:
    key = "portal-sign-in-links:" + hashlib.sha256(email.encode()).hexdigest()
    try:
        cache.add(key, 0, timeout=LINK_SECONDS)
        return cache.incr(key) <= LINKS_PER_ADDRESS
    except ValueError:  # the count expired between the two calls: a new window starts
        return True
    except Exception as exc:
        if not is_outage(exc):
            raise
        # Signing in matters more than the limit during a cache outage; the link itself stays single-use.
        warn_outage("portal: sign-in link sent without its rate limit, the cache is unavailable", exc)
        return True


def address_of(token: str) -> str | None:
    """The address a valid, unused link was sent to; None for any other token."""
    data = _load(token)
    return data["e"] if data and _unused(data) else None


def _load(token: str) -> dict | None:
    try:
        data = signing.loads(token, salt=_SALT, max_age=LINK_SECONDS)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not {"e", "u", "l"} <= set(data):
        return None
    return data


def _unused(data: dict) -> bool:
    User = get_user_model()
    if not data["u"]:
        return not User.objects.filter(email__iexact=data["e"]).exists()
    user = User.objects.filter(pk=data["u"], email__iexact=data["e"]).first()
    return user is not None and _stamp(user) == data["l"] and may_sign_in_by_link(user)


@dataclass(frozen=True)
class SignedIn:
    user: object
    #: The page the link leads to ("" for the portal's first page).
    next_path: str


def sign_in(request, token: str) -> SignedIn | None:
    """Sign the visitor in with the link's token; None for a token expired, used or invalid."""
    data = _load(token)
    if data is None:
        return None
    User = get_user_model()
    with transaction.atomic():
        if data["u"]:
            # Locked, so two uses of one link at once cannot both see it unused.
            user = User.objects.select_for_update().filter(pk=data["u"], email__iexact=data["e"]).first()
            if user is None or _stamp(user) != data["l"] or not may_sign_in_by_link(user):
                return None
        else:
            user = _first_account(data["e"])
            if user is None:
                return None
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return SignedIn(user=user, next_path=safe_next(str(data.get("n") or "")))


def _first_account(email: str):
    """An account for a person the desk knows by their address only, on their first sign-in."""
    User = get_user_model()
    contact = Contact.objects.with_email(email).order_by("pk").first()
    if contact is None or len(email) > 150 or User.objects.filter(email__iexact=email).exists():
        return None
    first, _, last = contact.display_name.partition(" ")
    try:
        with transaction.atomic():
            return User.objects.create_user(username=email, email=email, first_name=first[:150], last_name=last[:150])
    except IntegrityError:  # the username is someone else's, or the same link is being used at this moment
        return None
