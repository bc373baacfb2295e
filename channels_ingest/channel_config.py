"""A channel's configuration as an admin gives it: checked, and split into settings and encrypted secrets.

The adapter checks what its platform needs (``ChannelAdapter.split_config``); the pipeline then checks its own
options, which every channel may carry: the triage rule and public acknowledgement (``triage``) and the
monthly budget (``usage``).
"""

from . import triage, usage
from .registry import adapter_class


def clean_channel_config(kind: str, raw: dict) -> tuple[dict, dict]:
    """(config, secrets) for a channel of ``kind``. Raises ``ConfigError``, or ``LookupError`` for an unknown kind."""
    config, secrets = adapter_class(kind).split_config(raw)
    triage.validate(config)
    usage.validate(config)
    return config, secrets
