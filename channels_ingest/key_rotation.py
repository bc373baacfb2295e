"""Re-encrypting every channel's secrets with the newest key, so an old key can be retired without downtime.

``FIELD_ENCRYPTION_KEYS`` is a ``MultiFernet`` list: the first key encrypts, every key decrypts. The README's
procedure: put a new key first (keep the old one after it), deploy, run ``manage.py rotate_channel_secrets``,
then remove the old key. Rows already under the first key are left alone, so the command can be run again
(after an interruption, or twice) safely.
"""

from django.db import transaction
from django.db.models import TextField, Value
from django.db.models.functions import Cast

from .crypto import rotated
from .models import Channel

BATCH_SIZE = 100


def rotate_channel_secrets(*, batch_size: int = BATCH_SIZE) -> tuple[int, int]:
    """(rotated, checked): how many channels' secrets were re-encrypted with the first key, of how many.

    Works in batches, each in its own transaction with its rows locked, so an admin saving a channel at the
    same time is neither overwritten nor blocked for long. Raises ``cryptography.fernet.InvalidToken`` for a
    row no configured key can decrypt (the batch before it stays rotated).
    """
    done = checked = 0
    last_pk = 0
    while True:
        with transaction.atomic():
            batch = list(
                Channel.objects.select_for_update()
                .filter(pk__gt=last_pk)
                .order_by("pk")
                # The stored Fernet token itself, not the decrypted dict the field would return.
                .annotate(token=Cast("secrets", TextField()))
                .values_list("pk", "token")[:batch_size]
            )
            for pk, token in batch:
                new_token = rotated(token) if token else None
                if new_token is not None:
                    Channel.objects.filter(pk=pk).update(secrets=Value(new_token, output_field=TextField()))
                    done += 1
        if not batch:
            return done, checked
        checked += len(batch)
        last_pk = batch[-1][0]
