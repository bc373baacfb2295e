"""Events API delivery: signed event_callback POSTs to the app's Request URL.

Events are queued and sent by worker threads (one by default, which keeps them
in order). Delivery follows Slack's rules: a non-2xx answer, a timeout or a
refused connection is retried up to three times with X-Slack-Retry-Num /
X-Slack-Retry-Reason, unless the app answers with X-Slack-No-Retry: 1.
"""

import hashlib
import hmac
import http.client
import json
import queue
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from ..common import direct_opener  # loopback deliveries never go through an HTTP proxy
from .workspace import APP_ID, BOT_USER_ID

VERIFICATION_TOKEN = "verification-token"
DEFAULT_RETRY_DELAYS = (0.5, 1.0, 2.0)  # real Slack: immediately, +1 min, +5 min
DEFAULT_TIMEOUT = 3.0  # Slack gives the app 3 seconds to answer


def sign(signing_secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def new_event_id() -> str:
    # Random rather than a counter: the app's dedupe store outlives emulator restarts.
    return "Ev" + secrets.token_hex(5).upper()


@dataclass
class AppReply:
    """The app's answer to one delivery attempt (status None when there was no answer)."""

    status: int | None
    headers: Mapping[str, str]
    body: str
    failure: str | None = None  # "timeout" or "connection_failed"

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def no_retry(self) -> bool:
        return self.headers.get("X-Slack-No-Retry") == "1"

    @property
    def retry_reason(self) -> str:
        if self.failure == "timeout":
            return "http_timeout"
        return "connection_failed" if self.failure else "http_error"


class EventDispatcher:
    def __init__(
        self,
        team_id: str,
        events_url: str | None,
        signing_secret: str,
        workers: int = 1,
        retry_delays=DEFAULT_RETRY_DELAYS,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        self.team_id = team_id
        # One retry per delay (Slack makes three).
        self._initial_settings = (events_url, signing_secret, tuple(retry_delays), timeout)
        self.events_url, self.signing_secret, self.retry_delays, self.timeout = self._initial_settings
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        # Bumped by reset(); a delivery started before a reset stops retrying.
        self._generation = 0
        self._envelopes: dict[str, dict] = {}
        self._deliveries: list[dict] = []
        self._workers = [
            threading.Thread(target=self._work, name=f"slack-events-{n}", daemon=True) for n in range(workers)
        ]

    def start(self) -> None:
        for worker in self._workers:
            worker.start()

    def stop(self) -> None:
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join(timeout=self.timeout + 1)

    def configure(
        self,
        events_url: str | None = None,
        signing_secret: str | None = None,
        retry_delays=None,
        timeout: float | None = None,
    ) -> None:
        """Change the given settings; an events_url of "" switches delivery off."""
        with self._lock:
            if events_url is not None:
                self.events_url = events_url or None
            if signing_secret:
                self.signing_secret = signing_secret
            if retry_delays is not None:
                self.retry_delays = tuple(float(delay) for delay in retry_delays)
            if timeout is not None:
                self.timeout = float(timeout)

    def config(self) -> dict:
        with self._lock:
            return {
                "events_url": self.events_url,
                "signing_secret": self.signing_secret,
                "event_retry_delays": list(self.retry_delays),
                "event_timeout": self.timeout,
            }

    def reset(self) -> None:
        """Drop queued events and the delivery log; restore the constructor's settings."""
        with self._lock:
            self.events_url, self.signing_secret, self.retry_delays, self.timeout = self._initial_settings
            self._generation += 1
            self._envelopes.clear()
            self._deliveries.clear()
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:  # a stop() sentinel belongs to the workers: keep it
                    self._queue.put(None)
                    break
                self._pending -= 1
            self._idle.notify_all()

    # -- publishing -----------------------------------------------------------

    def publish(self, event: dict) -> str | None:
        """Wrap a Slack event in an event_callback envelope and queue it; None if no Request URL."""
        with self._lock:
            if not self.events_url:
                return None
            envelope = {
                "token": VERIFICATION_TOKEN,
                "team_id": self.team_id,
                "api_app_id": APP_ID,
                "event": event,
                "type": "event_callback",
                "event_id": new_event_id(),
                "event_time": int(time.time()),
                "authorizations": [
                    {
                        "enterprise_id": None,
                        "team_id": self.team_id,
                        "user_id": BOT_USER_ID,
                        "is_bot": True,
                        "is_enterprise_install": False,
                    }
                ],
                "authed_users": [BOT_USER_ID],
                "is_ext_shared_channel": False,
            }
            self._envelopes[envelope["event_id"]] = envelope
            self._pending += 1
            self._queue.put((self._generation, envelope))
            return envelope["event_id"]

    def redeliver(self, event_id: str) -> dict:
        """Send a stored event again, once, as Slack's first retry would (same event_id)."""
        with self._lock:
            envelope = self._envelopes.get(event_id)
            url = self.events_url
        if envelope is None:
            raise KeyError(event_id)
        reply = self._attempt(url, envelope, retry_num=1, retry_reason="http_timeout")
        return {"event_id": event_id, "status": reply.status}

    def verify_url(self) -> dict:
        """Run Slack's url_verification handshake against the Request URL."""
        challenge = secrets.token_urlsafe(24)
        payload = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
        reply = self._post(self.events_url, payload, extra_headers={})
        return {"status": reply.status, "body": reply.body, "challenge": challenge}

    # -- observing ------------------------------------------------------------

    def deliveries(self) -> list[dict]:
        with self._lock:
            return [dict(attempt) for attempt in self._deliveries]

    def pending(self) -> int:
        with self._lock:
            return self._pending

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued event is delivered or given up on."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    # -- delivery -------------------------------------------------------------

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            generation, envelope = item
            try:
                self._deliver(generation, envelope)
            finally:
                with self._lock:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, generation: int, envelope: dict) -> None:
        retry_num, retry_reason = 0, None
        while True:
            with self._lock:
                if generation != self._generation or not self.events_url:
                    return
                url = self.events_url
            reply = self._attempt(url, envelope, retry_num, retry_reason)
            if reply.ok or reply.no_retry or retry_num == len(self.retry_delays):
                return
            time.sleep(self.retry_delays[retry_num])
            retry_num, retry_reason = retry_num + 1, reply.retry_reason

    def _attempt(self, url: str, envelope: dict, retry_num: int, retry_reason: str | None) -> AppReply:
        """POST the envelope once and log the attempt."""
        headers = {}
        if retry_num:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        reply = self._post(url, envelope, headers)
        attempt = {"event_id": envelope["event_id"], "status": reply.status, "retry_num": retry_num}
        if reply.failure:
            attempt["error"] = reply.failure
        with self._lock:
            self._deliveries.append(attempt)
        return reply

    def _post(self, url: str, payload: dict, extra_headers: dict) -> AppReply:
        """Signed POST of a JSON payload to the app."""
        body = json.dumps(payload).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(self.signing_secret, timestamp, body),
            **extra_headers,
        }
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with direct_opener.open(request, timeout=self.timeout) as response:
                return AppReply(response.status, response.headers, response.read().decode(errors="replace"))
        except urllib.error.HTTPError as exc:
            return AppReply(exc.code, exc.headers, exc.read().decode(errors="replace"))
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, bad responses
            timed_out = isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError)
            return AppReply(None, {}, "", failure="timeout" if timed_out else "connection_failed")
