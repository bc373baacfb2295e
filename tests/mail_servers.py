"""Real mail servers for the email channel's tests (issue 11): no mock IMAP, no mock SMTP.

- ``Dovecot``: Debian's Dovecot (``dovecot-imapd``, installed by ``bin/ensure-services``) started in the
  foreground with a throwaway ``dovecot.conf`` of its own (never the system's), on a free loopback port, IMAP only,
  no SSL, plaintext login allowed, users in a passwd-file, mail as Maildir under a temporary folder. Mail is
  delivered with IMAP ``APPEND``.
- ``SmtpCatcher``: an ``aiosmtpd`` server in the test process, on a free loopback port, that keeps every
  message's envelope and raw bytes (and the bytes parsed), and can refuse the next messages with a given reply.

Fixtures in ``conftest.py`` start one of each per session and reset them for each test (``dovecot``,
``smtp_catcher``).
"""

from __future__ import annotations

import atexit
import base64
import email
import email.policy
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from imapclient import IMAPClient

DEFAULT_PASSWORD = "mail-pass-123"
INSTALL_HINT = "run bin/ensure-services (it installs Debian's dovecot-imapd; make test and .ci/run do)"


class MailServerError(RuntimeError):
    """A mail server is missing or did not start; the message says why (with the end of its log)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def find_program(name: str) -> str | None:
    """On PATH, or in /usr/sbin and /usr/bin (where Debian puts Dovecot's, off a normal user's PATH)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/bin"):
        candidate = os.path.join(folder, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _greets(port: int) -> bool:
    """True once an IMAP server answers on the port with its ``* OK`` greeting."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            return conn.recv(64).startswith(b"* OK")
    except OSError:
        return False


# Dovecot ---------------------------------------------------------------------------------------------------

_CONF = """\
# Written by tests/mail_servers.py for one test session; the system's /etc/dovecot is never read.
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
# Loopback only, so plaintext LOGIN / AUTHENTICATE PLAIN is allowed.
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
auth_cache_size = 0
# A wrong password is answered at once, not after the default 2 s, and the next login from the same address is not
# held back (the auth penalty, up to 15 s; off without its anvil socket): tests try wrong passwords on purpose.
auth_failure_delay = 0
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_fsync = never
# The users' passwords and homes (one folder per user and reset generation, so a reset starts from nothing).
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {users}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


class Dovecot:
    """A Dovecot IMAP server of the tests' own, on ``127.0.0.1:port``, with its config, users, mail, state and
    log under ``folder``.

    As root, Dovecot runs its login processes as ``dovenull``, its internal ones as ``dovecot``, and reads and
    writes mail as ``nobody`` (it refuses uid 0 for mail), so ``folder`` must be reachable by them: give it a
    folder of its own directly under /tmp (``tempfile.mkdtemp``), not one under pytest's private tmp folders.
    As another user, every process runs as that user.
    """

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self.port = free_port()
        self.host = "127.0.0.1"
        self.conf = self.folder / "dovecot.conf"
        self.users_file = self.folder / "users"
        self.log = self.folder / "dovecot.log"
        self.users: dict[str, str] = {}
        self.process: subprocess.Popen | None = None
        self._generation = 0
        self._reloads = 0
        self.program = find_program("dovecot")
        self.doveadm = find_program("doveadm")
        if self.program is None:
            raise MailServerError(f"The email tests need Dovecot, and `dovecot` is not installed: {INSTALL_HINT}.")
        if os.geteuid() == 0:
            self._login_user, self._internal_user, self._internal_group = "dovenull", "dovecot", "dovecot"
            nobody = pwd.getpwnam("nobody")
            self._mail_uid, self._mail_gid = nobody.pw_uid, nobody.pw_gid
        else:
            me = pwd.getpwuid(os.geteuid())
            self._login_user = self._internal_user = me.pw_name
            self._internal_group = grp.getgrgid(os.getegid()).gr_name
            self._mail_uid, self._mail_gid = os.geteuid(), os.getegid()

    # Server ----------------------------------------------------------------------------------------------

    def start(self, timeout: float = 15) -> Dovecot:
        for sub in ("run", "state", "mail"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o755)  # the auth process (``dovecot``) reads the users file; mail is under it
        os.chown(self.folder / "mail", self._mail_uid, self._mail_gid)
        self._write_users()
        self.conf.write_text(
            _CONF.format(
                folder=self.folder,
                port=self.port,
                users=self.users_file,
                login_user=self._login_user,
                internal_user=self._internal_user,
                internal_group=self._internal_group,
            )
        )
        with open(self.folder / "dovecot.out", "wb") as out:
            self.process = subprocess.Popen(
                [self.program, "-F", "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends the master and every child
            )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while not _greets(self.port):
            if self.process.poll() is not None:
                raise MailServerError(f"dovecot exited with code {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise MailServerError(
                    f"dovecot did not answer on port {self.port} in {timeout:.0f}s:\n{self.log_tail()}"
                )
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # the master stops its children, then exits
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for path in (self.folder / "dovecot.out", self.log):
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def reset(self) -> None:
        """No users and no mail, as at start; the server keeps running. Each reset gives the users new homes, so
        nothing a previous test's still-open session writes can show up in the next test."""
        self.users.clear()
        self._generation += 1
        self._write_users()
        for old in (self.folder / "mail").iterdir():
            shutil.rmtree(old, ignore_errors=True)

    # Users and mailboxes ---------------------------------------------------------------------------------

    def add_user(self, user: str, password: str = DEFAULT_PASSWORD) -> str:
        """A mail account ``user`` (e.g. ``support@example.com``) with an empty INBOX; returns the user name."""
        if ":" in user or ":" in password or "\n" in user + password:
            raise ValueError("a user name or password cannot hold ':' or a newline (passwd-file fields)")
        self.users[user] = password
        self._write_users()
        return user

    def home(self, user: str) -> Path:
        return self.folder / "mail" / str(self._generation) / user

    @contextmanager
    def client(self, user: str, password: str | None = None):
        """An ``IMAPClient`` logged in as ``user`` (with its password unless told), logged out at the end."""
        imap = self.connect(user, password)
        try:
            yield imap
        finally:
            try:
                imap.logout()
            except Exception:  # noqa: BLE001 - a test may have broken the session on purpose
                imap.shutdown()

    def connect(self, user: str, password: str | None = None) -> IMAPClient:
        imap = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        try:
            imap.login(user, self.users.get(user, "") if password is None else password)
        except BaseException:
            imap.shutdown()
            raise
        return imap

    def create_mailbox(self, user: str, mailbox: str) -> int:
        """Create ``mailbox`` (a folder) for ``user``; returns its UIDVALIDITY."""
        with self.client(user) as imap:
            imap.create_folder(mailbox)
            return _uidvalidity(imap, mailbox)

    def deliver(
        self, user: str, raw: bytes, mailbox: str = "INBOX", flags: tuple = (), msg_time=None, create: bool = True
    ) -> int:
        """Put one raw message into ``user``'s ``mailbox`` with IMAP ``APPEND`` (creating the folder first unless
        told not to); returns its UID (Dovecot's ``APPENDUID``)."""
        with self.client(user) as imap:
            if create and mailbox.upper() != "INBOX" and not imap.folder_exists(mailbox):
                imap.create_folder(mailbox)
            answer = imap.append(mailbox, raw, flags=flags, msg_time=msg_time)
        match = re.search(rb"\[APPENDUID (\d+) (\d+)\]", answer)
        if not match:
            raise MailServerError(f"APPEND gave no APPENDUID: {answer!r}")
        return int(match.group(2))

    def uidvalidity(self, user: str, mailbox: str = "INBOX") -> int:
        with self.client(user) as imap:
            return _uidvalidity(imap, mailbox)

    def recreate_mailbox(self, user: str, mailbox: str) -> int:
        """Delete ``mailbox`` with its mail and create it again, as an admin or a client would (IMAP ``DELETE`` then
        ``CREATE``): the new mailbox has a new UIDVALIDITY, returned, and its UIDs start again at 1. INBOX cannot
        be deleted in IMAP: use ``set_uidvalidity`` for it."""
        if mailbox.upper() == "INBOX":
            raise ValueError("INBOX cannot be deleted over IMAP: use set_uidvalidity(user, 'INBOX', value)")
        with self.client(user) as imap:
            imap.delete_folder(mailbox)
            imap.create_folder(mailbox)
            return _uidvalidity(imap, mailbox)

    def set_uidvalidity(self, user: str, mailbox: str, value: int) -> int:
        """Give ``mailbox`` (INBOX too) the UIDVALIDITY ``value`` with ``doveadm mailbox update``, as a server
        restored from a backup or migrated would; its messages stay. Returns the value the server now reports."""
        if self.doveadm is None:
            raise MailServerError(f"`doveadm` is not installed (it comes with dovecot-core): {INSTALL_HINT}.")
        done = subprocess.run(
            [
                self.doveadm,
                "-c",
                str(self.conf),
                "mailbox",
                "update",
                "-u",
                user,
                "--uid-validity",
                str(value),
                mailbox,
            ],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        if done.returncode != 0:
            raise MailServerError(f"doveadm mailbox update failed ({done.returncode}): {done.stderr.strip()}")
        return self.uidvalidity(user, mailbox)

    def _write_users(self) -> None:
        """passwd-file lines ``user:{PLAIN}password:uid:gid::home``, then a configuration reload (``SIGHUP``, about
        20 ms) when the server runs: Dovecot's auth process looks at a passwd-file at most once a second, so a user
        added, changed or removed within a second of a login would otherwise be seen too late."""
        lines = [
            f"{user}:{{PLAIN}}{password}:{self._mail_uid}:{self._mail_gid}::{self.home(user)}\n"
            for user, password in self.users.items()
        ]
        temporary = self.users_file.with_suffix(".new")
        temporary.write_text("".join(lines))
        os.chmod(temporary, 0o644)
        os.replace(temporary, self.users_file)
        if self.process is not None and self.process.poll() is None:
            self._reload()

    def _reload(self, timeout: float = 10) -> None:
        """Reload and wait until the master has handled it (it logs the signal, then replaces the auth and login
        processes before it accepts anything else), so the next login reads the new users file."""
        self._reloads += 1
        os.kill(self.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self.log.read_text(errors="replace").count("SIGHUP received") < self._reloads:
            if time.monotonic() > deadline:
                raise MailServerError(f"dovecot did not reload in {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.005)


def _uidvalidity(imap: IMAPClient, mailbox: str) -> int:
    return int(imap.folder_status(mailbox, [b"UIDVALIDITY"])[b"UIDVALIDITY"])


# SMTP catcher ----------------------------------------------------------------------------------------------


@dataclass
class CaughtMessage:
    """One message as the catcher received it: the SMTP envelope and the exact bytes after ``DATA``."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    login: str | None = None
    message: EmailMessage = field(init=False, repr=False)

    def __post_init__(self):
        self.message = email.message_from_bytes(self.raw, policy=email.policy.default)

    def __getitem__(self, header: str):
        """A header of the parsed message (``caught["Subject"]``)."""
        return self.message[header]


class _Handler:
    def __init__(self, catcher: SmtpCatcher):
        self.catcher = catcher

    async def handle_DATA(self, server, session, envelope):
        return self.catcher._receive(envelope, session)

    async def auth_XOAUTH2(self, server, args):
        """Gmail's and Microsoft's SASL mechanism: ``user=<u>\x01auth=Bearer <token>\x01\x01``, base64, in the
        AUTH line. Any token is taken; the catcher keeps it (``bearer_tokens``) and the user is the login."""
        try:
            fields = dict(item.split("=", 1) for item in base64.b64decode(args[1]).decode().split("\x01") if item)
            user, token = fields["user"], fields["auth"].removeprefix("Bearer ")
        except (IndexError, ValueError, KeyError):
            return AuthResult(success=False)
        self.catcher.bearer_tokens.append(token)
        return AuthResult(success=True, auth_data=LoginPassword(user.encode(), token.encode()))


class SmtpCatcher:
    """An SMTP server (``aiosmtpd``) in this process on ``127.0.0.1:port`` that keeps what it is sent in
    ``messages`` (``CaughtMessage``, in order). It offers ``AUTH PLAIN/LOGIN`` without TLS and accepts any login
    (kept on the message), so a backend configured with a user and password works too. ``refuse_next`` makes it
    answer the next messages' ``DATA`` with an error instead of keeping them."""

    def __init__(self):
        self.host = "127.0.0.1"
        self.port = free_port()
        self.messages: list[CaughtMessage] = []
        self._refusals: list[str] = []
        #: The bearer tokens clients logged in with over XOAUTH2, in order.
        self.bearer_tokens: list[str] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            enable_SMTPUTF8=True,
            auth_require_tls=False,
            authenticator=self._authenticate,
        )

    def start(self) -> SmtpCatcher:
        self._controller.start()
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        if self._controller.server is not None:
            self._controller.stop()

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self._refusals.clear()
            self.bearer_tokens.clear()

    def refuse_next(self, reply: str = "550 5.1.1 Mailbox unavailable", count: int = 1) -> None:
        """Answer the next ``count`` messages' ``DATA`` with ``reply`` (e.g. ``"451 4.3.0 Try again later"``)."""
        with self._lock:
            self._refusals.extend([reply] * count)

    def wait_for(self, count: int = 1, timeout: float = 10) -> list[CaughtMessage]:
        """Wait until at least ``count`` messages arrived (from a worker, say); returns them all."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout):
                raise AssertionError(
                    f"the SMTP catcher has {len(self.messages)} messages after {timeout}s, not {count}"
                )
            return list(self.messages)

    def _receive(self, envelope, session) -> str:
        with self._arrived:
            if self._refusals:
                return self._refusals.pop(0)
            login = session.auth_data.login.decode() if session.authenticated and session.auth_data else None
            self.messages.append(
                CaughtMessage(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    raw=envelope.original_content,
                    login=login,
                )
            )
            self._arrived.notify_all()
        return "250 2.0.0 Message accepted for delivery"

    @staticmethod
    def _authenticate(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=True, auth_data=auth_data)
