"""The emulator's HTTP server: X API v2 under /2/, the control API under /_emulator/."""

import http
import json
import time

from ..common import CONTROL_PREFIX, EmulatorServer, JsonRequestHandler, StormPlan
from .api_v2 import ApiV2
from .auth import Credentials
from .billing import ReadBilling
from .client import XEmulatorClient
from .control import ControlApi
from .media import is_media_path
from .store import Store, XError
from .traffic import CallStats, FaultPlan, RateLimiter

__all__ = ["CONTROL_PREFIX", "XEmulator", "problem"]


def problem(status: int, detail: str | None = None) -> dict:
    """X's RFC 7807 body for auth, rate-limit and server errors."""
    phrase = http.HTTPStatus(status).phrase
    return {"title": phrase, "type": "about:blank", "status": status, "detail": detail or phrase}


class _RequestHandler(JsonRequestHandler):
    server_version = "XEmulator/1.0"

    def do_PUT(self):
        self._dispatch("PUT")

    def internal_error(self) -> tuple[int, dict, dict]:
        return 500, problem(500), self.server.emulator.rate_limits.peek("unknown")  # like an X outage

    def serve(self, verb: str, path: str, query: dict, body: bytes) -> None:
        authorization = self.headers.get("Authorization", "")
        if verb == "GET" and is_media_path(path):
            self._reply_bytes(*self.server.emulator.serve_media(path, authorization))
            return
        self._reply(*self.server.emulator.serve_api(verb, path, query, body, authorization))


class XEmulator(EmulatorServer, XEmulatorClient):
    """A local X speaking API v2 for one account (the app's), with a control API for tests.

    It is also a control API client of itself, so `emu.post(...)`, `emu.stats()`
    and the other XEmulatorClient helpers work on it directly.
    """

    handler_class = _RequestHandler
    client_class = XEmulatorClient
    thread_name = "x-emulator"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        account_id: str = "9000000000000000001",
        account_username: str = "ithelp",
        account_name: str = "IT Help",
        bearer_token: str = "x-emulator-bearer",
        consumer_key: str = "ck",
        consumer_secret: str = "cs",
        access_token: str = "at",
        access_token_secret: str = "ats",
        verbose: bool = False,
    ):
        self.store = Store(account_id, account_username, account_name)
        self.credentials = Credentials(bearer_token, consumer_key, consumer_secret, access_token, access_token_secret)
        self.faults = FaultPlan()
        self.rate_limits = RateLimiter()
        self.call_stats = CallStats()
        self.read_billing = ReadBilling()
        self.api = ApiV2(self.store, self.faults)
        self.control = ControlApi(
            self.store,
            self.credentials,
            self.faults,
            self.rate_limits,
            self.call_stats,
            self.reset_state,
            billing=self.read_billing,
        )
        self.storms = StormPlan()
        self.control.route_storms(self.storms)
        self._bind(host, port, verbose)
        self.api.base_url = self.url

    def reset_state(self) -> None:
        """Everything back to the account alone and the constructor's settings."""
        self.store.reset()
        self.credentials.reset()
        self.faults.clear()
        self.rate_limits.reset()
        self.call_stats.reset()
        self.read_billing.reset()
        self.storms.stop()

    def storm_key(self, verb: str, path: str) -> str | None:
        """What a storm calls this request: its rate-limit endpoint ("mentions", "create_tweet", "media", ...)."""
        if verb == "GET" and is_media_path(path):
            return "media"
        route, _ = self.api.resolve(verb, path)
        return route.endpoint if route else None

    def storm_answer(self, kind: str, key: str) -> tuple[int, dict, dict]:
        """X's answer to a call a storm struck: a problem JSON 5xx, or a 429 whose window resets soon."""
        if kind == "429":
            headers = {
                **self.rate_limits.peek(key, exhausted=True),
                "x-rate-limit-reset": str(int(time.time()) + self.storms.retry_after),
            }
            return 429, problem(429), headers
        status = self.storms.choice(key, [500, 502, 503, 504])
        return status, problem(status), self.rate_limits.peek(key)

    def serve_api(self, verb: str, path: str, query: dict, body: bytes, authorization: str) -> tuple[int, dict, dict]:
        """One API v2 call; returns (HTTP status, JSON body, headers). Every answer has rate-limit headers."""
        route, args = self.api.resolve(verb, path)
        if route is None:
            self.call_stats.count(f"{verb} {path}")
            return 404, problem(404), self.rate_limits.peek("unknown")
        self.call_stats.count(route.name)
        fault = self.faults.take(route.endpoint)
        if fault:
            return fault.status, problem(fault.status), self.rate_limits.peek(route.endpoint, fault.status == 429)
        if not self.credentials.accepts(authorization):
            return 401, problem(401), self.rate_limits.peek(route.endpoint)
        allowed, headers = self.rate_limits.take(route.endpoint)
        if not allowed:
            return 429, problem(429), headers
        try:
            status, payload = route.handler(*args, query=query, body=body)
        except XError as exc:
            return exc.status, exc.body, headers
        if status == 200:
            self.read_billing.record(route.endpoint, payload)
        after_write = self.faults.take_after_write(route.endpoint)  # applied, then answered late or not at all
        if after_write:
            after_write.apply()
        return status, payload, headers

    def serve_media(self, path: str, authorization: str) -> tuple[int, bytes, str, dict]:
        """A media download: (HTTP status, body, content type, headers). Errors are problem JSON with
        rate-limit headers, like the API's; DM media needs an OAuth 1.0a signature. Fault key: "media"."""
        self.call_stats.count("GET media")
        fault = self.faults.take("media")
        if fault:
            return _problem_bytes(fault.status, self.rate_limits.peek("media", fault.status == 429))
        file = self.store.media_file(path)
        if file is None:
            return _problem_bytes(404, self.rate_limits.peek("media"))
        signed = authorization.startswith("OAuth ") and self.credentials.accepts(authorization)
        if file.signed_only and not signed:
            return _problem_bytes(401, self.rate_limits.peek("media"))
        allowed, headers = self.rate_limits.take("media")
        if not allowed:
            return _problem_bytes(429, headers)
        return 200, file.data, file.content_type, headers


def _problem_bytes(status: int, headers: dict) -> tuple[int, bytes, str, dict]:
    return status, json.dumps(problem(status)).encode(), "application/problem+json", headers
