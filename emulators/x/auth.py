"""Who may call the API: the account's OAuth 2.0 user token or its OAuth 1.0a keys.

OAuth 1.0a signatures are NOT verified, only present: the app reaches the
emulator through a session that rewrites https://api.twitter.com to the
emulator's URL before requests_oauthlib signs, so the signature covers a URL
the real X never sees. Matching consumer key and access token is the check.
"""

import re
import threading
import urllib.parse

OAUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')


class Credentials:
    def __init__(
        self, bearer_token: str, consumer_key: str, consumer_secret: str, access_token: str, access_token_secret: str
    ):
        self.bearer_token = bearer_token
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret  # kept for signature checks and webhook CRC, not used yet
        self.access_token = access_token
        self.access_token_secret = access_token_secret
        self._lock = threading.Lock()
        self._revoked: set[str] = set()

    def accepts(self, authorization: str) -> bool:
        """Whether an Authorization header is the account's, and not revoked."""
        scheme, _, value = authorization.strip().partition(" ")
        if scheme == "Bearer":
            token = value.strip()
            return token == self.bearer_token and not self.is_revoked(token)
        if scheme == "OAuth":
            params = {name: urllib.parse.unquote(raw) for name, raw in OAUTH_PARAM.findall(value)}
            return (
                params.get("oauth_consumer_key") == self.consumer_key
                and params.get("oauth_token") == self.access_token
                and bool(params.get("oauth_signature"))
                and not self.is_revoked(self.access_token)
            )
        return False

    def set_revoked(self, revoked: bool, token: str | None = None) -> None:
        """Revoke (or restore) one token, or by default both the bearer and the OAuth 1.0a access token."""
        tokens = {token} if token else {self.bearer_token, self.access_token}
        with self._lock:
            if revoked:
                self._revoked |= tokens
            else:
                self._revoked -= tokens

    def is_revoked(self, token: str) -> bool:
        with self._lock:
            return token in self._revoked

    def reset(self) -> None:
        with self._lock:
            self._revoked.clear()
