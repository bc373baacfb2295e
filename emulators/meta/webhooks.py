"""Webhook pushes: signed POSTs to each account's registered URL, retried as Meta does, and the GET handshake.

Each push is serialized once; every attempt sends the same bytes with ``X-Hub-Signature-256: sha256=<hex
HMAC-SHA256 of the body with the account's app secret>`` (and the older ``X-Hub-Signature: sha1=...``). A
non-2xx answer, a timeout or a refused connection is retried after each of ``retry_delays`` (Meta retries
for up to 36 hours, WhatsApp for 7 days; the emulator compresses that into seconds), then given up.

One worker thread sends in order of due time, so first attempts keep the order of events; a retry waits in
the schedule without holding back newer pushes. ``drop_next(n)`` loses the next n pushes on purpose (logged
as dropped, never sent), so a test can check that a poll recovers them.
"""

import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from ..common import direct_opener  # loopback deliveries never go through an HTTP proxy

DEFAULT_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
DEFAULT_TIMEOUT = 5.0
USER_AGENT = "facebookexternalua"


def signature_256(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_1(app_secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(app_secret.encode(), body, hashlib.sha1).hexdigest()


@dataclass
class Push:
    id: str
    account_id: str
    body: dict
    raw: bytes
    generation: int
    attempts: int = 0
    outcome: str = "pending"  # pending, delivered, failed (gave up), dropped, no_url


class WebhookPusher:
    def __init__(
        self,
        resolve: Callable[[str], tuple[str, str] | None],
        retry_delays=DEFAULT_RETRY_DELAYS,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        """``resolve(account_id)`` -> (webhook URL, app secret), or None when the account has no URL."""
        self._resolve = resolve
        self._initial = (tuple(float(d) for d in retry_delays), float(timeout))
        self.retry_delays, self.timeout = self._initial
        self._cond = threading.Condition()
        self._schedule: list[tuple[float, int, Push]] = []
        self._order = itertools.count()
        self._pending = 0
        self._generation = 0
        self._drop = 0
        self._pushes: list[Push] = []
        self._attempts: list[dict] = []
        self._stopped = False
        self._worker: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._stopped = False
        self._worker = threading.Thread(target=self._work, name="meta-webhooks", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=self.timeout + 1)
            self._worker = None

    def reset(self) -> None:
        """Forget queued pushes and the log; back to the constructor's settings."""
        with self._cond:
            self.retry_delays, self.timeout = self._initial
            self._generation += 1
            self._pending = 0
            self._schedule.clear()
            self._drop = 0
            self._pushes.clear()
            self._attempts.clear()
            self._cond.notify_all()

    def configure(self, retry_delays=None, timeout: float | None = None) -> dict:
        with self._cond:
            if retry_delays is not None:
                self.retry_delays = tuple(float(delay) for delay in retry_delays)
            if timeout is not None:
                self.timeout = float(timeout)
            return {"retry_delays": list(self.retry_delays), "timeout": self.timeout}

    # -- pushing --------------------------------------------------------------------------------

    def publish(self, account_id: str, body: dict, delay: float = 0.0) -> str:
        """Queue a push to the account's URL, ``delay`` seconds from now; returns its id."""
        raw = json.dumps(body, separators=(",", ":")).encode()  # compact, non-ASCII escaped, like Meta's
        with self._cond:
            push = Push("push-" + secrets.token_hex(6), account_id, body, raw, self._generation)
            self._pushes.append(push)
            if self._drop > 0:
                self._drop -= 1
                push.outcome = "dropped"
                self._attempts.append({"push_id": push.id, "account_id": account_id, "dropped": True, "body": body})
                return push.id
            self._pending += 1
            heapq.heappush(self._schedule, (time.monotonic() + delay, next(self._order), push))
            self._cond.notify_all()
            return push.id

    def drop_next(self, count: int) -> int:
        if count < 0:
            raise ValueError("count must not be negative")
        with self._cond:
            self._drop += count
            return self._drop

    # -- observing ------------------------------------------------------------------------------

    def snapshot(self, account_id: str | None = None) -> dict:
        with self._cond:
            pushes = [
                {"id": p.id, "account_id": p.account_id, "body": p.body, "attempts": p.attempts, "outcome": p.outcome}
                for p in self._pushes
                if account_id is None or p.account_id == account_id
            ]
            attempts = [dict(a) for a in self._attempts if account_id is None or a["account_id"] == account_id]
            return {"pushes": pushes, "attempts": attempts, "pending": self._pending, "drop_next": self._drop}

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued push (retries and delayed receipts included) is delivered or given up."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout=timeout)

    # -- the handshake --------------------------------------------------------------------------

    def handshake(self, url: str, verify_token: str) -> dict:
        """Meta's GET verification of a callback URL: it must answer 200 with hub.challenge as the body."""
        challenge = str(secrets.randbelow(9 * 10**9) + 10**9)
        query = urllib.parse.urlencode(
            {"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": verify_token}
        )
        target = url + ("&" if "?" in url else "?") + query
        request = urllib.request.Request(target, headers={"User-Agent": USER_AGENT}, method="GET")
        status, body, error = None, "", None
        try:
            with direct_opener.open(request, timeout=self.timeout) as response:
                status, body = response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read().decode(errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            error = type(exc).__name__
        passed = status == 200 and body.strip() == challenge
        return {"passed": passed, "status": status, "body": body[:500], "challenge": challenge, "error": error}

    # -- delivery -------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    wait = self._schedule[0][0] - time.monotonic() if self._schedule else None
                    if wait is not None and wait <= 0:
                        break
                    self._cond.wait(timeout=wait)
                if self._stopped:
                    return
                _, _, push = heapq.heappop(self._schedule)
                if push.generation != self._generation:  # queued before a reset
                    continue
                delays = self.retry_delays
            done = self._attempt(push)
            with self._cond:
                if push.generation != self._generation:
                    continue
                if done or push.attempts > len(delays):
                    if not done:
                        push.outcome = "failed"
                    self._pending -= 1
                    self._cond.notify_all()
                else:
                    due = time.monotonic() + delays[push.attempts - 1]
                    heapq.heappush(self._schedule, (due, next(self._order), push))

    def _attempt(self, push: Push) -> bool:
        """POST the push once; True when it is settled (delivered, or nowhere to send it)."""
        target = self._resolve(push.account_id)
        push.attempts += 1
        record = {"push_id": push.id, "account_id": push.account_id, "attempt": push.attempts, "body": push.body}
        if target is None:
            push.outcome = "no_url"
            with self._cond:
                self._attempts.append({**record, "status": None, "error": "no webhook URL"})
            return True
        url, app_secret = target
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Hub-Signature": signature_1(app_secret, push.raw),
            "X-Hub-Signature-256": signature_256(app_secret, push.raw),
        }
        status, error = None, None
        request = urllib.request.Request(url, data=push.raw, headers=headers, method="POST")
        try:
            with direct_opener.open(request, timeout=self.timeout) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, http.client.HTTPException) as exc:  # timeouts, refused connections, resets
            timed_out = isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError)
            error = "timeout" if timed_out else "connection_failed"
        delivered = status is not None and 200 <= status < 300
        if delivered:
            push.outcome = "delivered"
        with self._cond:
            self._attempts.append({**record, "status": status, **({"error": error} if error else {})})
        return delivered
