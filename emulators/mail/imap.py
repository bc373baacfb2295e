"""The IMAP4rev1 server (RFC 3501, with UIDPLUS, MOVE, IDLE, LITERAL+, UNSELECT): one thread per connection.

A session keeps its own view of the selected folder (the UIDs in sequence order). Other sessions' changes (new
mail, expunges) reach it at the end of a command, as ``EXISTS`` and ``EXPUNGE``, or at once while it IDLEs; not
during FETCH, STORE or SEARCH, where sequence numbers must not move. A folder renumbered by a new UIDVALIDITY ends
the sessions that had it selected with ``BYE``, as a rebuilt server does.
"""

import base64
import binascii
import contextlib
import re
import select
import socket
import socketserver
import threading
import time

from ..common import StormPlan, reset_socket
from . import imap_syntax as syntax
from .faults import Faults, ProtocolFault
from .imap_syntax import Bad, No, as_text, flag_list, literal, quote
from .store import SYSTEM_FLAGS, Account, Folder, Message, Store
from .storms import imap_strike

CAPABILITIES = "IMAP4rev1 UIDPLUS MOVE IDLE UNSELECT LITERAL+"
LOGIN_CAPABILITIES = f"{CAPABILITIES} AUTH=PLAIN AUTH=XOAUTH2"
MAX_LINE = 64 * 1024
MAX_LITERAL = 64 * 1024 * 1024
LITERAL_MARKER = re.compile(rb"\{(\d+)(\+?)\}$")
DELIMITER = "/"
IDLE_POLL_SECONDS = 0.1


class _Closed(Exception):
    """The connection is gone (or the session ended it)."""


class ImapServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], store: Store, faults: Faults, storms: StormPlan):
        self.store = store
        self.faults = faults
        self.storms = storms
        self.sessions: set[ImapSession] = set()
        self.sessions_lock = threading.Lock()
        super().__init__(address, _Handler)

    def disconnect_all(self, text: str = "Server shutting down") -> int:
        """Say BYE on every open connection and close it, as a restarting server does."""
        with self.sessions_lock:
            sessions = list(self.sessions)
        for session in sessions:
            session.kick(text)
        return len(sessions)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: ImapServer = self.server  # type: ignore[assignment]
        session = ImapSession(self.request, server.store, server.faults, server.storms)
        with server.sessions_lock:
            server.sessions.add(session)
        try:
            session.run()
        finally:
            with server.sessions_lock:
                server.sessions.discard(session)


class ImapSession:
    def __init__(self, sock: socket.socket, store: Store, faults: Faults, storms: StormPlan):
        self.sock = sock
        self.store = store
        self.faults = faults
        self.storms = storms
        self.buffer = b""
        self.out: list[bytes] = []
        self.send_lock = threading.Lock()
        self.closed = False
        self.account: Account | None = None
        self.folder: Folder | None = None
        self.generation = 0
        self.readonly = False
        self.view: list[int] = []  # UIDs in sequence order, as this session knows them
        self.recent: set[int] = set()  # UIDs this session reports as \Recent

    # -- connection ---------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._weather_storm("*", "CONNECT")
            fault = self.faults.take_imap("CONNECT")
            if fault is not None:
                self._greet_with_fault(fault)
                return
            self.send(f"* OK [CAPABILITY {LOGIN_CAPABILITIES}] Mail emulator ready.\r\n".encode())
            while not self.closed:
                self.serve_one()
        except (_Closed, OSError):
            pass
        finally:
            self.close()

    def _greet_with_fault(self, fault: ProtocolFault) -> None:
        if fault.kind == "bye":
            self.send(f"* BYE {fault.message or 'Too many connections'}\r\n".encode())

    def kick(self, text: str) -> None:
        with contextlib.suppress(OSError):
            self.send(f"* BYE {text}\r\n".encode())
        self.close()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def send(self, data: bytes) -> None:
        with self.send_lock:
            self.sock.sendall(data)

    def flush(self) -> None:
        data = b"".join(self.out)
        self.out.clear()
        if data:
            self.send(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _Closed
        self.buffer += chunk

    def read_line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE:
                raise _Closed
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_command(self) -> list[bytes]:
        """The command's pieces: text, literal, text, ... (see imap_syntax); asks for each synchronizing literal."""
        pieces = []
        while True:
            line = self.read_line()
            marker = LITERAL_MARKER.search(line)
            if marker is None:
                pieces.append(line)
                return pieces
            size = int(marker[1])
            if size > MAX_LITERAL:
                raise _Closed
            pieces.append(line[: marker.start()])
            if not marker[2]:
                self.send(b"+ Ready for literal data\r\n")
            pieces.append(self.read_exactly(size))

    # -- commands -----------------------------------------------------------------------------

    def serve_one(self) -> None:
        pieces = self.read_command()
        tag, _, rest = pieces[0].partition(b" ")
        tag_text = tag.decode("ascii", "replace") or "*"
        try:
            tokens = syntax.tokenize([rest, *pieces[1:]])
            if not tokens or not isinstance(tokens[0], str):
                raise Bad("missing command")
            name = tokens[0].upper()
            args = tokens[1:]
            if name == "UID":
                if not args or not isinstance(args[0], str):
                    raise Bad("UID needs a command")
                name, args = f"UID {args[0].upper()}", args[1:]
        except Bad as exc:
            self.send(f"{tag_text} BAD {exc}\r\n".encode())
            return
        if self._weather_storm(tag_text, name):
            return
        fault = self.faults.take_imap(name)
        if fault is not None and fault.kind != "drop_after":
            self._answer_with_fault(tag_text, fault)
            return
        self.execute(tag_text, name, args)
        if fault is not None:  # drop_after: applied, then the connection drops before the answer
            self.out.clear()
            raise _Closed
        self.flush()

    def _weather_storm(self, tag: str, command: str) -> bool:
        """Let a storm strike this command (or the greeting). False: serve it (late, if the storm says so); True:
        the storm answered ``NO`` in its stead. A ``BYE`` or a reset ends the connection."""
        strike = imap_strike(self.storms, command)
        if strike is None:
            return False
        if strike.kind == "slow":
            time.sleep(self.storms.slow_seconds)
            return False
        if strike.kind == "reset":
            self.closed = True
            reset_socket(self.sock)
            raise _Closed
        if strike.closes:
            self.send(f"* BYE {strike.text}\r\n".encode())
            raise _Closed
        self.send(f"{tag} {strike.answer} {strike.text}\r\n".encode())
        return True

    def _answer_with_fault(self, tag: str, fault: ProtocolFault) -> None:
        if fault.kind == "drop":
            raise _Closed
        if fault.kind == "bye":
            self.send(f"* BYE {fault.message or 'Server shutting down'}\r\n".encode())
            raise _Closed
        status = "BAD" if fault.kind == "bad" else "NO"
        self.send(f"{tag} {status} {fault.message or '[UNAVAILABLE] Temporary failure'}\r\n".encode())

    def execute(self, tag: str, name: str, args: list) -> None:
        if name == "AUTHENTICATE":  # outside the lock: it talks to the client in the middle
            self.out.append(self._tagged(tag, name, lambda: self.cmd_authenticate(args)))
            return
        if name == "IDLE":
            self.out.append(self._tagged(tag, name, self.cmd_idle))
            return
        handler = self._handler(name)
        with self.store.lock:
            done = self._tagged(tag, name, lambda: handler(args))
            if not self.closed:
                self.sync(expunges=name not in ("FETCH", "STORE", "SEARCH", "UID FETCH", "UID STORE", "UID SEARCH"))
        if not self.closed or name == "LOGOUT":  # a BYE from sync() ends the session without a tagged answer
            self.out.append(done)

    def _tagged(self, tag: str, name: str, run) -> bytes:
        """Run the command; its tagged answer, sent after whatever untagged data it and sync() produce."""
        try:
            text = run() or f"{name} completed"
            return f"{tag} OK {text}\r\n".encode()
        except No as exc:
            return f"{tag} NO {exc}\r\n".encode()
        except (Bad, ValueError, IndexError) as exc:
            return f"{tag} BAD {exc or 'invalid arguments'}\r\n".encode()

    def _handler(self, name: str):
        anywhere = {"CAPABILITY", "NOOP", "LOGOUT"}
        unauthenticated = {"LOGIN"}
        authenticated = {"SELECT", "EXAMINE", "CREATE", "DELETE", "LIST", "LSUB", "SUBSCRIBE", "UNSUBSCRIBE"}
        authenticated |= {"STATUS", "APPEND"}
        selected = {"CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE"}
        selected |= {f"UID {command}" for command in ("SEARCH", "FETCH", "STORE", "COPY", "MOVE", "EXPUNGE")}

        def refuse(args):
            raise Bad(f"{name} is not allowed now")

        def unknown(args):
            raise Bad(f"unknown command {name}")

        if name not in anywhere | unauthenticated | authenticated | selected:
            return unknown
        allowed = (
            name in anywhere
            or (name in unauthenticated and self.account is None)
            or (name in authenticated and self.account is not None)
            or (name in selected and self.folder is not None)
        )
        if not allowed:
            return refuse
        return getattr(self, "cmd_" + name.lower().replace(" ", "_"))

    # -- any state ----------------------------------------------------------------------------

    def cmd_capability(self, args) -> None:
        capabilities = CAPABILITIES if self.account else LOGIN_CAPABILITIES
        self.out.append(f"* CAPABILITY {capabilities}\r\n".encode())

    def cmd_noop(self, args) -> None:
        return None

    def cmd_logout(self, args) -> None:
        self.out.append(b"* BYE Logging out\r\n")
        self.closed = True

    # -- authentication -----------------------------------------------------------------------

    def _logged_in(self, account: Account | None) -> str:
        if account is None:
            raise No("[AUTHENTICATIONFAILED] Authentication failed.")
        self.account = account
        return f"[CAPABILITY {CAPABILITIES}] Logged in"

    def cmd_login(self, args) -> str:
        if len(args) != 2:
            raise Bad("LOGIN needs a user name and a password")
        user, password = as_text(args[0]), as_text(args[1])
        account = self.store.accounts.get(user)
        return self._logged_in(account if account and account.password == password else None)

    def cmd_authenticate(self, args) -> str:
        if self.account is not None:
            raise Bad("already authenticated")
        if not args:
            raise Bad("AUTHENTICATE needs a mechanism")
        mechanism = as_text(args[0]).upper()
        if mechanism not in ("PLAIN", "XOAUTH2"):
            raise No(f"Unsupported authentication mechanism {mechanism}")
        if len(args) > 1:  # SASL-IR
            response = as_text(args[1])
        else:
            self.send(b"+ \r\n")
            response = self.read_line().decode("ascii", "replace")
        if response == "*":
            raise Bad("Authentication cancelled")
        try:
            decoded = base64.b64decode(response, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Bad("Invalid base64") from None
        with self.store.lock:
            return self._logged_in(self._sasl_account(mechanism, decoded))

    def _sasl_account(self, mechanism: str, decoded: str) -> Account | None:
        if mechanism == "PLAIN":
            parts = decoded.split("\0")
            if len(parts) != 3:
                return None
            account = self.store.accounts.get(parts[1])
            return account if account and account.password == parts[2] and parts[0] in ("", parts[1]) else None
        fields = dict(part.split("=", 1) for part in decoded.split("\x01") if "=" in part)
        account = self.store.accounts.get(fields.get("user", ""))
        return account if account and fields.get("auth") == f"Bearer {account.token}" else None

    # -- authenticated state ------------------------------------------------------------------

    def _folder_arg(self, token) -> str:
        name = as_text(token)
        return "INBOX" if name.upper() == "INBOX" else name

    def cmd_select(self, args, readonly: bool = False) -> str:
        if len(args) != 1:
            raise Bad("SELECT needs a folder")
        self.folder, self.view, self.recent = None, [], set()
        assert self.account is not None
        folder = self.account.folder(self._folder_arg(args[0]))
        if folder is None:
            raise No("[NONEXISTENT] Mailbox doesn't exist")
        self.folder, self.generation, self.readonly = folder, folder.generation, readonly
        self.view = [message.uid for message in folder.messages]
        self.recent = {message.uid for message in folder.messages if message.recent}
        if not readonly:
            for message in folder.messages:
                message.recent = False
        flags = " ".join(SYSTEM_FLAGS)
        self.out.append(f"* FLAGS ({flags})\r\n".encode())
        permanent = f"{flags} \\*" if not readonly else ""
        self.out.append(f"* OK [PERMANENTFLAGS ({permanent})] Flags permitted.\r\n".encode())
        self.out.append(f"* {len(self.view)} EXISTS\r\n* {len(self.recent)} RECENT\r\n".encode())
        unseen = next((seq for seq, m in enumerate(folder.messages, 1) if "\\Seen" not in m.flags), None)
        if unseen is not None:
            self.out.append(f"* OK [UNSEEN {unseen}] First unseen.\r\n".encode())
        self.out.append(f"* OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid\r\n".encode())
        self.out.append(f"* OK [UIDNEXT {folder.uidnext}] Predicted next UID\r\n".encode())
        return f"[READ-{'ONLY' if readonly else 'WRITE'}] {'EXAMINE' if readonly else 'SELECT'} completed"

    def cmd_examine(self, args) -> str:
        return self.cmd_select(args, readonly=True)

    def cmd_create(self, args) -> str:
        assert self.account is not None
        name = self._folder_arg(args[0]).rstrip(DELIMITER)
        if not name or self.account.folder(name) is not None:
            raise No("[ALREADYEXISTS] Mailbox already exists")
        self.account.folders[name] = self.store.new_folder(name)
        self.store.changed()
        return "CREATE completed"

    def cmd_delete(self, args) -> str:
        assert self.account is not None
        name = self._folder_arg(args[0])
        if name == "INBOX":
            raise No("INBOX cannot be deleted")
        if self.account.folders.pop(name, None) is None:
            raise No("[NONEXISTENT] Mailbox doesn't exist")
        self.store.changed()
        return "DELETE completed"

    def cmd_subscribe(self, args) -> None:
        return None

    def cmd_unsubscribe(self, args) -> None:
        return None

    def cmd_list(self, args, command: str = "LIST") -> None:
        if len(args) != 2:
            raise Bad(f"{command} needs a reference and a pattern")
        assert self.account is not None
        reference, pattern = as_text(args[0]), as_text(args[1])
        if not pattern:
            self.out.append(f'* {command} (\\Noselect) "{DELIMITER}" ""\r\n'.encode())
            return
        wildcards = {"*": ".*", "%": f"[^{re.escape(DELIMITER)}]*"}
        regex = "".join(wildcards.get(char, re.escape(char)) for char in reference + pattern)
        names = sorted(self.account.folders, key=lambda name: (name != "INBOX", name))
        for name in names:
            if re.fullmatch(regex, name, re.IGNORECASE if name == "INBOX" else 0):
                children = any(other.startswith(name + DELIMITER) for other in names)
                attributes = "\\HasChildren" if children else "\\HasNoChildren"
                self.out.append(f'* {command} ({attributes}) "{DELIMITER}" '.encode() + quote(name) + b"\r\n")

    def cmd_lsub(self, args) -> None:
        self.cmd_list(args, "LSUB")

    def cmd_status(self, args) -> None:
        if len(args) != 2 or not isinstance(args[1], list):
            raise Bad("STATUS needs a folder and a list of items")
        assert self.account is not None
        folder = self.account.folder(self._folder_arg(args[0]))
        if folder is None:
            raise No("[NONEXISTENT] Mailbox doesn't exist")
        values = {
            "MESSAGES": len(folder.messages),
            "RECENT": sum(message.recent for message in folder.messages),
            "UIDNEXT": folder.uidnext,
            "UIDVALIDITY": folder.uidvalidity,
            "UNSEEN": sum("\\Seen" not in message.flags for message in folder.messages),
        }
        items = []
        for item in args[1]:
            key = as_text(item).upper()
            if key not in values:
                raise Bad(f"unknown STATUS item {key}")
            items.append(f"{key} {values[key]}")
        self.out.append(b"* STATUS " + quote(folder.name) + f" ({' '.join(items)})\r\n".encode())

    def cmd_append(self, args) -> str:
        if len(args) < 2 or not isinstance(args[-1], bytes):
            raise Bad("APPEND needs a folder and a message literal")
        assert self.account is not None
        folder = self.account.folder(self._folder_arg(args[0]))
        flags: list[str] = []
        moment = None
        for option in args[1:-1]:
            if isinstance(option, list):
                flags = [as_text(flag) for flag in option if as_text(flag) != "\\Recent"]
            else:
                moment = syntax.parse_internaldate(option)
        if folder is None:
            raise No("[TRYCREATE] Mailbox doesn't exist")
        message = folder.add(args[-1], flags, moment)
        self.store.changed()
        return f"[APPENDUID {folder.uidvalidity} {message.uid}] APPEND completed"

    def cmd_idle(self) -> str:
        self.send(b"+ idling\r\n")
        seen = None
        while True:
            if b"\r\n" in self.buffer or select.select([self.sock], [], [], IDLE_POLL_SECONDS)[0]:
                line = self.read_line()
                if line.upper() != b"DONE":
                    raise Bad("expected DONE")
                return "IDLE terminated"
            with self.store.lock:
                if self.store.version == seen:
                    self.store.lock.wait(IDLE_POLL_SECONDS)
                seen = self.store.version
                self.sync(expunges=True)
            self.flush()
            if self.closed:
                raise _Closed

    # -- selected state -----------------------------------------------------------------------

    def sync(self, expunges: bool) -> None:
        """Tell the client what changed in its folder since it last looked."""
        folder = self.folder
        if folder is None or self.account is None:
            return
        if self.account.folders.get(folder.name) is not folder or folder.generation != self.generation:
            self.out.append(b"* BYE Mailbox was rebuilt (UIDVALIDITY changed)\r\n")
            self.closed = True
            return
        if expunges:
            present = {message.uid for message in folder.messages}
            self._forget([uid for uid in self.view if uid not in present])
        last = self.view[-1] if self.view else 0
        arrived = [message for message in folder.messages if message.uid > last]
        if arrived:
            self.view.extend(message.uid for message in arrived)
            for message in arrived:
                if message.recent:
                    self.recent.add(message.uid)
                    message.recent = self.readonly
            self.out.append(f"* {len(self.view)} EXISTS\r\n* {len(self.recent)} RECENT\r\n".encode())

    def _forget(self, uids: list[int]) -> None:
        """EXPUNGE responses for these UIDs of the view, each with its sequence number at that moment."""
        for uid in uids:
            seq = self.view.index(uid) + 1
            del self.view[seq - 1]
            self.recent.discard(uid)
            self.out.append(f"* {seq} EXPUNGE\r\n".encode())

    def _selected(self) -> list[tuple[int, Message]]:
        """(sequence number, message) for the view's messages that still exist."""
        assert self.folder is not None
        messages = self.folder.by_uid()
        return [(seq, messages[uid]) for seq, uid in enumerate(self.view, 1) if uid in messages]

    def _matching(self, token, uid: bool) -> list[tuple[int, Message]]:
        selected = self._selected()
        if uid:
            ranges = syntax.parse_set(token, self.view[-1] if self.view else 0)
            return [(seq, message) for seq, message in selected if syntax.in_set(message.uid, ranges)]
        ranges = syntax.parse_set(token, len(self.view))
        return [(seq, message) for seq, message in selected if syntax.in_set(seq, ranges)]

    def _writable(self) -> None:
        if self.readonly:
            raise No("[READ-ONLY] Mailbox is read-only")

    def cmd_check(self, args) -> None:
        return None

    def cmd_close(self, args) -> str:
        if not self.readonly:
            assert self.folder is not None
            self.folder.messages = [m for m in self.folder.messages if "\\Deleted" not in m.flags]
            self.store.changed()
        self.folder, self.view, self.recent = None, [], set()
        return "CLOSE completed"

    def cmd_unselect(self, args) -> str:
        self.folder, self.view, self.recent = None, [], set()
        return "UNSELECT completed"

    def cmd_expunge(self, args, uid_set=None) -> str:
        self._writable()
        assert self.folder is not None
        doomed = {message.uid for _, message in self._selected() if "\\Deleted" in message.flags}
        if uid_set is not None:
            ranges = syntax.parse_set(uid_set, self.view[-1] if self.view else 0)
            doomed = {uid for uid in doomed if syntax.in_set(uid, ranges)}
        self.folder.messages = [message for message in self.folder.messages if message.uid not in doomed]
        self._forget([uid for uid in self.view if uid in doomed])
        self.store.changed()
        return "EXPUNGE completed"

    def cmd_uid_expunge(self, args) -> str:
        if len(args) != 1:
            raise Bad("UID EXPUNGE needs a UID set")
        return self.cmd_expunge([], uid_set=args[0])

    def cmd_search(self, args, uid: bool = False) -> None:
        largest_uid = self.view[-1] if self.view else 0
        matcher = syntax.parse_search(args, len(self.view), largest_uid)
        found = [message.uid if uid else seq for seq, message in self._selected() if matcher(seq, message)]
        self.out.append(("* SEARCH" + "".join(f" {number}" for number in found) + "\r\n").encode())

    def cmd_uid_search(self, args) -> None:
        self.cmd_search(args, uid=True)

    def cmd_fetch(self, args, uid: bool = False) -> None:
        if len(args) != 2:
            raise Bad("FETCH needs a set and data items")
        items = syntax.fetch_items(args[1])
        if uid and "UID" not in (item.upper() for item in items):
            items = ["UID", *items]
        for seq, message in self._matching(args[0], uid):
            self.out.append(f"* {seq} FETCH (".encode() + self._fetch_one(message, items) + b")\r\n")

    def cmd_uid_fetch(self, args) -> None:
        self.cmd_fetch(args, uid=True)

    def _fetch_one(self, message, items: list[str]) -> bytes:
        parts = []
        flags_before = set(message.flags)
        for item in items:
            key = item.upper()
            if key == "UID":
                parts.append(f"UID {message.uid}".encode())
            elif key == "FLAGS":
                parts.append(b"FLAGS " + self._flags(message))
            elif key == "INTERNALDATE":
                parts.append(f"INTERNALDATE {syntax.format_internaldate(message.internaldate)}".encode())
            elif key == "RFC822.SIZE":
                parts.append(f"RFC822.SIZE {len(message.raw)}".encode())
            elif key in ("RFC822", "RFC822.HEADER", "RFC822.TEXT"):
                section = {"RFC822": "", "RFC822.HEADER": "HEADER", "RFC822.TEXT": "TEXT"}[key]
                parts.append(key.encode() + b" " + literal(syntax.body_section(message.raw, section)))
                if key != "RFC822.HEADER":
                    self._mark_seen(message)
            else:
                parts.append(self._body_item(message, item))
        if message.flags != flags_before and "FLAGS" not in (item.upper() for item in items):
            parts.append(b"FLAGS " + self._flags(message))
        return b" ".join(parts)

    def _body_item(self, message, item: str) -> bytes:
        match = syntax.BODY_ITEM.match(item)
        if match is None:
            raise Bad(f"unsupported FETCH item {item}")
        data = syntax.body_section(message.raw, match[2])
        name = f"BODY[{match[2]}]"
        if match[3] is not None:
            start = int(match[3])
            data = data[start : start + int(match[4])] if match[4] is not None else data[start:]
            name += f"<{start}>"
        if match[1].upper() == "BODY":
            self._mark_seen(message)
        return name.encode() + b" " + literal(data)

    def _mark_seen(self, message) -> None:
        if not self.readonly and "\\Seen" not in message.flags:
            message.flags.add("\\Seen")
            self.store.changed()

    def _flags(self, message) -> bytes:
        return flag_list(message.flags | ({"\\Recent"} if message.uid in self.recent else set()))

    def cmd_store(self, args, uid: bool = False) -> None:
        self._writable()
        if len(args) != 3:
            raise Bad("STORE needs a set, an item and flags")
        action = as_text(args[1]).upper()
        silent = action.endswith(".SILENT")
        mode = action.removesuffix(".SILENT")
        if mode not in ("FLAGS", "+FLAGS", "-FLAGS"):
            raise Bad(f"unknown STORE item {action}")
        flags = {as_text(flag) for flag in (args[2] if isinstance(args[2], list) else [args[2]])} - {"\\Recent"}
        for seq, message in self._matching(args[0], uid):
            if mode == "FLAGS":
                message.flags = set(flags)
            elif mode == "+FLAGS":
                message.flags |= flags
            else:
                message.flags -= flags
            if not silent:
                uid_part = f"UID {message.uid} " if uid else ""
                self.out.append(f"* {seq} FETCH ({uid_part}FLAGS ".encode() + self._flags(message) + b")\r\n")
        self.store.changed()

    def cmd_uid_store(self, args) -> None:
        self.cmd_store(args, uid=True)

    def cmd_copy(self, args, uid: bool = False, move: bool = False) -> str:
        if len(args) != 2:
            raise Bad("COPY needs a set and a folder")
        if move:
            self._writable()
        assert self.account is not None
        target = self.account.folder(self._folder_arg(args[1]))
        if target is None:
            raise No("[TRYCREATE] Mailbox doesn't exist")
        moved = sorted(self._matching(args[0], uid), key=lambda pair: pair[1].uid)
        copies = [target.add(message.raw, message.flags, message.internaldate) for _, message in moved]
        self.store.changed()
        code = ""
        if moved:
            source_uids = syntax.format_set([message.uid for _, message in moved])
            code = f"[COPYUID {target.uidvalidity} {source_uids} {syntax.format_set([c.uid for c in copies])}] "
        if not move:
            return f"{code}COPY completed"
        assert self.folder is not None
        gone = {message.uid for _, message in moved}
        self.folder.messages = [message for message in self.folder.messages if message.uid not in gone]
        if code:
            self.out.append(f"* OK {code}Moved\r\n".encode())
        self._forget([uid for uid in self.view if uid in gone])
        return "MOVE completed"

    def cmd_uid_copy(self, args) -> str:
        return self.cmd_copy(args, uid=True)

    def cmd_move(self, args) -> str:
        return self.cmd_copy(args, move=True)

    def cmd_uid_move(self, args) -> str:
        return self.cmd_copy(args, uid=True, move=True)
