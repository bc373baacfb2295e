"""How long to wait before trying a failed platform call again: replies and file downloads share it."""

import random

from channel_adapters.base import TransientError

MAX_BACKOFF_SECONDS = 300


def retry_delay(attempts: int, exc: Exception | None = None, *, first: float = 1) -> float:
    """Seconds until the next try after ``attempts`` failed ones: exponential from ``first`` with jitter, capped,
    and never sooner than the platform asked (a ``TransientError``'s Retry-After, X's rate-limit reset)."""
    jitter = 1 + random.random() / 4  # noqa: S311 - spreads retries out; nothing secret depends on it
    backoff = min(MAX_BACKOFF_SECONDS, first * 2 ** (attempts - 1)) * jitter
    asked = exc.retry_after if isinstance(exc, TransientError) else None
    return max(asked or 0, backoff)
