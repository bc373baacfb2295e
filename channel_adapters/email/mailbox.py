"""One IMAP session with a channel's mailbox, through ``imapclient``, and IMAP's failures as the contract's errors.

``imapclient`` rather than ``imaplib``: it parses FETCH and SEARCH answers into Python values (UIDs, flags,
INTERNALDATE as datetimes, literals as bytes), speaks UIDPLUS/MOVE/IDLE and XOAUTH2, and is the maintained
client peers use (django-helpdesk uses bare imaplib and re-parses responses with regexes).
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from ..base import CredentialsError, PermanentError, TransientError

#: Seconds one IMAP command may take before the session counts as lost.
#: Seconds IMAP and SMTP answers are waited for, unless the channel's ``timeout`` says otherwise.
MAIL_TIMEOUT = 30.0
SECURITY_CHOICES = ("ssl", "starttls", "none")


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    security: str
    username: str
    mailbox: str
    timeout: float = MAIL_TIMEOUT


@contextlib.contextmanager
def imap_session(
    settings: ImapSettings, *, password: str = "", token: Callable[..., str] | None = None
) -> Iterator[IMAPClient]:
    """A logged-in session (password, or XOAUTH2 with the bearer ``token()`` gives); logs out when done. A
    bearer token the server refuses (revoked before it expired) is renewed once, ``token(renew=True)``.

    Every IMAP or network failure inside the block leaves as an ``AdapterError``: a refused login as
    ``CredentialsError``, a lost connection or a server that is down as ``TransientError``, anything else the
    server refused as ``PermanentError`` with its words.
    """
    with imap_errors(settings):
        client = IMAPClient(
            settings.host,
            port=settings.port,
            ssl=settings.security == "ssl",
            ssl_context=ssl.create_default_context(),
            timeout=settings.timeout,
        )
        client.normalise_times = False  # INTERNALDATE with its zone, not converted to naive local time
        try:
            if settings.security == "starttls":
                client.starttls(ssl.create_default_context())
            if token is not None:
                try:
                    client.oauth2_login(settings.username, token())
                except LoginError:
                    client.oauth2_login(settings.username, token(renew=True))
            else:
                client.login(settings.username, password)
            yield client
        finally:
            with contextlib.suppress(IMAPClientError, OSError):
                client.logout()


#: RFC 5530 response codes of a server that is busy or down for a moment: what it refused, it takes later.
TRY_AGAIN_LATER = ("[UNAVAILABLE]", "[INUSE]", "[LIMIT]")


@contextlib.contextmanager
def imap_errors(settings: ImapSettings) -> Iterator[None]:
    where = f"{settings.host}:{settings.port}"
    try:
        yield
    except LoginError as exc:
        words = _words(exc)
        if _try_again_later(words):  # a login refused for now, not the credentials
            raise TransientError(f"The IMAP server {where} is unavailable: {words}") from None
        raise CredentialsError(f"The IMAP server {where} refused the login: {words}") from None
    except (IMAPClientAbortError, TimeoutError) as exc:
        raise TransientError(f"The IMAP connection to {where} was lost: {_words(exc) or type(exc).__name__}") from None
    except ssl.SSLError as exc:
        raise PermanentError(f"TLS with the IMAP server {where} failed: {exc.reason or exc}") from None
    except OSError as exc:
        raise TransientError(f"Could not reach the IMAP server {where}: {exc.strerror or exc}") from None
    except IMAPClientError as exc:
        words = _words(exc)
        if "AUTHENTICATIONFAILED" in words.upper() or "[AUTHORIZATIONFAILED]" in words.upper():
            raise CredentialsError(f"The IMAP server {where} refused the login: {words}") from None
        if _try_again_later(words):
            raise TransientError(f"The IMAP server {where} is unavailable: {words}") from None
        raise PermanentError(f"The IMAP server {where} refused: {words}") from None


def _try_again_later(words: str) -> bool:
    return any(code in words.upper() for code in TRY_AGAIN_LATER)


def _words(exc: Exception) -> str:
    text = str(exc)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return text.strip()


def ensure_folder(client: IMAPClient, folder: str) -> None:
    """Create ``folder`` unless it exists (where processed mail is moved)."""
    if not client.folder_exists(folder):
        client.create_folder(folder)
