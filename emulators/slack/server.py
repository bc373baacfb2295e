"""The emulator's HTTP server: Slack's Web API under /api/, the control API under /_emulator/."""

import json
import time
import urllib.parse
from collections.abc import Iterable

from ..common import CONTROL_PREFIX, EmulatorServer, JsonRequestHandler, StormPlan
from .client import SlackEmulatorClient
from .control import ControlApi
from .events import DEFAULT_RETRY_DELAYS, DEFAULT_TIMEOUT, EventDispatcher
from .files import FILES_PREFIX, UPLOAD_PREFIX, parse_file_path, upload_body
from .traffic import CallStats, FaultPlan
from .web_api import WebApi
from .workspace import SlackError, Workspace

WEB_API_PREFIX = "/api/"

__all__ = ["CONTROL_PREFIX", "WEB_API_PREFIX", "SlackEmulator"]


class _RequestHandler(JsonRequestHandler):
    server_version = "SlackEmulator/1.0"

    def internal_error(self) -> tuple[int, dict, dict]:
        return 500, {"ok": False, "error": "internal_error"}, {}  # like a Slack outage

    def serve(self, verb: str, path: str, query: dict, body: bytes) -> None:
        emulator: SlackEmulator = self.server.emulator
        if verb == "POST" and path.startswith(UPLOAD_PREFIX):
            data = upload_body(self.headers.get("Content-Type", ""), body)
            self._reply_bytes(*emulator.serve_upload(path[len(UPLOAD_PREFIX) :], data))
            return
        if verb == "GET" and path.startswith(FILES_PREFIX):
            self._reply_bytes(*emulator.serve_file(path, self._token({})))
            return
        if not path.startswith(WEB_API_PREFIX):
            self._reply(404, {"error": f"nothing at {path}; the Web API is under {WEB_API_PREFIX}"})
            return
        try:
            params = {**query, **self._body_params(body)}
        except ValueError:
            self._reply(200, {"ok": False, "error": "invalid_json"})
            return
        self._reply(*emulator.serve_web_api(path[len(WEB_API_PREFIX) :].strip("/"), params, self._token(params)))

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
            return authorization[len("Bearer ") :].strip()
        return params.get("token")


class SlackEmulator(EmulatorServer, SlackEmulatorClient):
    """A local Slack workspace speaking the Web API and pushing Events API callbacks.

    It is also a control API client of itself, so `emu.post(...)`, `emu.stats()`
    and the other SlackEmulatorClient helpers work on it directly.
    """

    handler_class = _RequestHandler
    client_class = SlackEmulatorClient
    thread_name = "slack-emulator"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_token: str = "xoxb-emulator",
        signing_secret: str = "emulator-secret",
        team_id: str = "T0EMU",
        events_url: str | None = None,
        event_workers: int = 1,
        event_retry_delays: Iterable[float] = DEFAULT_RETRY_DELAYS,
        event_timeout: float = DEFAULT_TIMEOUT,
        verbose: bool = False,
    ):
        self.events = EventDispatcher(
            team_id,
            events_url,
            signing_secret,
            workers=event_workers,
            retry_delays=event_retry_delays,
            timeout=event_timeout,
        )
        self.workspace = Workspace(team_id, bot_token, event_sink=self.events.publish)
        self.web_api = WebApi(self.workspace)
        self.faults = FaultPlan()
        self.call_stats = CallStats()
        self.control = ControlApi(self.workspace, self.events, self.faults, self.call_stats, self.reset_state)
        self.storms = StormPlan()
        self.control.route_storms(self.storms)
        self._bind(host, port, verbose)
        self.workspace.base_url = self.url

    def _before_start(self) -> None:
        self.events.start()

    def _after_stop(self) -> None:
        self.events.stop()

    def reset_state(self) -> None:
        """Everything back to the seeds and the constructor's settings."""
        self.workspace.reset()
        self.events.reset()
        self.faults.clear()
        self.call_stats.reset()
        self.storms.stop()

    def storm_key(self, verb: str, path: str) -> str | None:
        """What a storm calls this request (its fault key): a Web API method, "upload" or "files-pri"."""
        if path.startswith(WEB_API_PREFIX):
            return path[len(WEB_API_PREFIX) :].strip("/")
        if path.startswith(UPLOAD_PREFIX):
            return "upload"
        return "files-pri" if path.startswith(FILES_PREFIX) else None

    def storm_answer(self, kind: str, key: str) -> tuple[int, dict, dict]:
        """Slack's answer to a call a storm struck: an outage (5xx) or a rate limit with Retry-After."""
        if kind == "429":
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(self.storms.retry_after)}
        status = self.storms.choice(key, [500, 502, 503, 504])
        return status, {"ok": False, "error": "service_unavailable" if status == 503 else "internal_error"}, {}

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
                answer = 200, self.web_api.call(method, params), {}
            except SlackError as exc:
                answer = 200, {"ok": False, "error": exc.code}, {}
        # Latency above comes before the call; this comes after it: the write is applied, the answer is late or lost.
        after_write = self.faults.take_after_write(method)
        if after_write:
            after_write.apply()
        return answer

    def serve_upload(self, upload_id: str, data: bytes) -> tuple:
        """The POST to an upload_url: (HTTP status, body, content type[, headers]). Its fault key is "upload"."""
        self.call_stats.count("upload")
        fault = self.faults.take("upload")
        if fault:
            return fault.status, fault.error.encode(), "text/plain", fault.headers
        if not self.workspace.receive_upload(upload_id, data):
            return 404, b"upload not found", "text/plain"
        return 200, f"OK - {len(data)}".encode(), "text/plain"

    def serve_file(self, path: str, token: str | None) -> tuple:
        """A url_private download: 401 without a token, 403 with a bad one, 404 for no such file.

        Its fault key is "files-pri". (Real Slack may answer a bad token with its sign-in page instead.)
        """
        self.call_stats.count("files-pri")
        fault = self.faults.take("files-pri")
        if fault:
            return fault.status, fault.error.encode(), "text/plain", fault.headers
        parsed = parse_file_path(path)
        if not token:
            return 401, b"not_authed", "text/plain"
        try:
            file = self.workspace.download(*parsed, token) if parsed else None
        except SlackError as exc:
            return 403, exc.code.encode(), "text/plain"
        if file is None:
            return 404, b"file_not_found", "text/plain"
        return 200, file.data, file.mimetype
