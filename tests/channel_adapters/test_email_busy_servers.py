"""A mail server that says "try again later" (RFC 5530's [UNAVAILABLE] and [LIMIT], SMTP's 4xx) is tried again
later: never taken for refused credentials, nor for a refusal. Found by the fault suite's email storms."""

import pytest

from channel_adapters.base import CredentialsError, ReplyTarget, TransientError
from tests.helpers import emulated_mail_adapter

TARGET = ReplyTarget(thread_key="a@example.com", recipient="ann@example.com", subject="VPN")


@pytest.fixture
def adapter(mail_emulator):
    return emulated_mail_adapter(mail_emulator, timeout=5)


@pytest.mark.parametrize("code", ["[UNAVAILABLE] Try again later", "[LIMIT] Too many logins, try again later"])
def test_a_login_answered_try_again_later_is_not_a_credentials_error(mail_emulator, adapter, code):
    mail_emulator.fail_imap("LOGIN", kind="no", message=code)
    with pytest.raises(TransientError) as raised:
        list(adapter.poll({}))
    assert not isinstance(raised.value, CredentialsError)
    assert list(adapter.poll({}))  # and the next poll logs in


def test_a_command_answered_limit_is_retried_not_refused(mail_emulator, adapter):
    mail_emulator.fail_imap("SELECT", kind="no", message="[LIMIT] Too many commands, try again later")
    with pytest.raises(TransientError, match=r"\[LIMIT\]"):
        list(adapter.poll({}))


def test_a_wrong_password_is_still_a_credentials_error(mail_emulator, adapter):
    mail_emulator.fail_imap("LOGIN", kind="no", message="[AUTHENTICATIONFAILED] Invalid credentials")
    with pytest.raises(CredentialsError):
        list(adapter.poll({}))
    # smtplib tries each mechanism the server offers (PLAIN, then LOGIN): both are refused.
    mail_emulator.fail_smtp("AUTH", code=535, message="5.7.8 Authentication credentials invalid", count=2)
    with pytest.raises(CredentialsError):
        adapter.send(target=TARGET, text="Fixed.", key="1-1")


@pytest.mark.parametrize("code", [451, 454])
def test_an_smtp_login_answered_4xx_is_retried_not_a_credentials_error(mail_emulator, adapter, code):
    mail_emulator.fail_smtp("AUTH", code=code, message="4.7.0 Temporary authentication failure", count=2)
    with pytest.raises(TransientError) as raised:
        adapter.send(target=TARGET, text="Fixed.", key="1-1")
    assert not isinstance(raised.value, CredentialsError)
    assert mail_emulator.sent() == []
