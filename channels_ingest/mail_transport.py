"""Email replies go out through Django's email backend, with each channel's own SMTP settings.

Django's SMTP backend is the default: any relay, Gmail and Microsoft 365 included (with XOAUTH2 where the
channel logs in with OAuth). An admin may pick an ESP instead by naming a django-anymail backend in the
channel's ``email_backend``; only backends listed in ``settings.EMAIL_CHANNEL_BACKENDS`` may be named, so a
channel's config can never make the desk import arbitrary code.
"""

from __future__ import annotations

import smtplib
from email import encoders
from email.mime.base import MIMEBase

from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend

from channel_adapters.base import (
    AdapterError,
    ConfigError,
    CredentialsError,
    OutboundFile,
    OutcomeUnknown,
    PermanentError,
    TransientError,
)
from channel_adapters.email.outgoing import OutgoingMail, SendsMail, smtp_failure

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


class XOAuth2SMTPBackend(SMTPBackend):
    """Django's SMTP backend, logging in with a bearer token (XOAUTH2) instead of a password."""

    def __init__(self, *, token: str, **kwargs):
        super().__init__(**kwargs)
        self.token = token

    def open(self):
        opened = super().open()  # no password given: it connects (and starts TLS) without logging in
        if opened:
            self.connection.ehlo_or_helo_if_needed()
            self.connection.auth("XOAUTH2", self._xoauth2)
        return opened

    def _xoauth2(self, challenge=None):
        return f"user={self.username}\1auth=Bearer {self.token}\1\1"


def validate_backend(path: str) -> None:
    if path and path not in settings.EMAIL_CHANNEL_BACKENDS:
        raise ConfigError(f"email_backend must be one of {', '.join(settings.EMAIL_CHANNEL_BACKENDS)}.")


class DjangoMailTransport:
    def __init__(self, adapter: SendsMail):
        self.adapter = adapter

    def _connection(self):
        smtp = self.adapter.smtp_settings()
        backend = smtp["backend"] or SMTP_BACKEND
        validate_backend(smtp["backend"])
        if backend != SMTP_BACKEND:
            return get_connection(backend, fail_silently=False)  # an ESP: its keys are in settings.ANYMAIL
        options = {
            "host": smtp["host"],
            "port": smtp["port"],
            "username": smtp["username"],
            "use_tls": smtp["security"] == "starttls",
            "use_ssl": smtp["security"] == "ssl",
            "timeout": smtp["timeout"],
            "fail_silently": False,
        }
        if smtp["token"]:
            return XOAuth2SMTPBackend(token=smtp["token"], **options)
        return SMTPBackend(password=smtp["password"], **options)

    def check(self) -> None:
        connection = self._connection()
        try:
            connection.open()
        except Exception as exc:  # noqa: BLE001 — every backend's failure becomes the contract's error
            raise _failure(exc, delivered=False) from None
        finally:
            connection.close()

    def send(self, mail: OutgoingMail) -> None:
        connection = self._connection()
        message = EmailMultiAlternatives(
            subject=mail.subject,
            body=mail.text,
            from_email=mail.from_header,
            to=list(mail.to),
            cc=list(mail.cc),
            reply_to=list(mail.reply_to),
            headers=mail.headers,
            connection=connection,
        )
        message.attach_alternative(mail.html, "text/html")
        for file in mail.files:
            message.attach(_file_part(file))
        try:
            connection.open()
        except Exception as exc:  # noqa: BLE001
            raise _failure(exc, delivered=False) from None
        try:
            connection.send_messages([message])
        except Exception as exc:  # noqa: BLE001
            raise _failure(exc, delivered=True) from None
        finally:
            connection.close()


def _file_part(file: OutboundFile) -> MIMEBase:
    """A file as base64, whatever its type: Django re-encodes text files as text, and their line ends then
    arrive as CRLF, not as the agent's bytes."""
    maintype, _, subtype = file.content_type.partition("/")
    part = MIMEBase(maintype, subtype) if maintype and subtype else MIMEBase("application", "octet-stream")
    part.set_payload(file.data)
    encoders.encode_base64(part)
    part.add_header("Content-Disposition", "attachment", filename=file.name)
    return part


def _failure(exc: Exception, *, delivered: bool) -> AdapterError:
    if isinstance(exc, AdapterError):
        return exc
    if isinstance(exc, AnymailError):  # before OSError: anymail's HTTP errors are requests' (OSErrors too)
        return _esp_failure(exc, delivered=delivered)
    if isinstance(exc, smtplib.SMTPException | OSError):
        return smtp_failure(exc, delivered=delivered)
    return PermanentError(f"Sending failed: {type(exc).__name__}: {exc}")


def _esp_failure(exc: Exception, *, delivered: bool) -> AdapterError:
    """An ESP's answer (django-anymail): refused recipients and 4xx are final, 429 and 5xx are retried, and no
    answer at all after the request went out may have sent the mail."""
    if isinstance(exc, AnymailRecipientsRefused):
        return PermanentError(f"The mail service refused the recipients: {exc}")
    if isinstance(exc, AnymailAPIError):
        status = getattr(exc, "status_code", None)
        if status is None:
            return OutcomeUnknown(f"The mail service did not answer: {exc}") if delivered else TransientError(str(exc))
        if status in (401, 403):
            return CredentialsError(f"The mail service refused the API key ({status}).")
        if status == 429 or status >= 500:
            return TransientError(f"The mail service answered {status}.")
        return PermanentError(f"The mail service refused the message ({status}): {exc}")
    return PermanentError(f"The mail service refused the message: {exc}")


def give_transport(adapter) -> None:
    """Adapters whose replies are mail get this transport."""
    if isinstance(adapter, SendsMail):
        adapter.mail_transport = DjangoMailTransport(adapter)
