"""The emulator's HTTP server: the Graph API under /{version}/, files under /cdn/ and
/whatsapp_business/attachments/, the control API under /_emulator/."""

import urllib.parse

from ..common import CONTROL_PREFIX, CallCounter, EmulatorServer, JsonRequestHandler, StormPlan
from .client import MetaEmulatorClient
from .control import ControlApi
from .errors import GraphError, server_error, throttled
from .graph import GraphApi, parse_body
from .graph_reads import GraphReads, Renderer
from .people import CDN_PREFIX, WHATSAPP_MEDIA_PREFIX, People
from .send_api import Receipts, SendApi
from .store import Store
from .usage import UsageMeter
from .webhooks import DEFAULT_RETRY_DELAYS, DEFAULT_TIMEOUT, WebhookPusher

__all__ = ["CONTROL_PREFIX", "MetaEmulator"]


class _RequestHandler(JsonRequestHandler):
    server_version = "MetaEmulator/1.0"

    def internal_error(self) -> tuple[int, dict, dict]:
        return 500, server_error().body(), {}  # like a Graph outage

    def serve(self, verb: str, path: str, query: dict, body: bytes) -> None:
        emulator: MetaEmulator = self.server.emulator
        token = self._token(query)
        if verb == "GET" and path.startswith(CDN_PREFIX):
            emulator.call_stats.count("GET cdn")
            file_id, _, name = path[len(CDN_PREFIX) :].partition("/")
            self._reply_bytes(*emulator.graph.cdn_file(file_id, urllib.parse.unquote(name)))
            return
        if verb == "GET" and path.startswith(WHATSAPP_MEDIA_PREFIX):
            emulator.call_stats.count("GET media_download")
            self._reply_bytes(*emulator.graph.download(query, token))
            return
        try:
            params, files = parse_body(self.headers.get("Content-Type", ""), body)
        except ValueError:
            error = GraphError(400, 100, "(#100) The request body could not be parsed")
            self._reply(400, error.body(), {})
            return
        params = {**query, **params}
        token = token or str(params.pop("access_token", "") or "")
        params.pop("access_token", None)
        self._reply(*emulator.serve_graph(verb, path, params, files, token))

    def _token(self, query: dict) -> str:
        authorization = self.headers.get("Authorization", "")
        for scheme in ("Bearer ", "OAuth "):
            if authorization.startswith(scheme):
                return authorization[len(scheme) :].strip()
        return query.get("access_token", "")


class MetaEmulator(EmulatorServer, MetaEmulatorClient):
    """A local Meta Graph API for Pages (Messenger, comments), Instagram and WhatsApp, pushing signed webhooks.

    It is also a control API client of itself, so `emu.dm(...)`, `emu.sent()` and the other
    MetaEmulatorClient helpers work on it directly.
    """

    handler_class = _RequestHandler
    client_class = MetaEmulatorClient
    thread_name = "meta-emulator"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_retry_delays=DEFAULT_RETRY_DELAYS,
        webhook_timeout: float = DEFAULT_TIMEOUT,
        verbose: bool = False,
    ):
        self.store = Store()
        self.pusher = WebhookPusher(self._webhook_target, webhook_retry_delays, webhook_timeout)
        self.people = People(self.store, self.pusher)
        self.receipts = Receipts(self.pusher)
        self.usage_meter = UsageMeter()
        self.call_stats = CallCounter()
        self.graph = GraphApi(
            self.store,
            GraphReads(self.store, Renderer(self.store)),
            SendApi(self.store, self.people, self.receipts),
            self.people,
            self.usage_meter,
        )
        self.control = ControlApi(
            self.store,
            self.people,
            self.pusher,
            self.receipts,
            self.graph,
            self.usage_meter,
            self.call_stats,
            self.reset_state,
        )
        self.storms = StormPlan()
        self.control.route_storms(self.storms)
        self._bind(host, port, verbose)
        self.people.base_url = self.url

    def _before_start(self) -> None:
        self.pusher.start()

    def _after_stop(self) -> None:
        self.pusher.stop()

    def _webhook_target(self, account_id: str) -> tuple[str, str] | None:
        with self.store.lock:
            account = self.store.accounts.get(account_id)
            if account is None or not account.webhook_url:
                return None
            return account.webhook_url, account.app_secret

    def reset_state(self) -> None:
        """Everything back to an empty world and the constructor's settings."""
        with self.store.lock:
            self.store.reset()
            self.pusher.reset()
            self.receipts.reset()
            self.usage_meter.reset()
            self.graph.reset()
            self.call_stats.reset()
            self.storms.stop()

    def serve_graph(self, verb: str, path: str, params: dict, files: dict, token: str) -> tuple[int, dict, dict]:
        endpoint = self.graph.endpoint(verb, path)
        self.call_stats.count(f"{verb} {endpoint or path}")
        return self.graph.handle(verb, path, params, files, token, self.url)

    def storm_key(self, verb: str, path: str) -> str | None:
        """What a storm calls this request: its endpoint ("send", "conversations", "whatsapp_send", ...)."""
        return self.graph.endpoint(verb, path)

    def storm_answer(self, kind: str, key: str) -> tuple[int, dict, dict]:
        """Graph's answer to a call a storm struck: code 4 throttling (HTTP 429 with Retry-After), or a 5xx."""
        if kind == "429":
            error = throttled(4, retry_after=self.storms.retry_after)
            return 429, error.body(), {**self.usage_meter.peek(None), **error.headers}
        status = self.storms.choice(key, [500, 502, 503])
        return status, server_error(status).body(), self.usage_meter.peek(None)
