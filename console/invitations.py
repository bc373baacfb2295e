"""The invitation email: a link to set a password, made by Django's password-reset machinery (a token that
expires after ``PASSWORD_RESET_TIMEOUT`` and is void once the password is set)."""

import logging

from django.contrib.auth.forms import PasswordResetForm
from django.core.mail import EmailMessage
from django.template import loader

logger = logging.getLogger(__name__)


class InvitationNotSent(Exception):
    """The mail server refused or could not be reached; the account exists and the invitation can be resent."""


class _InvitationForm(PasswordResetForm):
    """Django's reset form, for one user chosen by the admin. Its own lookup skips accounts without a usable
    password, which an invited user does not have yet; and its sending hides a failure, which the admin must see."""

    def __init__(self, invitee):
        super().__init__(data={"email": invitee.email})
        self.invitee = invitee

    def get_users(self, email):
        return [self.invitee]

    def send_mail(self, subject_template_name, email_template_name, context, from_email, to_email, **kwargs):
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        try:
            EmailMessage(subject, body, from_email, [to_email]).send()
        except Exception as exc:
            logger.warning("The invitation to user %s was not sent: %s", self.invitee.pk, exc)
            raise InvitationNotSent(str(exc) or type(exc).__name__) from exc


def send_invitation(request, user):
    """Email ``user`` a link to set their password, on this site's address as the admin reached it.
    Raises ``InvitationNotSent`` when the mail could not be sent."""
    form = _InvitationForm(user)
    form.is_valid()
    form.save(
        request=request,
        use_https=request.is_secure(),
        subject_template_name="registration/invitation_subject.txt",
        email_template_name="registration/invitation_email.txt",
        extra_email_context={"inviter": request.user.get_full_name() or request.user.get_username()},
    )
