"""A channel's configuration as an admin gives it: checked, and split into settings and encrypted secrets.

The adapter checks what its platform needs (``ChannelAdapter.split_config``); the pipeline then checks its own
options, which every channel may carry: the triage rule (``triage``), the public and automatic
acknowledgements (``acknowledgements``: ``public_ack``, ``auto_ack``), the monthly budget (``usage``), and how many days back the first poll imports (``import_days``, default 7).
"""

from channel_adapters.base import DEFAULT_IMPORT_DAYS, ConfigError

from . import acknowledgements, triage, usage
from .mail_transport import validate_backend
from .registry import adapter_class

#: Platforms keep about this much history within reach of their read APIs (X's DM events: 30 days).
MAX_IMPORT_DAYS = 90


def clean_channel_config(kind: str, raw: dict) -> tuple[dict, dict]:
    """(config, secrets) for a channel of ``kind``. Raises ``ConfigError``, or ``LookupError`` for an unknown kind."""
    config, secrets = adapter_class(kind).split_config(raw)
    triage.validate(config)
    acknowledgements.validate(config)
    usage.validate(config)
    _validate_import_days(config)
    validate_backend(config.get("email_backend", ""))
    return config, secrets


def _validate_import_days(config: dict) -> None:
    days = config.get("import_days", DEFAULT_IMPORT_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_IMPORT_DAYS:
        raise ConfigError(f"import_days must be a whole number of days from 0 to {MAX_IMPORT_DAYS}.")
