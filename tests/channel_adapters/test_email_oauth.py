"""XOAUTH2 tokens for the email channel, refreshed against a token endpoint of the test's own (OAuth 2.0's
refresh_token grant over real HTTP). Dovecot here checks no bearer tokens, so a login with a valid one is left to
the mail emulator; what is proven here is the refresh, its caching, and what a refusal means."""

import uuid
from urllib.parse import parse_qsl

import pytest

from channel_adapters.base import CredentialsError, ReplyTarget, TransientError
from channel_adapters.email.adapter import EmailAdapter
from channel_adapters.email.oauth import RefreshGrant, access_token
from channels_ingest.channel_config import clean_channel_config
from channels_ingest.models import Channel
from tests.channel_adapters.email_mail import DESK, email_config
from tests.helpers import JsonApi


class TokenEndpoint(JsonApi):
    """Answers each POST with the next of ``answers`` ((status, JSON body)), or a fresh token; keeps the forms."""

    def __init__(self):
        self.answers: list[tuple[int, dict]] = []
        self.issued = 0
        super().__init__(self._answer)
        self.url += "token"

    @property
    def forms(self) -> list[dict]:
        return [dict(parse_qsl(body.decode())) for _path, _headers, body in self.requests]

    def _answer(self, path, body):
        if self.answers:
            return self.answers.pop(0)
        self.issued += 1
        return 200, {"access_token": f"ya29.token-{self.issued}", "expires_in": 3599}


@pytest.fixture
def endpoint():
    server = TokenEndpoint()
    yield server
    server.stop()


def grant(endpoint, **extra):
    # A refresh token of each test's own: tokens are cached per process by (URL, client, refresh token).
    return RefreshGrant(
        token_url=endpoint.url, client_id="desk-client", refresh_token=f"1//refresh-{uuid.uuid4().hex}", **extra
    )


def test_a_token_is_refreshed_once_then_reused_until_renewed(endpoint):
    refresh = grant(endpoint, client_secret="s3cret", scope="https://mail.google.com/")
    assert access_token(refresh) == "ya29.token-1"
    assert access_token(refresh) == "ya29.token-1"
    assert endpoint.forms == [
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh.refresh_token,
            "client_id": "desk-client",
            "client_secret": "s3cret",
            "scope": "https://mail.google.com/",
        }
    ]
    assert access_token(refresh, renew=True) == "ya29.token-2"
    assert access_token(refresh) == "ya29.token-2"
    assert len(endpoint.requests) == 2


def test_a_token_about_to_expire_is_not_reused(endpoint):
    endpoint.answers = [(200, {"access_token": "short-lived", "expires_in": 30})]
    refresh = grant(endpoint)
    assert access_token(refresh) == "short-lived"
    assert access_token(refresh) == "ya29.token-1"
    assert len(endpoint.requests) == 2


def test_a_refused_refresh_token_is_a_credentials_error_with_the_providers_words(endpoint):
    endpoint.answers = [(400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})]
    with pytest.raises(CredentialsError, match="Token has been expired or revoked"):
        access_token(grant(endpoint))


@pytest.mark.parametrize("status", [429, 503])
def test_a_busy_token_endpoint_is_retried_later(endpoint, status):
    endpoint.answers = [(status, {"error": "temporarily_unavailable"})]
    with pytest.raises(TransientError, match=str(status)):
        access_token(grant(endpoint))


def test_an_unreachable_token_endpoint_is_retried_later(endpoint):
    refresh = grant(endpoint)
    endpoint.stop()
    with pytest.raises(TransientError, match="Could not reach"):
        access_token(refresh)


def oauth_adapter(dovecot, smtp_catcher, endpoint):
    raw = email_config(dovecot, smtp_catcher, auth="oauth2", oauth_token_url=endpoint.url, oauth_client_id="desk")
    raw.pop("password")
    raw["refresh_token"] = f"1//refresh-{uuid.uuid4().hex}"
    config, secrets = EmailAdapter.split_config(raw)
    return EmailAdapter(config=config, secrets=secrets)


def test_the_adapter_logs_in_to_smtp_with_the_refreshed_token(dovecot, smtp_catcher, endpoint):
    adapter = oauth_adapter(dovecot, smtp_catcher, endpoint)
    smtp = adapter.smtp_settings()
    assert (smtp["token"], smtp["password"]) == ("ya29.token-1", "")
    assert adapter.bearer_token() == "ya29.token-1"
    assert len(endpoint.requests) == 1


def test_a_token_the_mail_server_refuses_is_renewed_once_then_the_refusal_stands(dovecot, smtp_catcher, endpoint):
    """Dovecot here offers no XOAUTH2, so it refuses every bearer token, as a server refuses a revoked one."""
    adapter = oauth_adapter(dovecot, smtp_catcher, endpoint)
    with pytest.raises(CredentialsError, match="refused the login"):
        adapter.check_credentials()
    assert len(endpoint.requests) == 2
    # A poll renews a refused token the same way, not only the credentials check.
    with pytest.raises(CredentialsError, match="refused the login"):
        list(adapter.poll({}))
    assert len(endpoint.requests) == 3


@pytest.mark.django_db
def test_a_reply_is_sent_over_smtp_with_xoauth2(dovecot, smtp_catcher, endpoint):
    """Django's SMTP backend, logging in with AUTH XOAUTH2 and the refreshed token instead of a password."""
    raw = email_config(dovecot, smtp_catcher, auth="oauth2", oauth_token_url=endpoint.url, oauth_client_id="desk")
    raw.pop("password")
    raw["refresh_token"] = f"1//refresh-{uuid.uuid4().hex}"
    config, secrets = clean_channel_config("email", raw)
    adapter = Channel(kind="email", name="oauth-mail", config=config, secrets=secrets).adapter()
    target = ReplyTarget(thread_key="t", recipient="ann@corp.example", ticket_number=7, author_name="Alex Agent")
    adapter.send(target=target, text="Done.", key="reply-1")
    [caught] = smtp_catcher.wait_for(1)
    assert smtp_catcher.bearer_tokens == ["ya29.token-1"]
    assert caught.login == DESK
    assert caught["Subject"] == "Re: your request [#7]"
