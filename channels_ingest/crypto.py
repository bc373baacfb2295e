"""Encryption at rest for channel credentials (Fernet, keys from the environment)."""

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


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
    """How a credential is shown back: enough to recognise it, not to use it."""
    secret = str(secret)
    if len(secret) <= 8:
        return "****"
    return f"{secret[:4]}…{secret[-4:]}"
