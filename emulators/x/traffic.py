"""API traffic control: X's per-endpoint rate-limit windows, injected faults and call statistics."""

import math
import threading
import time
from dataclasses import dataclass

from ..common import CallCounter, FaultQueues

WINDOW_15_MIN = 15 * 60

# Per-user limits of the real API (docs.x.com rate-limits page and the recorded fixtures).
DEFAULT_RATE_LIMITS = {
    "mentions": (300, WINDOW_15_MIN),
    "dm_events": (15, WINDOW_15_MIN),
    "create_tweet": (100, WINDOW_15_MIN),
    "dm_send": (15, WINDOW_15_MIN),
    "delete_tweet": (50, WINDOW_15_MIN),
    "users_me": (75, WINDOW_15_MIN),
    "users": (300, WINDOW_15_MIN),
    "tweets": (300, WINDOW_15_MIN),
    "user_tweets": (900, WINDOW_15_MIN),
    "dm_conversation_events": (15, WINDOW_15_MIN),
    # Media downloads (pbs/video.twimg.com, ton.twitter.com) publish no limit; this generous window is the
    # emulator's, so that a configured limit or an armed fault answers like the API, with the same headers.
    "media": (10_000, WINDOW_15_MIN),
    # Unknown routes still answer with rate-limit headers, which tweepy's wait_on_rate_limit relies on.
    "unknown": (300, WINDOW_15_MIN),
}


@dataclass
class RateWindow:
    """A fixed window: `limit` calls, counted from the first call until `reset_at`."""

    limit: int
    seconds: float
    used: int = 0
    reset_at: float = 0.0

    def roll(self, now: float) -> None:
        if now >= self.reset_at:
            self.used = 0
            self.reset_at = now + self.seconds

    def headers(self, exhausted: bool = False) -> dict:
        remaining = 0 if exhausted else max(self.limit - self.used, 0)
        return {
            "x-rate-limit-limit": str(self.limit),
            "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": str(math.ceil(self.reset_at)),
        }


class RateLimiter:
    def __init__(self):
        self._lock = threading.Lock()
        self._windows: dict[str, RateWindow] = {}
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._windows = {name: RateWindow(limit, seconds) for name, (limit, seconds) in DEFAULT_RATE_LIMITS.items()}

    def configure(self, endpoint: str, limit: int, window_seconds: float) -> None:
        """Replace an endpoint's window; the count starts afresh."""
        if endpoint not in DEFAULT_RATE_LIMITS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {sorted(DEFAULT_RATE_LIMITS)}")
        if limit < 0 or window_seconds <= 0:
            raise ValueError("limit must be >= 0 and window_seconds > 0")
        with self._lock:
            self._windows[endpoint] = RateWindow(limit, window_seconds)

    def take(self, endpoint: str) -> tuple[bool, dict]:
        """Count one call; returns (allowed, headers). A refused call does not count."""
        with self._lock:
            window = self._windows[endpoint]
            window.roll(time.time())
            if window.used >= window.limit:
                return False, window.headers()
            window.used += 1
            return True, window.headers()

    def peek(self, endpoint: str, exhausted: bool = False) -> dict:
        """Headers for an answer that does not count against the window (401s, injected faults)."""
        with self._lock:
            window = self._windows[endpoint]
            window.roll(time.time())
            return window.headers(exhausted)

    def snapshot(self) -> dict:
        now = time.time()
        with self._lock:
            return {
                name: {
                    "limit": window.limit,
                    "window_seconds": window.seconds,
                    "remaining": window.limit - window.used if now < window.reset_at else window.limit,
                }
                for name, window in self._windows.items()
            }


@dataclass
class Fault:
    """The answer the next `remaining` calls of an endpoint get instead of the real one."""

    remaining: int
    status: int


class FaultPlan(FaultQueues):
    """Faults armed per endpoint name, used up in the order armed, plus one-shot repeated pages."""

    def __init__(self):
        super().__init__()
        self._repeat_next_page: set[str] = set()

    def arm(self, endpoint: str, count: int, status: int) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status")
        self._enqueue(endpoint, Fault(count, status))

    def arm_repeated_page(self, endpoint: str) -> None:
        with self._lock:
            self._repeat_next_page.add(endpoint)

    def take_repeated_page(self, endpoint: str) -> bool:
        with self._lock:
            if endpoint in self._repeat_next_page:
                self._repeat_next_page.discard(endpoint)
                return True
            return False

    def clear(self) -> None:
        super().clear()
        with self._lock:
            self._repeat_next_page.clear()


class CallStats(CallCounter):
    """Calls per route template ("GET /2/users/:id/mentions"), answered or refused."""
