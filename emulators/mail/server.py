"""The emulator: IMAP and SMTP servers over one store, and the control API over HTTP."""

import threading

from ..common import EmulatorServer, JsonRequestHandler, StormPlan
from .client import MailEmulatorClient
from .control import ControlApi
from .faults import Faults
from .imap import ImapServer
from .smtp import SmtpServer
from .store import DEFAULT_PASSWORD, DEFAULT_TOKEN, DEFAULT_USER, Store


class _RequestHandler(JsonRequestHandler):
    server_version = "MailEmulator/1.0"

    def internal_error(self) -> tuple[int, dict, dict]:
        return 500, {"error": "internal error"}, {}

    def serve(self, verb: str, path: str, query: dict, body: bytes) -> None:
        self._reply(404, {"error": "only the control API (/_emulator/) is served over HTTP"})


class MailEmulator(EmulatorServer, MailEmulatorClient):
    """A local mail server: IMAP4rev1 for the desk to read a mailbox, SMTP for it to send, and a control API.

    It is also a control API client of itself, so ``emu.deliver(...)`` and ``emu.sent()`` work on it directly.
    """

    handler_class = _RequestHandler
    client_class = MailEmulatorClient
    thread_name = "mail-emulator"

    def __init__(
        self,
        host: str = "127.0.0.1",
        http_port: int = 0,
        imap_port: int = 0,
        smtp_port: int = 0,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        token: str = DEFAULT_TOKEN,
        address: str | None = None,
        verbose: bool = False,
    ):
        self.store = Store()
        self.faults = Faults()
        self.storms = StormPlan()
        self._start_account = (user, password, token, address)
        self.imap = ImapServer((host, imap_port), self.store, self.faults, self.storms)
        self.smtp = SmtpServer((host, smtp_port), self.store, self.faults, self.storms)
        self.imap_host, self.imap_port = self.imap.server_address[:2]
        self.smtp_host, self.smtp_port = self.smtp.server_address[:2]
        info = {
            "imap": {"host": self.imap_host, "port": self.imap_port},
            "smtp": {"host": self.smtp_host, "port": self.smtp_port},
        }
        self.control = ControlApi(self.store, self.faults, info, self.imap.disconnect_all, self.reset_state)
        self.control.route_storms(self.storms)
        self._protocol_threads: list[threading.Thread] = []
        self.reset_state()
        self._bind(host, http_port, verbose)

    def reset_state(self) -> None:
        self.imap.disconnect_all("Server reset")
        self.faults.clear()
        self.storms.stop()
        with self.store.lock:
            self.store.reset()
            self.store.add_account(*self._start_account)

    def storm_key(self, verb: str, path: str) -> str | None:
        """Storms strike IMAP and SMTP (``storms.py``); the HTTP side serves only the control API."""
        return None

    def _before_start(self) -> None:
        for name, server in (("imap", self.imap), ("smtp", self.smtp)):
            thread = threading.Thread(target=server.serve_forever, name=f"mail-emulator-{name}", daemon=True)
            thread.start()
            self._protocol_threads.append(thread)

    def _after_stop(self) -> None:
        for server in (self.imap, self.smtp):
            server.shutdown()
        for thread in self._protocol_threads:
            thread.join()
        self._protocol_threads.clear()
        self.imap.disconnect_all()

    def stop(self) -> None:
        super().stop()
        self.imap.server_close()
        self.smtp.server_close()
