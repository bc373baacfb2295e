"""Web API traffic control for tests: injected faults, latency and call statistics."""

from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass

from ..common import CallCounter, FaultQueues

DEFAULT_RETRY_AFTER = 1  # seconds


@dataclass
class Fault:
    """The answer the next `remaining` calls of a method get instead of the real one."""

    remaining: int
    status: int  # HTTP status; 200 for an ok:false Slack error
    error: str
    retry_after: int | None = None  # Retry-After header value, for 429s

    @property
    def headers(self) -> dict:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


def build_fault(
    count: int = 1, status: int | None = None, error: str | None = None, retry_after: int | None = None
) -> Fault:
    status = status or 200
    if count < 1:
        raise ValueError("count must be at least 1")
    if status == 200 and not error:
        raise ValueError("an HTTP 200 fault needs an error code")
    if status == 429:
        retry_after = DEFAULT_RETRY_AFTER if retry_after is None else int(retry_after)
        return Fault(count, 429, error or "ratelimited", retry_after)
    default_error = {503: "service_unavailable"}.get(status, "internal_error")
    return Fault(count, status, error or default_error, retry_after)


class FaultPlan(FaultQueues):
    """Faults and latency armed per Web API method; faults are used up in the order armed."""

    def __init__(self):
        super().__init__()
        self._latency: dict[str, float] = {}

    def arm(self, method: str, fault: Fault) -> None:
        self._enqueue(method, fault)

    def set_latency(self, method: str, seconds: float) -> None:
        with self._lock:
            if seconds > 0:
                self._latency[method] = seconds
            else:
                self._latency.pop(method, None)

    def latency(self, method: str) -> float:
        with self._lock:
            return self._latency.get(method, 0.0)

    def clear(self) -> None:
        super().clear()
        with self._lock:
            self._latency.clear()


class CallStats(CallCounter):
    """Calls per method, and the peak of concurrent calls per (method, channel).

    The peak proves that an app never runs two polls of one channel at once.
    """

    def __init__(self):
        super().__init__()
        self._in_flight: Counter = Counter()
        self._max_in_flight: dict[str, int] = {}

    @contextmanager
    def in_flight(self, method: str, channel: str):
        key = f"{method}:{channel}" if channel else method
        with self._lock:
            self._in_flight[key] += 1
            self._max_in_flight[key] = max(self._max_in_flight.get(key, 0), self._in_flight[key])
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[key] -= 1

    def snapshot(self) -> dict:
        with self._lock:
            return {"calls": dict(self._calls), "max_inflight": dict(self._max_in_flight)}

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._max_in_flight.clear()
            # In-flight counts stay: those requests are still running and will decrement.
