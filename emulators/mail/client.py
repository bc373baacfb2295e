"""Python client for the emulator's control API, for an emulator in this process or elsewhere.

The method signatures are the stable API the helpdesk's tests and the demo use; see the package docstring.
"""

import base64
import time
from collections.abc import Iterable
from datetime import datetime

from ..common import ControlClient, EmulatorControlError

__all__ = ["EmulatorControlError", "MailEmulatorClient"]


def _clean(payload: dict) -> dict:
    return {key: value for key, value in payload.items() if value is not None}


def _with_raw(item: dict) -> dict:
    item = dict(item)
    item["raw"] = base64.b64decode(item.pop("raw_base64"))
    for attachment in item.get("attachments", []):
        attachment["content"] = base64.b64decode(attachment.pop("content_base64"))
    return item


class MailEmulatorClient(ControlClient):
    def reset(self) -> None:
        """The start-up accounts with an empty INBOX each; nothing sent; no faults; SMTP AUTH optional again.
        Open IMAP connections are closed."""
        self._call("POST", "reset")

    def info(self) -> dict:
        """Where to connect: {"imap": {"host", "port"}, "smtp": {"host", "port"}}."""
        return self._call("GET", "info")

    def stats(self) -> dict:
        """{"accounts", "messages" (in all folders), "sent"}."""
        return self._call("GET", "stats")

    # -- accounts and folders -----------------------------------------------------------------

    def add_account(
        self, user: str, password: str | None = None, token: str | None = None, address: str | None = None
    ) -> dict:
        """An IMAP/SMTP login (or new credentials for an existing one): LOGIN and AUTHENTICATE PLAIN take the
        password, XOAUTH2 the token. ``address`` (default: ``user``) is where SMTP delivers locally."""
        payload = {"user": user, "password": password, "token": token, "address": address}
        return self._call("POST", "accounts", _clean(payload))

    def accounts(self) -> list[dict]:
        return self._call("GET", "accounts")["accounts"]

    def create_folder(self, name: str, account: str | None = None) -> dict:
        return self._call("POST", "folders", _clean({"name": name, "account": account}))

    def folders(self, account: str | None = None) -> list[dict]:
        """[{"name", "uidvalidity", "uidnext", "messages"}]."""
        return self._call("GET", "folders", query=_clean({"account": account}))["folders"]

    # -- mail in ------------------------------------------------------------------------------

    def deliver(
        self,
        raw: bytes | None = None,
        *,
        sender: str | None = None,
        to: str | Iterable[str] | None = None,
        cc: str | Iterable[str] | None = None,
        subject: str = "",
        text: str = "",
        html: str | None = None,
        message_id: str | None = None,
        in_reply_to: str | None = None,
        references: str | Iterable[str] | None = None,
        headers: dict | None = None,
        attachments: Iterable[dict] = (),
        date: datetime | None = None,
        account: str | None = None,
        folder: str = "INBOX",
        flags: Iterable[str] = (),
        internaldate: datetime | None = None,
    ) -> dict:
        """Put a message in a folder, as a mail server delivers it (IDLE sessions hear of it at once).

        Either ``raw`` (RFC 5322 bytes, kept as given but for CRLF line ends) or fields: ``sender`` ("Name
        <a@b>"), to, cc, subject, text, html, message_id (made up if missing), in_reply_to, references, headers,
        ``attachments`` [{"filename", "content" (bytes), "content_type"?, "content_id"? (inline)}], ``date``.
        ``account``: the account's user; by default the account the To/Cc names, else the first one.
        ``internaldate`` (time zone aware) backdates the arrival. Returns {"account", "folder", "uid",
        "uidvalidity", "message_id"}."""
        payload: dict = {
            "account": account,
            "folder": folder,
            "flags": list(flags),
            "internaldate": internaldate.isoformat() if internaldate else None,
        }
        if raw is not None:
            payload["raw_base64"] = base64.b64encode(raw).decode()
        else:
            payload.update(
                {
                    "from": sender,
                    "to": to if isinstance(to, str | None) else list(to),
                    "cc": cc if isinstance(cc, str | None) else list(cc),
                    "subject": subject,
                    "text": text,
                    "html": html,
                    "message_id": message_id,
                    "in_reply_to": in_reply_to,
                    "references": references if isinstance(references, str | None) else list(references),
                    "headers": headers,
                    "date": date.isoformat() if date else None,
                    "attachments": [
                        {
                            "filename": item.get("filename"),
                            "content_type": item.get("content_type"),
                            "content_id": item.get("content_id"),
                            "content_base64": base64.b64encode(item["content"]).decode(),
                        }
                        for item in attachments
                    ],
                }
            )
        return self._call("POST", "deliver", _clean(payload))

    def messages(self, folder: str = "INBOX", account: str | None = None) -> list[dict]:
        """A folder's messages in UID order: [{"uid", "flags", "internaldate", "size", "message_id", "subject",
        "raw" (bytes)}]."""
        answer = self._call("GET", "messages", query=_clean({"folder": folder, "account": account}))
        return [_with_raw(item) for item in answer["messages"]]

    def set_uidvalidity(
        self, folder: str = "INBOX", uidvalidity: int | None = None, account: str | None = None
    ) -> dict:
        """A server rebuild: a new UIDVALIDITY (the next one if not given), every message renumbered from UID 1,
        and each session that had the folder selected gets ``BYE``. Returns the folder's new state."""
        payload = {"folder": folder, "uidvalidity": uidvalidity, "account": account}
        return self._call("POST", "uidvalidity", _clean(payload))

    # -- mail out -----------------------------------------------------------------------------

    def sent(self, since_id: int = 0) -> list[dict]:
        """What SMTP accepted (what the desk sent), oldest first: [{"id", "mail_from", "rcpt_to", "auth_user",
        "received_at", "raw" (bytes), "subject", "from"/"to"/"cc"/"reply_to" ([{"name", "email"}]),
        "message_id", "in_reply_to", "references" ([str]), "date", "headers" ([[name, value]]), "text", "html",
        "attachments" ([{"filename", "content_type", "size", "content_id", "content" (bytes)}])}]."""
        return [_with_raw(item) for item in self._call("GET", "sent", query={"since_id": since_id})["messages"]]

    def wait_for_sent(self, count: int = 1, timeout: float = 10.0, since_id: int = 0) -> list[dict]:
        """At least ``count`` sent messages after ``since_id``, waiting up to ``timeout`` seconds for them."""
        deadline = time.monotonic() + timeout
        while True:
            messages = self.sent(since_id)
            if len(messages) >= count or time.monotonic() >= deadline:
                return messages
            time.sleep(0.05)

    def require_smtp_auth(self, required: bool = True) -> dict:
        """Refuse MAIL FROM before AUTH (530) while ``required``."""
        return self._call("POST", "smtp/config", {"require_auth": required})

    def file_sent_mail(self, folder: str | None = "Sent") -> dict:
        """File a copy of what an account sends over SMTP in its ``folder`` (created when needed), as Gmail and
        Microsoft 365 do; ``None``: file nothing (the start-up setting)."""
        return self._call("POST", "smtp/config", {"sent_folder": folder})

    # -- faults -------------------------------------------------------------------------------

    def fail_imap(self, command: str, kind: str = "drop", message: str = "", count: int = 1) -> dict:
        """The next ``count`` IMAP ``command``s ("LOGIN", "SELECT", "UID FETCH", "IDLE", "*" for any, "CONNECT"
        for the greeting) are struck: ``drop`` (closed unanswered, not applied), ``drop_after`` (applied, then
        closed unanswered), ``bye``, ``no``, ``bad`` (``message``: the text after NO/BAD)."""
        payload = {"command": command, "kind": kind, "message": message, "count": count}
        return self._call("POST", "faults/imap", payload)

    def fail_smtp(
        self, stage: str = "DATA", kind: str = "reply", code: int = 451, message: str = "", count: int = 1
    ) -> dict:
        """The next ``count`` SMTP ``stage``s ("CONNECT", "EHLO", "AUTH", "MAIL", "RCPT", "DATA") are struck:
        ``reply`` (answered ``code message``: a 4xx or 5xx, the message is not kept), ``drop`` (closed
        unanswered, not kept), ``drop_after`` (DATA only: kept, then closed unanswered)."""
        payload = {"stage": stage, "kind": kind, "code": code, "message": message, "count": count}
        return self._call("POST", "faults/smtp", payload)

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def disconnect_imap(self) -> int:
        """``* BYE`` and close on every open IMAP connection (a server restart); returns how many."""
        return self._call("POST", "imap/disconnect")["disconnected"]
