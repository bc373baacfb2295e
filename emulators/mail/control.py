"""The control API (``/_emulator/...``): accounts, delivering mail, reading what the desk sent, UIDVALIDITY,
faults. Bytes travel as base64 (``raw_base64``, ``content_base64``)."""

import base64
from datetime import datetime

from ..common import ControlError, ControlRoutes, required_field
from .faults import Faults
from .messages import compose, describe
from .store import Folder, MailError, Message, Store


class ControlApi(ControlRoutes):
    platform_errors = (MailError,)

    def __init__(self, store: Store, faults: Faults, info: dict, disconnect, reset):
        super().__init__(reset)
        self.store = store
        self.faults = faults
        self.info = info
        self.disconnect = disconnect
        self._routes.update(
            {
                ("POST", "reset"): self.reset,
                ("GET", "info"): lambda payload: self.info,
                ("GET", "stats"): self.stats,
                ("POST", "accounts"): self.add_account,
                ("GET", "accounts"): self.accounts,
                ("POST", "folders"): self.create_folder,
                ("GET", "folders"): self.folders,
                ("POST", "deliver"): self.deliver,
                ("GET", "messages"): self.messages,
                ("POST", "uidvalidity"): self.set_uidvalidity,
                ("GET", "sent"): self.sent,
                ("POST", "smtp/config"): self.smtp_config,
                ("POST", "faults/imap"): self.fault_imap,
                ("POST", "faults/smtp"): self.fault_smtp,
                ("DELETE", "faults"): self.clear_faults,
                ("POST", "imap/disconnect"): lambda payload: {"disconnected": self.disconnect()},
            }
        )

    def platform_error(self, exc: Exception) -> tuple[int, dict]:
        return getattr(exc, "status", 400), {"error": str(exc)}

    def stats(self, payload: dict) -> dict:
        with self.store.lock:
            return {
                "accounts": len(self.store.accounts),
                "messages": sum(len(f.messages) for a in self.store.accounts.values() for f in a.folders.values()),
                "sent": len(self.store.received),
            }

    def add_account(self, payload: dict) -> dict:
        user = required_field(payload, "user")
        with self.store.lock:
            existing = self.store.accounts.get(user)
            account = self.store.add_account(
                user,
                payload.get("password") or (existing.password if existing else f"{user}-password"),
                payload.get("token") or (existing.token if existing else f"{user}-token"),
                payload.get("address"),
            )
            return _account(account)

    def accounts(self, payload: dict) -> dict:
        with self.store.lock:
            return {"accounts": [_account(account) for account in self.store.accounts.values()]}

    def create_folder(self, payload: dict) -> dict:
        name = required_field(payload, "name")
        with self.store.lock:
            account = self.store.account(payload.get("account"))
            if account.folder(name) is not None:
                raise ControlError(f"folder {name} exists", 409)
            folder = self.store.folder(account.user, name, create=True)
            self.store.changed()
            return _folder(folder)

    def folders(self, payload: dict) -> dict:
        with self.store.lock:
            account = self.store.account(payload.get("account"))
            return {"folders": [_folder(folder) for folder in account.folders.values()]}

    def deliver(self, payload: dict) -> dict:
        raw = base64.b64decode(payload["raw_base64"]) if payload.get("raw_base64") else compose(payload)
        internaldate = datetime.fromisoformat(payload["internaldate"]) if payload.get("internaldate") else None
        if internaldate is not None and internaldate.tzinfo is None:
            raise ControlError("internaldate needs a time zone")
        flags = payload.get("flags") or []
        with self.store.lock:
            user = payload.get("account")
            if user is None:
                user = self._account_for_recipients(raw)
            account, folder, message = self.store.deliver(
                user, payload.get("folder") or "INBOX", raw, flags, internaldate
            )
            return {
                "account": account.user,
                "folder": folder.name,
                "uid": message.uid,
                "uidvalidity": folder.uidvalidity,
                "message_id": message.header("Message-ID").strip(),
            }

    def _account_for_recipients(self, raw: bytes) -> str | None:
        """Without ``account``: the account one of To/Cc names, or else the first."""
        info = describe(raw)
        for address in info["to"] + info["cc"]:
            account = self.store.account_for_address(address["email"])
            if account is not None:
                return account.user
        return None

    def messages(self, payload: dict) -> dict:
        with self.store.lock:
            folder = self.store.folder(payload.get("account"), payload.get("folder") or "INBOX")
            return {"uidvalidity": folder.uidvalidity, "messages": [_message(m) for m in folder.messages]}

    def set_uidvalidity(self, payload: dict) -> dict:
        value = payload.get("uidvalidity")
        if value is not None and (not isinstance(value, int) or not 0 < value < 2**32):
            raise ControlError("uidvalidity must be a positive 32-bit number")
        with self.store.lock:
            folder = self.store.set_uidvalidity(payload.get("account"), payload.get("folder") or "INBOX", value)
            return _folder(folder)

    def sent(self, payload: dict) -> dict:
        since_id = int(payload.get("since_id", 0))
        with self.store.lock:
            received = [item for item in self.store.received if item.id > since_id]
        return {
            "messages": [
                {
                    "id": item.id,
                    "mail_from": item.mail_from,
                    "rcpt_to": item.rcpt_to,
                    "auth_user": item.auth_user,
                    "received_at": item.received_at.isoformat(),
                    "raw_base64": base64.b64encode(item.raw).decode(),
                    **describe(item.raw),
                }
                for item in received
            ]
        }

    def smtp_config(self, payload: dict) -> dict:
        with self.store.lock:
            if "require_auth" in payload:
                self.store.require_smtp_auth = bool(payload["require_auth"])
            if "sent_folder" in payload:
                self.store.sent_folder = str(payload["sent_folder"] or "") or None
            return {"require_auth": self.store.require_smtp_auth, "sent_folder": self.store.sent_folder}

    def fault_imap(self, payload: dict) -> dict:
        command = required_field(payload, "command")
        kind = payload.get("kind", "drop")
        self.faults.arm_imap(command, kind, payload.get("message", ""), int(payload.get("count", 1)))
        return {"command": command.upper(), "kind": kind}

    def fault_smtp(self, payload: dict) -> dict:
        stage = payload.get("stage", "DATA")
        kind = payload.get("kind", "reply")
        code = int(payload.get("code", 451))
        self.faults.arm_smtp(stage, kind, code, payload.get("message", ""), int(payload.get("count", 1)))
        return {"stage": stage.upper(), "kind": kind, "code": code}

    def clear_faults(self, payload: dict) -> dict:
        self.faults.clear()
        return {}


def _account(account) -> dict:
    return {
        "user": account.user,
        "password": account.password,
        "token": account.token,
        "address": account.address,
        "folders": list(account.folders),
    }


def _folder(folder: Folder) -> dict:
    return {
        "name": folder.name,
        "uidvalidity": folder.uidvalidity,
        "uidnext": folder.uidnext,
        "messages": len(folder.messages),
    }


def _message(message: Message) -> dict:
    return {
        "uid": message.uid,
        "flags": sorted(message.flags),
        "internaldate": message.internaldate.isoformat(),
        "size": len(message.raw),
        "message_id": message.header("Message-ID").strip(),
        "subject": message.header("Subject"),
        "raw_base64": base64.b64encode(message.raw).decode(),
    }
