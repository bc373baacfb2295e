"""A local OpenID Connect provider for the tests: discovery, an authorize endpoint that approves at once whoever
``sign_in_as`` named, a token endpoint issuing RS256-signed ID tokens, the JWKS and userinfo.

It speaks the authorization-code flow as mozilla-django-oidc uses it, with the checks a real provider makes (client
id and secret, redirect URI, one use of a code), so a misconfigured client fails here as it would for real.
"""

from .server import OIDCProvider

__all__ = ["OIDCProvider"]
