"""Which adapter serves a channel kind: ``settings.CHANNEL_ADAPTERS`` maps each kind to a dotted path,
as Django's ``EMAIL_BACKEND`` names a mail backend."""

from django.conf import settings
from django.utils.module_loading import import_string

from channel_adapters.base import Capability


def adapter_class(kind):
    """The adapter class configured for a channel kind in ``settings.CHANNEL_ADAPTERS``."""
    try:
        path = settings.CHANNEL_ADAPTERS[kind]
    except KeyError:
        raise LookupError(f"No adapter is configured for channel kind {kind!r}.") from None
    return import_string(path)


def can_poll(kind) -> bool:
    """Whether channels of this kind are polled; False for a kind no longer configured."""
    try:
        return Capability.POLL in adapter_class(kind).capabilities
    except LookupError:
        return False
