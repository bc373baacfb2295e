"""The emulator's state: accounts with their folders and messages, and what the SMTP side received.

One lock (a Condition) guards everything; every change notifies it, which is what wakes IMAP sessions in IDLE.
Folder names are kept as they travel on the wire (modified UTF-7, as IMAP clients encode them); INBOX is
case-insensitive.
"""

import email.policy
import itertools
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesParser

SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
DEFAULT_USER = "it-help@example.com"
DEFAULT_PASSWORD = "emulator-password"
DEFAULT_TOKEN = "emulator-token"
FIRST_UIDVALIDITY = 1000


class MailError(ValueError):
    """A control request that makes no sense (unknown account or folder): answered 400/404."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Message:
    uid: int
    raw: bytes
    internaldate: datetime
    flags: set[str] = field(default_factory=set)
    recent: bool = True

    def header(self, name: str) -> str:
        """A header's value, "" if it has none (for SEARCH); the first of repeated ones."""
        parsed = BytesParser(policy=email.policy.compat32).parsebytes(self.raw, headersonly=True)
        return str(parsed.get(name, "") or "")


@dataclass
class Folder:
    name: str
    uidvalidity: int
    uidnext: int = 1
    messages: list[Message] = field(default_factory=list)
    # Bumped when UIDs are renumbered (a new UIDVALIDITY): sessions that selected the folder before must go.
    generation: int = 0

    def add(self, raw: bytes, flags=(), internaldate: datetime | None = None) -> Message:
        """Stored with CRLF line ends, as IMAP serves messages."""
        raw = re.sub(rb"\r?\n", b"\r\n", raw)
        message = Message(self.uidnext, raw, internaldate or datetime.now(UTC), set(flags))
        self.uidnext += 1
        self.messages.append(message)
        return message

    def by_uid(self) -> dict[int, Message]:
        return {message.uid: message for message in self.messages}


@dataclass
class Account:
    user: str
    password: str
    token: str
    address: str
    folders: dict[str, Folder] = field(default_factory=dict)

    def folder(self, name: str) -> Folder | None:
        return self.folders.get("INBOX" if name.upper() == "INBOX" else name)


@dataclass
class Received:
    """One message the SMTP side accepted: the envelope and the bytes as received."""

    id: int
    mail_from: str
    rcpt_to: list[str]
    raw: bytes
    auth_user: str | None
    received_at: datetime


class Store:
    def __init__(self):
        self.lock = threading.Condition()
        self._uidvalidities = itertools.count(FIRST_UIDVALIDITY)
        with self.lock:
            self.reset()

    def reset(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.received: list[Received] = []
        self._received_ids = itertools.count(1)
        self.require_smtp_auth = False
        #: Where mail accepted over SMTP from an account is filed in that account, as Gmail and Microsoft 365 file
        #: it in Sent (None: nowhere).
        self.sent_folder: str | None = None
        # Bumped on every change of the folders, so that IDLE and NOOP look again.
        self.version = 0
        self.changed()

    def changed(self) -> None:
        self.version += 1
        self.lock.notify_all()

    def new_folder(self, name: str) -> Folder:
        return Folder(name, next(self._uidvalidities))

    def add_account(self, user: str, password: str, token: str, address: str | None = None) -> Account:
        account = self.accounts.get(user)
        if account is None:
            account = Account(user, password, token, (address or user).lower())
            account.folders["INBOX"] = self.new_folder("INBOX")
            self.accounts[user] = account
        else:
            account.password, account.token = password, token
            account.address = (address or account.address).lower()
        self.changed()
        return account

    def account(self, user: str | None) -> Account:
        if user is None:
            if not self.accounts:
                raise MailError("no account: configure one first", 404)
            return next(iter(self.accounts.values()))
        account = self.accounts.get(user)
        if account is None:
            raise MailError(f"no account {user}", 404)
        return account

    def account_for_address(self, address: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.address == address.lower()), None)

    def folder(self, user: str | None, name: str, create: bool = False) -> Folder:
        account = self.account(user)
        folder = account.folder(name)
        if folder is None:
            if not create:
                raise MailError(f"no folder {name} for {account.user}", 404)
            folder = account.folders[name] = self.new_folder(name)
        return folder

    def deliver(
        self, user: str | None, folder_name: str, raw: bytes, flags=(), internaldate: datetime | None = None
    ) -> tuple[Account, Folder, Message]:
        account = self.account(user)
        folder = self.folder(account.user, folder_name, create=True)
        message = folder.add(raw, flags, internaldate)
        self.changed()
        return account, folder, message

    def set_uidvalidity(self, user: str | None, folder_name: str, uidvalidity: int | None) -> Folder:
        """What a server rebuild does: a new UIDVALIDITY and every message renumbered from 1."""
        folder = self.folder(user, folder_name)
        folder.uidvalidity = uidvalidity if uidvalidity is not None else next(self._uidvalidities)
        for uid, message in enumerate(folder.messages, start=1):
            message.uid = uid
        folder.uidnext = len(folder.messages) + 1
        folder.generation += 1
        self.changed()
        return folder

    def record(self, mail_from: str, rcpt_to: list[str], raw: bytes, auth_user: str | None) -> Received:
        received = Received(next(self._received_ids), mail_from, rcpt_to, raw, auth_user, datetime.now(UTC))
        self.received.append(received)
        self.changed()
        return received
