"""`manage.py rotate_channel_secrets`: every channel's secrets re-encrypted with the first key, so the old key can go."""

from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import CommandError, call_command
from django.db import connection

from channels_ingest.models import Channel

pytestmark = pytest.mark.django_db

OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def rotate(*args):
    out = StringIO()
    call_command("rotate_channel_secrets", *args, stdout=out)
    return out.getvalue()


def stored_tokens():
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, secrets FROM channels_ingest_channel ORDER BY name")
        return dict(cursor.fetchall())


@pytest.fixture
def channels_under_the_old_key(settings):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    for number in range(5):
        Channel.objects.create(kind="locmem", name=f"lm{number}", secrets={"webhook_secret": f"secret-{number}"})
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]  # step 1: the new key first, the old one kept


def test_rotation_re_encrypts_every_channel_with_the_first_key_in_batches(settings, channels_under_the_old_key):
    assert "Re-encrypted the secrets of 5 of 5 channels" in rotate("--batch-size", "2")
    for token in stored_tokens().values():
        Fernet(NEW_KEY).decrypt(token.encode())  # raises if not under the new key
        with pytest.raises(InvalidToken):
            Fernet(OLD_KEY).decrypt(token.encode())

    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]  # the last step: the old key removed
    assert [channel.secrets for channel in Channel.objects.order_by("name")] == [
        {"webhook_secret": f"secret-{number}"} for number in range(5)
    ]


def test_rotating_again_writes_nothing(channels_under_the_old_key):
    rotate()
    tokens = stored_tokens()
    assert "Re-encrypted the secrets of 0 of 5 channels" in rotate()
    assert stored_tokens() == tokens


def test_a_channel_no_key_decrypts_stops_the_command_with_what_to_do(settings, channels_under_the_old_key):
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]  # the old key removed too early
    with pytest.raises(CommandError, match="keep the old key in the list until this command has run"):
        rotate()
