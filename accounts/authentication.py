"""The API's token scheme: DRF's tokens, which expire (settings.API_TOKEN_TTL). Kept apart from the token view
(accounts/tokens.py): DRF imports this module while it sets up its views."""

from django.conf import settings
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed


def expires_at(token: Token):
    return token.created + settings.API_TOKEN_TTL


def is_expired(token: Token) -> bool:
    return expires_at(token) <= timezone.now()


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token scheme, refusing a token older than API_TOKEN_TTL (401, saying how to get a new one)."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if is_expired(token):
            raise AuthenticationFailed("This token has expired: ask /api/auth/token/ for a new one.")
        return user, token
