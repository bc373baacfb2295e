"""How long a platform asked us to wait, from its answer's headers: one reading for every adapter.

Platforms say it two ways: ``Retry-After`` (RFC 9110: delta-seconds or an HTTP date; Slack, Meta) and a
reset time in epoch seconds (X: ``x-rate-limit-reset``). A header that is missing or malformed never
raises: the caller's default applies, so a platform's odd answer cannot crash a poll or a delivery.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

DEFAULT_WAIT_SECONDS = 60.0
#: A reset time already passed (clock skew) still waits this long, so the retry does not hit the same limit.
MIN_WAIT_SECONDS = 1.0
_SECONDS = re.compile(r"^\d{1,10}(\.\d{1,6})?$")


def _header(headers: Mapping, name: str) -> str:
    """A header's value whatever the case of its name (``requests`` headers are case-insensitive, dicts are not)."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == name.lower()), None)
    return str(value).strip() if value is not None else ""


def wait_seconds(headers: Mapping, *, default: float = DEFAULT_WAIT_SECONDS, now: float | None = None) -> float:
    """Seconds to wait before trying again, as the platform's headers say; ``default`` when they say nothing usable.

    ``Retry-After`` wins over a reset time. ``now`` (epoch seconds) is for reset times and HTTP dates.
    """
    now = time.time() if now is None else now
    retry_after = _header(headers, "Retry-After")
    if _SECONDS.match(retry_after):
        return float(retry_after)
    if retry_after:
        try:
            return max(MIN_WAIT_SECONDS, parsedate_to_datetime(retry_after).timestamp() - now)
        except (TypeError, ValueError, OverflowError):
            pass  # neither seconds nor a date: fall through to the reset time, then the default
    reset = _header(headers, "x-rate-limit-reset")
    if _SECONDS.match(reset):
        return max(MIN_WAIT_SECONDS, float(reset) - now)
    return default
