"""What a failed HTTP request says about a write, for adapters on ``requests``."""

from __future__ import annotations

import requests
import urllib3


def may_have_arrived(exc: requests.RequestException) -> bool:
    """Whether a failed request may have reached the platform: yes after a read timeout or a connection that broke once
    open; no when the connection was never made."""
    if isinstance(exc, requests.ReadTimeout):
        return True
    if isinstance(exc, requests.ConnectTimeout) or not isinstance(exc, requests.ConnectionError):
        return False
    cause = exc.args[0] if exc.args else None
    cause = getattr(cause, "reason", cause)  # urllib3's MaxRetryError wraps the cause
    return not isinstance(cause, urllib3.exceptions.NewConnectionError)
