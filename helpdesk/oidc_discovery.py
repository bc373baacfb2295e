"""The OpenID Connect provider's endpoints, from OIDC_OP_* or, given OIDC_ISSUER alone, its discovery document."""

from collections.abc import Mapping

import requests
from django.core.exceptions import ImproperlyConfigured

#: Our settings' names for the discovery document's keys (as mozilla-django-oidc reads them).
ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


def provider_endpoints(env: Mapping[str, str]) -> dict[str, str]:
    given = {name: env.get(name, "") for name in ENDPOINTS}
    if all(given.values()):
        return given
    issuer = env.get("OIDC_ISSUER", "").rstrip("/")
    if not issuer:
        missing = ", ".join(name for name, value in given.items() if not value)
        raise ImproperlyConfigured(f"OIDC_RP_CLIENT_ID is set: set OIDC_ISSUER, or {missing}.")
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=10)
        response.raise_for_status()
        document = response.json()
        return {name: given[name] or document[key] for name, key in ENDPOINTS.items()}
    except (requests.RequestException, ValueError, KeyError) as exc:
        raise ImproperlyConfigured(f"Could not read the OIDC provider's discovery document at {url}: {exc}") from exc
