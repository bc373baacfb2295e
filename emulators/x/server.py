"""The emulator's HTTP server: X API v2 under /2/, the control API under /_emulator/."""

import http
import json
import threading
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .api_v2 import ApiV2
from .auth import Credentials
from .client import XEmulatorClient
from .control import ControlApi
from .store import Store, XError
from .traffic import CallStats, FaultPlan, RateLimiter

CONTROL_PREFIX = "/_emulator/"


def problem(status: int, detail: str | None = None) -> dict:
    """X's RFC 7807 body for auth, rate-limit and server errors."""
    phrase = http.HTTPStatus(status).phrase
    return {"title": phrase, "type": "about:blank", "status": status, "detail": detail or phrase}


class XEmulator(XEmulatorClient):
    """A local X speaking API v2 for one account (the app's), with a control API for tests.

    It is also a control API client of itself, so `emu.post(...)`, `emu.stats()`
    and the other XEmulatorClient helpers work on it directly.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, account_id: str = "9000000000000000001",
                 account_username: str = "ithelp", account_name: str = "IT Help",
                 bearer_token: str = "x-emulator-bearer", consumer_key: str = "ck", consumer_secret: str = "cs",
                 access_token: str = "at", access_token_secret: str = "ats", verbose: bool = False):
        self.store = Store(account_id, account_username, account_name)
        self.credentials = Credentials(bearer_token, consumer_key, consumer_secret, access_token, access_token_secret)
        self.faults = FaultPlan()
        self.rate_limits = RateLimiter()
        self.call_stats = CallStats()
        self.api = ApiV2(self.store, self.faults)
        self.control = ControlApi(self.store, self.credentials, self.faults, self.rate_limits, self.call_stats,
                                  self.reset_state)
        self.verbose = verbose
        self._http = ThreadingHTTPServer((host, port), _RequestHandler)
        self._http.emulator = self
        self._serve_thread: threading.Thread | None = None
        bound_host, bound_port = self._http.server_address[:2]
        super().__init__(f"http://{bound_host}:{bound_port}")

    @property
    def client(self) -> XEmulatorClient:
        """A plain control API client for this emulator, for code that should not own the server."""
        return XEmulatorClient(self.url)

    def start(self) -> "XEmulator":
        self._serve_thread = threading.Thread(target=self._http.serve_forever, name="x-emulator", daemon=True)
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        if self._serve_thread is not None:
            self._http.shutdown()
            self._serve_thread.join()
            self._serve_thread = None
        self._http.server_close()

    def __enter__(self) -> "XEmulator":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def reset_state(self) -> None:
        """Everything back to the account alone and the constructor's settings."""
        self.store.reset()
        self.credentials.reset()
        self.faults.clear()
        self.rate_limits.reset()
        self.call_stats.reset()

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
        return status, payload, headers


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests pools connections
    server_version = "XEmulator/1.0"

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def log_message(self, format, *args):
        if self.server.emulator.verbose:
            super().log_message(format, *args)

    def log_error(self, format, *args):
        BaseHTTPRequestHandler.log_message(self, format, *args)

    def _dispatch(self, verb: str) -> None:
        try:
            self._route(verb)
        except Exception:
            # An emulator bug: answer like an X outage and keep the traceback visible.
            self.log_error("unhandled error for %s %s\n%s", verb, self.path, traceback.format_exc())
            self._reply(500, problem(500), self.server.emulator.rate_limits.peek("unknown"))

    def _route(self, verb: str) -> None:
        emulator: XEmulator = self.server.emulator
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if url.path.startswith(CONTROL_PREFIX):
            try:
                payload = json.loads(body) if body.strip() else {}
            except ValueError:
                self._reply(400, {"error": "body is not JSON"})
                return
            self._reply(*emulator.control.handle(verb, url.path[len(CONTROL_PREFIX):], query, payload))
        else:
            authorization = self.headers.get("Authorization", "")
            self._reply(*emulator.serve_api(verb, url.path, query, body, authorization))

    def _reply(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
