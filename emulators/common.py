"""Plumbing shared by the stdlib-only emulators (emulators.slack, emulators.x).

Each emulator is a ThreadingHTTPServer answering its platform's API next to a JSON
control API under /_emulator/, plus a Python client of that control API. This module
holds the parts that do not depend on the platform; the protocols stay in the packages.
"""

import io
import json
import random
import signal
import socket
import struct
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

CONTROL_PREFIX = "/_emulator/"
#: What a storm strikes a platform call with: a 5xx, a 429 with Retry-After, an answer only after the client's
#: timeout (the call is still applied), or a dropped connection (not applied).
STORM_KINDS = ("5xx", "429", "slow", "reset")

# Loopback calls must never go through an HTTP proxy from the environment.
direct_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# Control API: client side


class EmulatorControlError(Exception):
    def __init__(self, status: int, error: str):
        super().__init__(f"HTTP {status}: {error}")
        self.status = status
        self.error = error


class ControlClient:
    """Calls `verb /_emulator/<route>` on an emulator, in this process or elsewhere."""

    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(
        self,
        verb: str,
        route: str,
        payload: dict | None = None,
        query: dict | None = None,
        timeout: float | None = None,
    ) -> dict:
        url = f"{self.url}{CONTROL_PREFIX}{route}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(payload or {}).encode() if verb != "GET" else None
        request = urllib.request.Request(url, data=data, method=verb, headers={"Content-Type": "application/json"})
        try:
            with direct_opener.open(request, timeout=timeout or self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                error = json.loads(body).get("error", "")
            except ValueError:
                error = body.decode(errors="replace")
            raise EmulatorControlError(exc.code, error) from None

    def start_storm(
        self,
        rate: float,
        kinds: Iterable[str] = STORM_KINDS,
        seed: int = 0,
        keys: Iterable[str] | None = None,
        retry_after: int = 1,
        slow_seconds: float = 16.0,
    ) -> dict:
        """Strike each platform call with probability ``rate`` by one of ``kinds`` (see ``StormPlan``), drawn
        from a generator seeded with ``seed``; ``keys`` limits it to those methods or endpoints."""
        payload = {
            "rate": rate,
            "kinds": list(kinds),
            "seed": seed,
            "keys": list(keys) if keys is not None else None,
            "retry_after": retry_after,
            "slow_seconds": slow_seconds,
        }
        return self._call("POST", "storm", payload)

    def stop_storm(self) -> dict:
        """End the storm; returns its last statistics."""
        return self._call("DELETE", "storm")

    def storm_stats(self) -> dict:
        """{"active", "rate", "kinds", "keys", "calls" (drawn while on), "hits": {kind: n}}."""
        return self._call("GET", "storm")


# Control API: server side


class ConnectionAborted(Exception):
    """Raised while serving a request to answer it with a TCP reset instead of a response."""


class ControlError(Exception):
    def __init__(self, error: str, status: int = 400):
        super().__init__(error)
        self.error = error
        self.status = status


def required_field(payload: dict, name: str, kind=str):
    """``payload[name]``, of ``kind``, or a ControlError naming it; ids may come as JSON numbers."""
    value = payload.get(name)
    if kind is str and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, kind) or (kind is str and not value):
        raise ControlError(f"{name} is required")
    return value


class ControlRoutes:
    """Dispatches control API calls to `self._routes[(verb, route)]`, each taking the
    query and body merged into one dict and returning the JSON answer."""

    def __init__(self, reset: Callable[[], None]):
        self._reset = reset
        self._routes: dict[tuple[str, str], Callable[[dict], dict]] = {}

    def handle(self, verb: str, route: str, query: dict, payload) -> tuple[int, dict]:
        """Dispatch `verb /_emulator/<route>`; returns (HTTP status, JSON body)."""
        handler = self._routes.get((verb, route.strip("/")))
        if handler is None:
            return 404, {"error": f"no control endpoint {verb} {CONTROL_PREFIX}{route}"}
        if not isinstance(payload, dict):
            return 400, {"error": "body must be a JSON object"}
        try:
            return 200, handler({**query, **payload})
        except ControlError as exc:
            return exc.status, {"error": exc.error}
        except self.platform_errors as exc:
            return self.platform_error(exc)
        except (TypeError, ValueError) as exc:  # a field of the wrong type or value
            return 400, {"error": str(exc)}

    platform_errors: tuple[type[Exception], ...] = ()  # the platform's own errors, answered by platform_error

    def platform_error(self, exc: Exception) -> tuple[int, dict]:
        return 400, {"error": str(exc)}

    def reset(self, payload: dict) -> dict:
        self._reset()
        return {}

    def route_storms(self, storms: "StormPlan") -> None:
        """Serve the storm routes (``POST``, ``GET`` and ``DELETE /_emulator/storm``) from ``storms``."""

        def start(payload: dict) -> dict:
            keys = payload.get("keys")
            if keys is not None and not (isinstance(keys, list) and all(isinstance(key, str) for key in keys)):
                raise ControlError("keys must be a list of method or endpoint names")
            storms.start(
                rate=float(payload.get("rate", 0.2)),
                kinds=payload.get("kinds") or STORM_KINDS,
                seed=int(payload.get("seed", 0)),
                keys=keys,
                retry_after=int(payload.get("retry_after", 1)),
                slow_seconds=float(payload.get("slow_seconds", 16.0)),
            )
            return storms.snapshot()

        def stop(payload: dict) -> dict:
            return storms.stop()

        self._routes[("POST", "storm")] = start
        self._routes[("GET", "storm")] = lambda payload: storms.snapshot()
        self._routes[("DELETE", "storm")] = stop


# The HTTP server


class JsonRequestHandler(BaseHTTPRequestHandler):
    """Reads the request, answers /_emulator/ from `server.emulator.control` and hands
    everything else to `serve(verb, path, query, body)`; every answer is JSON."""

    protocol_version = "HTTP/1.1"  # keep-alive for clients that pool connections

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def log_message(self, format, *args):
        if self.server.emulator.verbose:
            super().log_message(format, *args)

    def log_error(self, format, *args):
        BaseHTTPRequestHandler.log_message(self, format, *args)

    def serve(self, verb: str, path: str, query: dict, body: bytes) -> None:
        raise NotImplementedError

    def internal_error(self) -> tuple[int, dict, dict]:
        """The answer to an unhandled exception: (HTTP status, JSON body, headers)."""
        raise NotImplementedError

    def _dispatch(self, verb: str) -> None:
        try:
            self._route(verb)
        except ConnectionAborted:
            self._reset_connection()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (a late or slow answer)
            self.close_connection = True
        except Exception:  # noqa: BLE001 - any emulator bug is answered like a platform outage
            # Keep the traceback visible.
            self.log_error("unhandled error for %s %s\n%s", verb, self.path, traceback.format_exc())
            self._reply(*self.internal_error())

    def _route(self, verb: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not url.path.startswith(CONTROL_PREFIX):
            if not self._weather_storm(verb, url.path):
                self.serve(verb, url.path, query, body)
            return
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            self._reply(400, {"error": "body is not JSON"})
            return
        self._reply(*self.server.emulator.control.handle(verb, url.path[len(CONTROL_PREFIX) :], query, payload))

    def _reset_connection(self) -> None:
        """Close with a reset (ECONNRESET) rather than an answer."""
        self.close_connection = True
        self.rfile.close()
        self.wfile.close()
        reset_socket(self.connection)
        self.wfile = io.BytesIO()  # what http.server still flushes after the call goes nowhere

    def _weather_storm(self, verb: str, path: str) -> bool:
        """Let the emulator's storm strike this call, if it does; True when the call got no real answer.

        A slow call is served only after the delay, so the platform applies it after a client with a shorter
        timeout gave up; a reset drops the connection (TCP RST) without applying it.
        """
        emulator = self.server.emulator
        key = emulator.storm_key(verb, path)
        kind = emulator.storms.draw(key) if key else None
        if kind is None:
            return False
        if kind == "slow":
            time.sleep(emulator.storms.slow_seconds)
            return False
        if kind == "reset":
            self._reset_connection()
            return True
        self._reply(*emulator.storm_answer(kind, key))
        return True

    def _reply(self, status: int, payload: dict, headers: dict | None = None) -> None:
        self._reply_bytes(status, json.dumps(payload).encode(), "application/json; charset=utf-8", headers)

    def _reply_bytes(self, status: int, data: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def reset_socket(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: with no file left open on the socket, the peer gets an RST, not a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class EmulatorServer:
    """The lifecycle of an emulator's HTTP server; mixed in before the platform's control client.

    A subclass sets `handler_class`, `client_class` and `thread_name`, builds its state,
    then calls `self._bind(host, port, verbose)`, which also sets `self.url`.
    """

    handler_class: type[JsonRequestHandler]
    client_class: type[ControlClient]
    thread_name = "emulator"

    def _bind(self, host: str, port: int, verbose: bool) -> None:
        self.verbose = verbose
        self._http = ThreadingHTTPServer((host, port), self.handler_class)
        self._http.emulator = self
        self._serve_thread: threading.Thread | None = None
        bound_host, bound_port = self._http.server_address[:2]
        super().__init__(f"http://{bound_host}:{bound_port}")  # the platform's control client

    @property
    def client(self) -> ControlClient:
        """A plain control API client for this emulator, for code that should not own the server."""
        return self.client_class(self.url)

    def _before_start(self) -> None:
        """Start helpers (threads) that must run while the server does."""

    def _after_stop(self) -> None:
        """Stop what _before_start started."""

    def start(self) -> Self:
        self._before_start()
        self._serve_thread = threading.Thread(target=self._http.serve_forever, name=self.thread_name, daemon=True)
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        if self._serve_thread is not None:
            self._http.shutdown()
            self._serve_thread.join()
            self._serve_thread = None
            self._after_stop()
        self._http.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def run_until_stopped(emulator: EmulatorServer, banner: str) -> None:
    """For `python -m emulators.<platform>`: serve until SIGTERM or Ctrl-C."""
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    emulator.start()
    print(banner, flush=True)
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


# Traffic control


@dataclass
class AfterWrite:
    """What the next `remaining` calls of a method get once their write is applied: the answer `delay` seconds
    late (past a client's timeout), or no answer at all but a connection reset (`reset`)."""

    remaining: int
    delay: float = 0.0
    reset: bool = False

    @classmethod
    def build(cls, payload: dict) -> "AfterWrite":
        count, delay, reset = int(payload.get("count", 1)), float(payload.get("delay", 0)), bool(payload.get("reset"))
        if count < 1 or delay < 0 or not (delay or reset):
            raise ValueError("after_write needs count >= 1 and a delay > 0 or reset: true")
        return cls(count, delay, reset)

    def apply(self) -> None:
        """Called after the write: wait, then answer (or reset)."""
        if self.delay:
            time.sleep(self.delay)
        if self.reset:
            raise ConnectionAborted


class FaultQueues:
    """Faults armed per key (a method or an endpoint), used up in the order armed.

    A fault is anything with a `remaining` count of calls it still answers.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._faults: dict[str, list] = {}

    def _enqueue(self, key: str, fault) -> None:
        with self._lock:
            self._faults.setdefault(key, []).append(fault)

    def take(self, key: str):
        """Use up one call of the oldest fault armed for the key, if any."""
        with self._lock:
            faults = self._faults.get(key)
            if not faults:
                return None
            fault = faults[0]
            fault.remaining -= 1
            if fault.remaining == 0:
                faults.pop(0)
            return fault

    def arm_after_write(self, key: str, fault: AfterWrite) -> None:
        self._enqueue(f"after_write:{key}", fault)

    def take_after_write(self, key: str) -> AfterWrite | None:
        return self.take(f"after_write:{key}")

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


class CallCounter:
    """Calls per name; snapshot() is {"calls": {name: n}}."""

    def __init__(self):
        self._lock = threading.Lock()
        self._calls: Counter = Counter()

    def count(self, name: str) -> None:
        with self._lock:
            self._calls[name] += 1

    def snapshot(self) -> dict:
        with self._lock:
            return {"calls": dict(self._calls)}

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()


@dataclass(frozen=True)
class Storm:
    rate: float
    kinds: tuple[str, ...]
    keys: frozenset[str] | None  # None: every platform call
    retry_after: int
    slow_seconds: float


class StormPlan:
    """Probabilistic faults across many calls, unlike the per-method faults armed one by one.

    While a storm is on, each platform call (whose key, a method or an endpoint, is in scope) is struck with
    probability ``rate`` by one of ``kinds``. Each key draws from its own generator, seeded from the storm's seed
    and the key, so the same seed strikes the same calls of each method in their order, however the calls of
    different methods interleave.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._storm: Storm | None = None
        self._seed = 0
        self._randoms: dict[str, random.Random] = {}
        self._calls = 0
        self._hits: Counter = Counter()

    def start(
        self,
        rate: float,
        kinds: Iterable[str] = STORM_KINDS,
        seed: int = 0,
        keys: Iterable[str] | None = None,
        retry_after: int = 1,
        slow_seconds: float = 16.0,
    ) -> None:
        kinds = tuple(kinds)
        if not 0 <= rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        if not kinds or any(kind not in STORM_KINDS for kind in kinds):
            raise ValueError(f"kinds must be some of {list(STORM_KINDS)}")
        if retry_after < 0 or slow_seconds < 0:
            raise ValueError("retry_after and slow_seconds must not be negative")
        with self._lock:
            self._storm = Storm(rate, kinds, frozenset(keys) if keys is not None else None, retry_after, slow_seconds)
            self._seed = seed
            self._randoms.clear()
            self._calls = 0
            self._hits.clear()

    def stop(self) -> dict:
        with self._lock:
            self._storm = None
        return self.snapshot()

    def draw(self, key: str) -> str | None:
        """The kind of fault that strikes this call, or None."""
        with self._lock:
            storm = self._storm
            if storm is None or (storm.keys is not None and key not in storm.keys):
                return None
            self._calls += 1
            draws = self._draws(key)
            if draws.random() >= storm.rate:
                return None
            kind = draws.choice(storm.kinds)
            self._hits[kind] += 1
            return kind

    def choice(self, key: str, options: list):
        """A seeded pick for a call of ``key`` (e.g. which 5xx status), so that a storm's answers repeat too."""
        with self._lock:
            return self._draws(key).choice(options)

    def _draws(self, key: str) -> random.Random:
        if key not in self._randoms:
            self._randoms[key] = random.Random(f"{self._seed}:{key}")
        return self._randoms[key]

    @property
    def retry_after(self) -> int:
        with self._lock:
            return self._storm.retry_after if self._storm else 1

    @property
    def slow_seconds(self) -> float:
        with self._lock:
            return self._storm.slow_seconds if self._storm else 0.0

    def snapshot(self) -> dict:
        with self._lock:
            storm = self._storm
            return {
                "active": storm is not None,
                "rate": storm.rate if storm else 0.0,
                "kinds": list(storm.kinds) if storm else [],
                "keys": sorted(storm.keys) if storm and storm.keys is not None else None,
                "calls": self._calls,
                "hits": dict(self._hits),
            }
