"""Usage and throttling: Meta's ``X-App-Usage`` / ``X-Business-Use-Case-Usage`` headers and throttle codes.

Calls are counted in sliding windows per scope: ``"app"`` (every call; Meta's application-level limit,
code 4), an account id (the business-use-case limit of that Page, Instagram account or WhatsApp business
account: codes 80001, 80002, 80007) and an endpoint key such as ``"send"`` (a custom limit, code 613).
A scope's usage is calls in its window / its budget, in percent; at 100 % the next call is refused with the
scope's code (refused calls do not count) until the oldest call leaves the window. Without a configured
budget, the app scope has a generous default (so the headers move, but tests never hit it) and the others
have none. ``set_usage`` pins a scope's reported figure (the larger of the two counts), e.g. to 95 % so
that a poll backs off, or to 100 % to throttle until cleared.
"""

import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

DEFAULT_APP_BUDGET = (10_000, 3600.0)
BUC_CODES = {"page": 80001, "instagram": 80002, "whatsapp": 80007}
BUC_TYPES = {"page": "pages", "instagram": "instagram", "whatsapp": "whatsapp_business_management"}
APP_CODE = 4
ENDPOINT_CODE = 613


@dataclass
class Window:
    budget: int
    seconds: float
    calls: deque = field(default_factory=deque)

    def prune(self, at: float) -> None:
        while self.calls and self.calls[0] <= at - self.seconds:
            self.calls.popleft()

    def percent(self) -> int:
        return 100 if self.budget <= 0 else min(100, math.floor(len(self.calls) * 100 / self.budget))

    def regain_seconds(self, at: float) -> float:
        if len(self.calls) < self.budget or not self.calls:
            return 0.0
        # The call that has to leave the window before one more fits.
        return max(0.0, self.calls[len(self.calls) - self.budget] + self.seconds - at)


@dataclass
class Pinned:
    percent: int
    regain_minutes: int


class UsageMeter:
    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._windows: dict[str, Window] = {"app": Window(*DEFAULT_APP_BUDGET)}
            self._pinned: dict[str, Pinned] = {}
            self._calls = 0

    def set_budget(self, scope: str, calls: int, window_seconds: float = 3600.0) -> None:
        """Allow ``calls`` per ``window_seconds`` in a scope; the count starts afresh."""
        if calls < 0 or window_seconds <= 0:
            raise ValueError("calls must be >= 0 and window_seconds > 0")
        with self._lock:
            self._windows[scope] = Window(int(calls), float(window_seconds))

    def set_usage(self, scope: str, percent: int | None, regain_minutes: int = 0) -> None:
        """Report at least ``percent`` for a scope (None: back to the counted figure)."""
        with self._lock:
            if percent is None:
                self._pinned.pop(scope, None)
            else:
                self._pinned[scope] = Pinned(int(percent), int(regain_minutes))

    def take(self, account, endpoint: str | None) -> tuple[int | None, float, dict]:
        """Count one call on behalf of ``account`` (an Account or None) to ``endpoint``.

        Returns (throttle code or None, seconds until the refused scope has room, headers).
        """
        at = time.monotonic()
        scopes = [("app", APP_CODE)]
        if account is not None:
            scopes.append((self._buc_scope(account), BUC_CODES[account.kind]))
        if endpoint:
            scopes.append((endpoint, ENDPOINT_CODE))
        with self._lock:
            refused: tuple[int, float] | None = None
            for scope, code in scopes:
                window = self._windows.get(scope)
                if window is not None:
                    window.prune(at)
                    if len(window.calls) >= window.budget:
                        refused = refused or (code, window.regain_seconds(at))
                pinned = self._pinned.get(scope)
                if pinned is not None and pinned.percent >= 100:
                    refused = refused or (code, pinned.regain_minutes * 60.0)
            if refused is None:
                self._calls += 1
                for scope, _ in scopes:
                    if scope in self._windows:
                        self._windows[scope].calls.append(at)
            headers = self._headers(account, at)
        code, regain = refused if refused else (None, 0.0)
        return code, regain, headers

    def peek(self, account) -> dict:
        """The headers for an answer that does not count (an auth error, an injected fault)."""
        with self._lock:
            return self._headers(account, time.monotonic())

    def snapshot(self) -> dict:
        at = time.monotonic()
        with self._lock:
            scopes = {}
            for scope, window in self._windows.items():
                window.prune(at)
                scopes[scope] = {
                    "budget": window.budget,
                    "window_seconds": window.seconds,
                    "calls": len(window.calls),
                    "percent": self._percent(scope, at),
                }
            pinned = {
                scope: {"percent": p.percent, "regain_minutes": p.regain_minutes} for scope, p in self._pinned.items()
            }
            return {"calls": self._calls, "scopes": scopes, "pinned": pinned}

    # -- internals ------------------------------------------------------------------------------

    @staticmethod
    def _buc_scope(account) -> str:
        # WhatsApp's business-use-case limits are per business account (WABA), not per number.
        return account.waba_id if account.kind == "whatsapp" and account.waba_id else account.id

    def _percent(self, scope: str, at: float) -> int:
        window = self._windows.get(scope)
        counted = 0
        if window is not None:
            window.prune(at)
            counted = window.percent()
        pinned = self._pinned.get(scope)
        return max(counted, pinned.percent if pinned else 0)

    def _regain_minutes(self, scope: str, at: float) -> int:
        window = self._windows.get(scope)
        seconds = window.regain_seconds(at) if window is not None else 0.0
        pinned = self._pinned.get(scope)
        minutes = math.ceil(seconds / 60)
        return max(minutes, pinned.regain_minutes if pinned and pinned.percent >= 100 else 0)

    def _headers(self, account, at: float) -> dict:
        app = self._percent("app", at)
        headers = {"X-App-Usage": _json({"call_count": app, "total_cputime": max(0, app - 1), "total_time": app})}
        if account is not None:
            scope = self._buc_scope(account)
            percent = self._percent(scope, at)
            usage = {
                "type": BUC_TYPES[account.kind],
                "call_count": percent,
                "total_cputime": max(0, percent - 1),
                "total_time": percent,
                "estimated_time_to_regain_access": self._regain_minutes(scope, at),
            }
            headers["X-Business-Use-Case-Usage"] = _json({scope: [usage]})
        return headers


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))
