"""How long to wait before trying again: replies, file downloads and outage retries share it."""

import random

from channel_adapters.base import TransientError

MAX_BACKOFF_SECONDS = 300


def backoff_delay(attempts: int, *, first: float = 1) -> float:
    """Seconds until the next try after ``attempts`` failed ones: exponential from ``first`` with jitter, capped."""
    jitter = 1 + random.random() / 4  # noqa: S311 - spreads retries out; nothing secret depends on it
    return min(MAX_BACKOFF_SECONDS, first * 2 ** (attempts - 1)) * jitter


def retry_delay(attempts: int, exc: Exception | None = None, *, first: float = 1) -> float:
    """``backoff_delay``, and never sooner than the platform asked (a ``TransientError``'s Retry-After, X's
    rate-limit reset)."""
    asked = exc.retry_after if isinstance(exc, TransientError) else None
    return max(asked or 0, backoff_delay(attempts, first=first))
