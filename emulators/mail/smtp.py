"""The SMTP server (RFC 5321 with 8BITMIME, SMTPUTF8, SIZE and AUTH PLAIN/LOGIN, no TLS): what the desk sends.

Every accepted message is kept as received (``Store.received``). A recipient that is one of the emulator's own
accounts also gets it in its INBOX, as a real server delivers locally (a desk writing to itself sees its mail come
back). AUTH is optional unless ``require_smtp_auth`` is set; wrong credentials are refused either way.
"""

import base64
import binascii
import re
import socket
import socketserver
import time

from ..common import StormPlan, reset_socket
from .faults import Faults, ProtocolFault
from .store import Store
from .storms import smtp_strike

MAX_SIZE = 50 * 1024 * 1024
MAX_LINE = 8192
ADDRESS = re.compile(r"^(?:FROM|TO):\s*<([^>]*)>(.*)$", re.IGNORECASE)


class _Closed(Exception):
    """The connection is gone (or a fault dropped it)."""


class SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        store: Store,
        faults: Faults,
        storms: StormPlan,
        hostname: str = "mail.emulator",
    ):
        self.store = store
        self.faults = faults
        self.storms = storms
        self.hostname = hostname
        super().__init__(address, _Handler)


class _Handler(socketserver.StreamRequestHandler):
    server: SmtpServer

    def handle(self) -> None:
        self.auth_user: str | None = None
        self.pending_after: ProtocolFault | None = None
        self.answer_late = False  # a slow storm at DATA: the message is kept, the answer comes late
        self._reset_transaction()
        try:
            if not self._stage("CONNECT"):
                return
            self._reply(220, f"{self.server.hostname} ESMTP mail emulator ready")
            while True:
                line = self._read_line()
                verb, _, argument = line.partition(" ")
                if not self._command(verb.upper(), argument.strip()):
                    return
        except (_Closed, OSError):
            pass

    def _reset_transaction(self) -> None:
        self.mail_from: str | None = None
        self.rcpt_to: list[str] = []

    def _read_line(self) -> str:
        line = self.rfile.readline(MAX_LINE)
        if not line:
            raise _Closed
        return line.rstrip(b"\r\n").decode("utf-8", "replace")

    def _reply(self, code: int, *lines: str) -> None:
        lines = lines or ("OK",)
        text = "".join(f"{code}{'-' if i < len(lines) - 1 else ' '}{line}\r\n" for i, line in enumerate(lines))
        self.wfile.write(text.encode())

    def _stage(self, stage: str) -> bool:
        """Let a storm strike this stage, then play an armed fault for it; False when either answered (or
        dropped the connection) in the command's stead."""
        if not self._weather_storm(stage):
            return False
        fault = self.server.faults.take_smtp(stage)
        if fault is None or fault.kind == "drop_after":
            self.pending_after = fault
            return True
        self._play(fault)
        return False

    def _weather_storm(self, stage: str) -> bool:
        """False when a storm answered in the command's stead; a 421 or a reset ends the connection."""
        strike = smtp_strike(self.server.storms, stage)
        if strike is None:
            return True
        if strike.kind == "slow" and stage == "DATA":
            self.answer_late = True
            return True
        if strike.kind == "slow":
            time.sleep(self.server.storms.slow_seconds)
            return True
        if strike.kind == "reset":
            self.rfile.close()  # the socket closes (with its RST) only once no file is open on it
            reset_socket(self.connection)
            raise _Closed
        self._reply(int(strike.answer), strike.text)
        if strike.closes:
            raise _Closed
        return False

    def _play(self, fault: ProtocolFault) -> None:
        if fault.kind == "reply":
            self._reply(fault.code, fault.message or "Temporary failure, try again later")
            return
        self.connection.shutdown(socket.SHUT_RDWR)
        raise _Closed

    def _command(self, verb: str, argument: str) -> bool:
        """Answer one command; False once the session is over."""
        if verb == "QUIT":
            self._reply(221, "Bye")
            return False
        handler = {
            "EHLO": self._ehlo,
            "HELO": self._helo,
            "AUTH": self._auth,
            "MAIL": self._mail,
            "RCPT": self._rcpt,
            "DATA": self._data,
            "RSET": self._rset,
            "NOOP": lambda argument: self._reply(250),
            "VRFY": lambda argument: self._reply(252, "Cannot VRFY user"),
        }.get(verb)
        if handler is None:
            self._reply(502, "5.5.2 Command not recognized")
            return True
        handler(argument)
        return True

    def _ehlo(self, argument: str) -> None:
        if self._stage("EHLO"):
            self._reset_transaction()
            extensions = ["8BITMIME", "SMTPUTF8", f"SIZE {MAX_SIZE}", "AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES"]
            self._reply(250, self.server.hostname, *extensions)

    def _helo(self, argument: str) -> None:
        if self._stage("EHLO"):
            self._reset_transaction()
            self._reply(250, self.server.hostname)

    def _auth(self, argument: str) -> None:
        if self.auth_user is not None:
            self._reply(503, "5.5.1 Already authenticated")
            return
        mechanism, _, initial = argument.partition(" ")
        mechanism = mechanism.upper()
        if mechanism not in ("PLAIN", "LOGIN"):
            self._reply(504, "5.5.4 Unrecognized authentication type")
            return
        try:
            if mechanism == "PLAIN":
                response = initial or self._challenge("")
                _, user, password = _b64(response).split("\0")
            else:
                user = _b64(initial) if initial else _b64(self._challenge("VXNlcm5hbWU6"))
                password = _b64(self._challenge("UGFzc3dvcmQ6"))
        except (ValueError, binascii.Error):
            self._reply(501, "5.5.2 Cannot decode the response")
            return
        if not self._stage("AUTH"):
            return
        with self.server.store.lock:
            account = self.server.store.accounts.get(user)
            accepted = account is not None and password in (account.password, account.token)
        if not accepted:
            self._reply(535, "5.7.8 Authentication credentials invalid")
            return
        self.auth_user = user
        self._reply(235, "2.7.0 Authentication successful")

    def _challenge(self, text: str) -> str:
        self._reply(334, text)
        response = self._read_line()
        if response == "*":
            raise ValueError("cancelled")
        return response

    def _mail(self, argument: str) -> None:
        match = ADDRESS.match(argument)
        if match is None or not argument.upper().startswith("FROM:"):
            self._reply(501, "5.5.4 Syntax: MAIL FROM:<address>")
            return
        if self.mail_from is not None:
            self._reply(503, "5.5.1 Nested MAIL command")
            return
        with self.server.store.lock:
            required = self.server.store.require_smtp_auth
        if required and self.auth_user is None:
            self._reply(530, "5.7.0 Authentication required")
            return
        size = re.search(r"\bSIZE=(\d+)", match[2], re.IGNORECASE)
        if size and int(size[1]) > MAX_SIZE:
            self._reply(552, "5.3.4 Message size exceeds fixed maximum message size")
            return
        if self._stage("MAIL"):
            self.mail_from = match[1]
            self._reply(250, "2.1.0 Ok")

    def _rcpt(self, argument: str) -> None:
        match = ADDRESS.match(argument)
        if match is None or not argument.upper().startswith("TO:") or not match[1]:
            self._reply(501, "5.5.4 Syntax: RCPT TO:<address>")
            return
        if self.mail_from is None:
            self._reply(503, "5.5.1 Need MAIL command")
            return
        if self._stage("RCPT"):
            self.rcpt_to.append(match[1])
            self._reply(250, "2.1.5 Ok")

    def _rset(self, argument: str) -> None:
        self._reset_transaction()
        self._reply(250, "2.0.0 Ok")

    def _data(self, argument: str) -> None:
        if self.mail_from is None or not self.rcpt_to:
            self._reply(503, "5.5.1 Need MAIL and RCPT commands")
            return
        self._reply(354, "End data with <CR><LF>.<CR><LF>")
        lines = []
        size = 0
        while True:
            line = self.rfile.readline(MAX_SIZE)
            if not line:
                raise _Closed
            if line.rstrip(b"\r\n") == b".":
                break
            size += len(line)
            lines.append(line[1:] if line.startswith(b".") else line)
        raw = re.sub(rb"\r?\n", b"\r\n", b"".join(lines))
        mail_from, rcpt_to = self.mail_from, self.rcpt_to
        self._reset_transaction()
        if size > MAX_SIZE:
            self._reply(552, "5.3.4 Message too big")
            return
        if not self._stage("DATA"):
            return
        received = self._keep(mail_from, rcpt_to, raw)
        if self.answer_late:
            self.answer_late = False
            time.sleep(self.server.storms.slow_seconds)
        if self.pending_after is not None:  # drop_after: kept, and the sender never hears so
            self.connection.shutdown(socket.SHUT_RDWR)
            raise _Closed
        self._reply(250, f"2.0.0 Ok: queued as {received}")

    def _keep(self, mail_from: str, rcpt_to: list[str], raw: bytes) -> int:
        store = self.server.store
        with store.lock:
            received = store.record(mail_from, rcpt_to, raw, self.auth_user)
            for address in rcpt_to:
                account = store.account_for_address(address)
                if account is not None:
                    store.deliver(account.user, "INBOX", raw)
            sender = store.accounts.get(self.auth_user or "") or store.account_for_address(mail_from)
            if store.sent_folder and sender is not None:
                store.deliver(sender.user, store.sent_folder, raw, flags=("\\Seen",))
            return received.id


def _b64(text: str) -> str:
    return base64.b64decode(text, validate=True).decode("utf-8")
