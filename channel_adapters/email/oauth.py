"""Bearer tokens for XOAUTH2 (Gmail, Microsoft 365): a pasted access token, or one refreshed from a refresh token.

The refresh is OAuth 2.0's ``refresh_token`` grant (RFC 6749, section 6) against the provider's token URL
(Google: ``https://oauth2.googleapis.com/token``; Microsoft: ``https://login.microsoftonline.com/<tenant>/
oauth2/v2.0/token``). Access tokens live about an hour; each process keeps the ones it got until a minute
before they expire, so a poll, a download and a reply do not each ask for a new one.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

import requests

from ..base import CredentialsError, TransientError

#: A token is renewed this many seconds before the provider says it expires.
EXPIRY_MARGIN = 60
TOKEN_TIMEOUT = 15

_tokens: dict[str, tuple[str, float]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class RefreshGrant:
    token_url: str
    client_id: str
    refresh_token: str
    client_secret: str = ""
    scope: str = ""

    @property
    def cache_key(self) -> str:
        return hashlib.sha256(f"{self.token_url}\0{self.client_id}\0{self.refresh_token}".encode()).hexdigest()


def access_token(grant: RefreshGrant, *, renew: bool = False) -> str:
    """A valid access token for ``grant``: the one this process holds, or a new one (``renew`` forces it, after
    the server refused the one held)."""
    key = grant.cache_key
    with _lock:
        held = _tokens.get(key)
        if held and not renew and held[1] > time.monotonic():
            return held[0]
    token, lifetime = _refresh(grant)
    with _lock:
        _tokens[key] = (token, time.monotonic() + max(lifetime - EXPIRY_MARGIN, 0))
    return token


def _refresh(grant: RefreshGrant) -> tuple[str, float]:
    data = {"grant_type": "refresh_token", "refresh_token": grant.refresh_token, "client_id": grant.client_id}
    if grant.client_secret:
        data["client_secret"] = grant.client_secret
    if grant.scope:
        data["scope"] = grant.scope
    try:
        response = requests.post(grant.token_url, data=data, timeout=TOKEN_TIMEOUT)
    except requests.RequestException as exc:
        raise TransientError(f"Could not reach the OAuth token endpoint: {type(exc).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientError(f"The OAuth token endpoint answered {response.status_code}.")
    if response.status_code != 200 or not isinstance(body.get("access_token"), str):
        words = body.get("error_description") or body.get("error") or f"HTTP {response.status_code}"
        raise CredentialsError(f"The refresh token was refused ({words}); re-authorize needed.")
    lifetime = body.get("expires_in")
    return body["access_token"], float(lifetime) if isinstance(lifetime, int | float) else 3600.0
