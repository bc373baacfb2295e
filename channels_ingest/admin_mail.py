"""Email to the people who look after the channels: ``settings.ADMINS`` and the active members of the admins
group (and superusers) who have an address. Used when a channel is paused for its budget, breaks or recovers."""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db.models import Q

from tickets.roles import ADMINS_GROUP

logger = logging.getLogger(__name__)


def admin_addresses() -> list[str]:
    """Each address once (compared without case), ``settings.ADMINS`` first."""
    users = (
        get_user_model()
        .objects.filter(Q(groups__name=ADMINS_GROUP) | Q(is_superuser=True), is_active=True)
        .exclude(email="")
        .order_by("email")
        .values_list("email", flat=True)
        .distinct()
    )
    addresses: dict[str, str] = {}
    for address in [address for _, address in settings.ADMINS] + list(users):
        addresses.setdefault(address.lower(), address)
    return list(addresses.values())


def mail_channel_admins(subject: str, body: str) -> None:
    """Send one message to every admin address. A mail server that refuses is logged, never raised: the alert
    is also in the console, and the work that noticed the problem must go on."""
    recipients = admin_addresses()
    if not recipients:
        return
    message = EmailMessage(settings.EMAIL_SUBJECT_PREFIX + subject, body, settings.SERVER_EMAIL, recipients)
    try:
        message.send()
    except Exception:  # an SMTP error, a refused connection, a bad address: all of them only lose the email
        logger.exception("could not email the admins: %s", subject)
