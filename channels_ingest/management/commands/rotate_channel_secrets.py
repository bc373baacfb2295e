"""``manage.py rotate_channel_secrets``: re-encrypt every channel's credentials with the first of
``FIELD_ENCRYPTION_KEYS``, so the old key can then be removed (README: "Rotating the encryption key")."""

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError

from channels_ingest.key_rotation import BATCH_SIZE, rotate_channel_secrets


class Command(BaseCommand):
    help = "Re-encrypt every channel's secrets with the first key of FIELD_ENCRYPTION_KEYS (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="Channels per transaction.")

    def handle(self, *args, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be 1 or more.")
        try:
            done, checked = rotate_channel_secrets(batch_size=batch_size)
        except InvalidToken:
            raise CommandError(
                "A channel's secrets cannot be decrypted with any key of FIELD_ENCRYPTION_KEYS: "
                "keep the old key in the list until this command has run."
            ) from None
        self.stdout.write(f"Re-encrypted the secrets of {done} of {checked} channels with the first key.")
