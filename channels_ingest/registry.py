"""Which adapter serves a channel kind: ``settings.CHANNEL_ADAPTERS`` maps each kind to a dotted path,
as Django's ``EMAIL_BACKEND`` names a mail backend."""

from django.conf import settings
from django.utils.module_loading import import_string


def adapter_class(kind):
    """The adapter class configured for a channel kind in ``settings.CHANNEL_ADAPTERS``."""
    try:
        path = settings.CHANNEL_ADAPTERS[kind]
    except KeyError:
        raise LookupError(f"No adapter is configured for channel kind {kind!r}.") from None
    return import_string(path)
