"""The emulator's HTTP server: Slack's Web API under /api/, the control API under /_emulator/."""

import json
import threading
import time
import traceback
import urllib.parse
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .client import SlackEmulatorClient
from .control import ControlApi
from .events import DEFAULT_RETRY_DELAYS, DEFAULT_TIMEOUT, EventDispatcher
from .traffic import CallStats, FaultPlan
from .web_api import WebApi
from .workspace import SlackError, Workspace

WEB_API_PREFIX = "/api/"
CONTROL_PREFIX = "/_emulator/"


class SlackEmulator(SlackEmulatorClient):
    """A local Slack workspace speaking the Web API and pushing Events API callbacks.

    It is also a control API client of itself, so `emu.post(...)`, `emu.stats()`
    and the other SlackEmulatorClient helpers work on it directly.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, bot_token: str = "xoxb-emulator",
                 signing_secret: str = "emulator-secret", team_id: str = "T0EMU", events_url: str | None = None,
                 event_workers: int = 1, event_retry_delays: Iterable[float] = DEFAULT_RETRY_DELAYS,
                 event_timeout: float = DEFAULT_TIMEOUT, verbose: bool = False):
        self.events = EventDispatcher(team_id, events_url, signing_secret, workers=event_workers,
                                      retry_delays=event_retry_delays, timeout=event_timeout)
        self.workspace = Workspace(team_id, bot_token, event_sink=self.events.publish)
        self.web_api = WebApi(self.workspace)
        self.faults = FaultPlan()
        self.call_stats = CallStats()
        self.control = ControlApi(self.workspace, self.events, self.faults, self.call_stats, self.reset_state)
        self.verbose = verbose
        self._http = ThreadingHTTPServer((host, port), _RequestHandler)
        self._http.emulator = self
        self._serve_thread: threading.Thread | None = None
        bound_host, bound_port = self._http.server_address[:2]
        super().__init__(f"http://{bound_host}:{bound_port}")

    @property
    def client(self) -> SlackEmulatorClient:
        """A plain control API client for this emulator, for code that should not own the server."""
        return SlackEmulatorClient(self.url)

    def start(self) -> "SlackEmulator":
        self.events.start()
        self._serve_thread = threading.Thread(target=self._http.serve_forever, name="slack-emulator", daemon=True)
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        if self._serve_thread is not None:
            self._http.shutdown()
            self._serve_thread.join()
            self._serve_thread = None
            self.events.stop()
        self._http.server_close()

    def __enter__(self) -> "SlackEmulator":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def reset_state(self) -> None:
        """Everything back to the seeds and the constructor's settings."""
        self.workspace.reset()
        self.events.reset()
        self.faults.clear()
        self.call_stats.reset()

    def serve_web_api(self, method: str, params: dict, token: str | None) -> tuple[int, dict, dict]:
        """One Web API call; returns (HTTP status, JSON body, extra headers)."""
        self.call_stats.count(method)
        if not self.web_api.knows(method):
            return 200, {"ok": False, "error": "unknown_method"}, {}
        with self.call_stats.in_flight(method, str(params.get("channel") or "")):
            latency = self.faults.latency(method)
            if latency:
                time.sleep(latency)
            fault = self.faults.take(method)
            if fault:
                return fault.status, {"ok": False, "error": fault.error}, fault.headers
            try:
                self.workspace.check_token(token)
                return 200, self.web_api.call(method, params), {}
            except SlackError as exc:
                return 200, {"ok": False, "error": exc.code}, {}


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for clients that pool connections
    server_version = "SlackEmulator/1.0"

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def log_message(self, format, *args):
        if self.server.emulator.verbose:
            super().log_message(format, *args)

    def _dispatch(self, verb: str) -> None:
        try:
            self._route(verb)
        except Exception:
            # An emulator bug: answer like a Slack outage and keep the traceback visible.
            self.log_error("unhandled error for %s %s\n%s", verb, self.path, traceback.format_exc())
            self._reply(500, {"ok": False, "error": "internal_error"})

    def log_error(self, format, *args):
        BaseHTTPRequestHandler.log_message(self, format, *args)

    def _route(self, verb: str) -> None:
        emulator: SlackEmulator = self.server.emulator
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if url.path.startswith(WEB_API_PREFIX):
            method = url.path[len(WEB_API_PREFIX):].strip("/")
            try:
                params = {**query, **self._body_params(body)}
            except ValueError:
                self._reply(200, {"ok": False, "error": "invalid_json"})
                return
            status, payload, headers = emulator.serve_web_api(method, params, self._token(params))
            self._reply(status, payload, headers)
        elif url.path.startswith(CONTROL_PREFIX):
            try:
                payload = json.loads(body) if body.strip() else {}
            except ValueError:
                self._reply(400, {"error": "body is not JSON"})
                return
            self._reply(*emulator.control.handle(verb, url.path[len(CONTROL_PREFIX):], query, payload))
        else:
            self._reply(404, {"error": f"nothing at {url.path}; the Web API is under {WEB_API_PREFIX}"})

    def _body_params(self, body: bytes) -> dict:
        """Web API parameters from a JSON or form-encoded body (slack_sdk sends both)."""
        if not body:
            return {}
        if self.headers.get("Content-Type", "").startswith("application/json"):
            params = json.loads(body)
            if not isinstance(params, dict):
                raise ValueError("JSON body must be an object")
            return params
        return dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))

    def _token(self, params: dict) -> str | None:
        authorization = self.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            return authorization[len("Bearer "):].strip()
        return params.get("token")

    def _reply(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
