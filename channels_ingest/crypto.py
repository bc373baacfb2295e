"""Encryption at rest for channel credentials (Fernet, keys from the environment)."""

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

from tickets.audit import redacted


def _fernet():
    return MultiFernet([Fernet(key) for key in settings.FIELD_ENCRYPTION_KEYS])


class EncryptedJSONField(models.TextField):
    """A dict stored as a Fernet token. The plaintext never reaches the database."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return {}
        try:
            return json.loads(_fernet().decrypt(value.encode()))
        except InvalidToken as exc:
            raise ValueError("Channel secrets cannot be decrypted with FIELD_ENCRYPTION_KEYS.") from exc

    def to_python(self, value):
        return value if isinstance(value, dict) else {}

    def get_prep_value(self, value):
        return _fernet().encrypt(json.dumps(value or {}).encode()).decode()


def mask(secret: str) -> str:
    """How a credential is shown back: that it is set and, for a long one, its last 4 characters (enough to
    recognise it, not to use it or guess its kind from a prefix such as ``xoxb-``). The audit log's rule."""
    return redacted(secret)


def rotated(token: str) -> str | None:
    """``token`` re-encrypted with the first of ``FIELD_ENCRYPTION_KEYS``; None when it already is (so rotating
    twice writes nothing). Raises ``InvalidToken`` when no configured key decrypts it."""
    try:
        Fernet(settings.FIELD_ENCRYPTION_KEYS[0]).decrypt(token.encode())
    except InvalidToken:
        return _fernet().rotate(token.encode()).decode()
    return None
