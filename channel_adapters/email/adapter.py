"""The email channel: one IMAP mailbox in (polled by UID), replies out as mail through the pipeline's transport.

- **Cursor:** (UIDVALIDITY, last UID) of the mailbox, saved with each page. When the server renumbers the
  mailbox (a new UIDVALIDITY), the poll re-reads it from a day before the last message it stored: everything
  is stored by its Message-ID, so what was stored already is not stored twice and nothing in between is lost.
- **Batches:** UIDs in groups of ``batch_size``, each fetched in slices of at most ``FETCH_BYTES``, so a
  large mailbox (or one huge message) never has to fit in memory at once.
- **After a page is stored:** its messages are marked seen, or moved to ``move_to``, as configured. Never
  before: a poll that dies half-way leaves the rest untouched for the next one.
- **Threading** is the desk's (``Envelope.ticket_number`` from the subject tag, then ``refers_to`` from
  In-Reply-To/References); the adapter only reads them. Never by subject alone.
- **Replies** are one mail each, files included, with a Message-ID derived from the reply's delivery key, so
  ``find_sent`` can look for it in the Sent folder (``sent_folder``) after an unknown outcome.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

from ..base import (
    DEFAULT_IMPORT_DAYS,
    AttachmentLimits,
    Capability,
    ChannelAdapter,
    ConfigError,
    Envelope,
    OutboundFile,
    PermanentError,
    PollPage,
    Rejected,
    ReplyMode,
    ReplyTarget,
    Sent,
)
from .inbound import MailLocation, OwnMail, interpret
from .mailbox import MAIL_TIMEOUT, SECURITY_CHOICES, ImapSettings, ensure_folder, imap_session
from .oauth import RefreshGrant, access_token
from .outgoing import ID_PREFIX, SendsMail, build_reply
from .parsing import EmailParseError, payload_bytes, read_message
from .replies import ALL_LANGUAGES, LANGUAGES, unknown_languages

logger = logging.getLogger(__name__)

DEFAULT_TAG = "[#{number}]"
#: At most this many message bytes are fetched in one IMAP command.
FETCH_BYTES = 20 * 1024 * 1024
CHUNK = 64 * 1024
#: A re-sync after a UIDVALIDITY change re-reads from this long before the last message stored (SEARCH SINCE
#: counts whole days, in the server's time zone).
RESYNC_MARGIN = timedelta(days=1)
AFTER_STORE = ("seen", "move")
#: One IDLE read blocks at most this long, so a wait never outlives its timeout by much.
IDLE_CHECK_SECONDS = 30
DEFAULT_PORTS = {"imap": {"ssl": 993, "starttls": 143, "none": 143}, "smtp": {"ssl": 465, "starttls": 587, "none": 25}}


class EmailAdapter(SendsMail, ChannelAdapter):
    kind = "email"
    capabilities = frozenset({Capability.POLL, Capability.REPLY})
    secret_fields = ("password", "smtp_password", "access_token", "refresh_token", "client_secret")
    max_reply_length = 100_000
    files_with_text = True

    # --- configuration --------------------------------------------------------------------------------

    @classmethod
    def split_config(cls, raw: Mapping) -> tuple[dict, dict]:
        config, secrets = super().split_config(raw)
        address = config.get("address")
        if not isinstance(address, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
            raise ConfigError("address must be the mailbox's email address (help@example.com).")
        config["address"] = address.lower()
        for key in ("imap_host", "username"):
            if not isinstance(config.get(key), str) or not config[key].strip():
                raise ConfigError(f"{key} is required.")
        for prefix in ("imap", "smtp"):
            security = config.setdefault(f"{prefix}_security", "ssl" if prefix == "imap" else "starttls")
            if security not in SECURITY_CHOICES:
                raise ConfigError(f"{prefix}_security must be one of {', '.join(SECURITY_CHOICES)}.")
            port = config.setdefault(f"{prefix}_port", DEFAULT_PORTS[prefix][security])
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise ConfigError(f"{prefix}_port must be a port number.")
        config.setdefault("smtp_host", config["imap_host"])
        config.setdefault("mailbox", "INBOX")
        after_store = config.setdefault("after_store", "seen")
        if after_store not in AFTER_STORE:
            raise ConfigError(f"after_store must be one of {', '.join(AFTER_STORE)}.")
        if after_store == "move" and not str(config.get("move_to", "")).strip():
            raise ConfigError("after_store 'move' needs move_to, the folder processed mail goes to.")
        batch = config.setdefault("batch_size", 100)
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 1000:
            raise ConfigError("batch_size must be a whole number from 1 to 1000.")
        template = config.setdefault("tag_template", DEFAULT_TAG)
        if not isinstance(template, str) or template.count("{number}") != 1 or len(template) > 40:
            raise ConfigError("tag_template must contain {number} once, e.g. [#{number}] or [IT-{number}].")
        auth = config.setdefault("auth", "password")
        if auth == "password":
            if not secrets.get("password"):
                raise ConfigError("password is required (or auth 'oauth2' with a token).")
        elif auth == "oauth2":
            if not secrets.get("access_token") and not (
                secrets.get("refresh_token") and config.get("oauth_token_url") and config.get("oauth_client_id")
            ):
                raise ConfigError(
                    "auth 'oauth2' needs access_token, or refresh_token with oauth_token_url and oauth_client_id."
                )
        else:
            raise ConfigError("auth must be 'password' or 'oauth2'.")
        timeout = config.get("timeout", MAIL_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError("timeout must be a positive number of seconds.")
        if not isinstance(config.setdefault("idle", False), bool):
            raise ConfigError("idle must be true or false.")
        size = config.setdefault("max_attachment_mb", 20)
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 150:
            raise ConfigError("max_attachment_mb must be a whole number of megabytes from 1 to 150.")
        languages = config.setdefault("reply_languages", list(LANGUAGES))
        if not isinstance(languages, list) or not languages or unknown_languages(languages):
            raise ConfigError(f"reply_languages must be a list of some of: {', '.join(ALL_LANGUAGES)}.")
        aliases = config.setdefault("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(item, str) and "@" in item for item in aliases):
            raise ConfigError("aliases must be a list of the mailbox's other addresses.")
        config["aliases"] = [item.lower() for item in aliases]
        return config, secrets

    @classmethod
    def polling_limits(cls, config: Mapping) -> str:
        if config.get("after_store") == "move":
            return f"Processed mail is moved to {config.get('move_to')}; mail read there is not seen again."
        return ""

    # --- sessions -------------------------------------------------------------------------------------

    def _settings(self, mailbox: str | None = None) -> ImapSettings:
        return ImapSettings(
            host=self.config["imap_host"],
            port=self.config["imap_port"],
            security=self.config["imap_security"],
            username=self.config["username"],
            mailbox=mailbox or self.config.get("mailbox", "INBOX"),
            timeout=self.config.get("timeout", MAIL_TIMEOUT),
        )

    def _grant(self) -> RefreshGrant | None:
        if not self.secrets.get("refresh_token"):
            return None
        return RefreshGrant(
            token_url=self.config["oauth_token_url"],
            client_id=self.config["oauth_client_id"],
            refresh_token=self.secrets["refresh_token"],
            client_secret=self.secrets.get("client_secret", ""),
            scope=self.config.get("oauth_scope", ""),
        )

    def bearer_token(self, *, renew: bool = False) -> str:
        """The XOAUTH2 token for IMAP and SMTP: refreshed from the refresh token where there is one (``renew``:
        a new one, after the server refused the one held)."""
        grant = self._grant()
        return access_token(grant, renew=renew) if grant else self.secrets["access_token"]

    def smtp_settings(self) -> dict:
        oauth = self.config.get("auth") == "oauth2"
        return {
            "backend": self.config.get("email_backend", ""),
            "host": self.config["smtp_host"],
            "port": self.config["smtp_port"],
            "security": self.config["smtp_security"],
            "username": self.config.get("smtp_username") or self.config["username"],
            "password": "" if oauth else self.secrets.get("smtp_password") or self.secrets.get("password", ""),
            "token": self.bearer_token() if oauth else "",
            "timeout": self.config.get("timeout", MAIL_TIMEOUT),
        }

    def _session(self, mailbox: str | None = None):
        if self.config.get("auth") == "oauth2":
            return imap_session(self._settings(mailbox), token=self.bearer_token)
        return imap_session(self._settings(mailbox), password=self.secrets["password"])

    @property
    def own(self) -> OwnMail:
        address = self.config["address"]
        return OwnMail(
            addresses=frozenset([address, *self.config.get("aliases", ())]), id_suffix="@" + address.split("@")[1]
        )

    @property
    def finds_sent(self) -> bool:  # type: ignore[override]
        return bool(self.config.get("sent_folder"))

    # --- credentials ----------------------------------------------------------------------------------

    def check_credentials(self) -> dict:
        state = self._check_mailbox()
        if self.mail_transport is not None:
            self.mail_transport.check()
        return state

    def _check_mailbox(self) -> dict:
        with self._session() as client:
            status = client.select_folder(self.config.get("mailbox", "INBOX"), readonly=True)
            if self.config.get("after_store") == "move":
                ensure_folder(client, self.config["move_to"])
            capabilities = sorted(item.decode() for item in client.capabilities())
        return {
            "address": self.config["address"],
            "uidvalidity": int(status[b"UIDVALIDITY"]),
            "idle": "IDLE" in capabilities,
            "move": "MOVE" in capabilities,
        }

    # --- polling --------------------------------------------------------------------------------------

    def poll(self, cursor: Mapping) -> Iterator[PollPage]:
        mailbox = self.config.get("mailbox", "INBOX")
        with self._session() as client:
            status = client.select_folder(mailbox)
            uidvalidity = int(status[b"UIDVALIDITY"])
            uidnext = int(status.get(b"UIDNEXT", 0) or 0)
            uids, start = self._uids_to_read(client, cursor, uidvalidity, uidnext)
            self._move_leftovers(client, cursor, uidvalidity)
            last_arrived = cursor.get("last_arrived", "") if cursor.get("uidvalidity") == uidvalidity else ""
            page_cursor = {"uidvalidity": uidvalidity, "uid": start, "last_arrived": last_arrived}
            batch_size = self.config.get("batch_size", 100)
            for offset in range(0, len(uids), batch_size):
                for envelopes, rejected, read, arrived in self._read(
                    client, mailbox, uidvalidity, uids[offset : offset + batch_size]
                ):
                    page_cursor = {
                        "uidvalidity": uidvalidity,
                        "uid": max(read[-1], page_cursor["uid"]),
                        "last_arrived": max(arrived, page_cursor["last_arrived"]),
                    }
                    yield PollPage(envelopes=envelopes, cursor=dict(page_cursor), rejected=rejected)
                    self._after_store(client, read)
            if page_cursor != dict(cursor):
                yield PollPage(envelopes=[], cursor=page_cursor)

    def _uids_to_read(self, client, cursor, uidvalidity, uidnext) -> tuple[list[int], int]:
        """The UIDs a poll reads, oldest first, and the UID the cursor starts from."""
        if cursor.get("uidvalidity") == uidvalidity and "uid" in cursor:
            last = int(cursor["uid"])
            # "n:*" always matches the newest message, even when its UID is below n.
            return sorted(uid for uid in client.search(["UID", f"{last + 1}:*"]) if uid > last), last
        if cursor.get("uidvalidity"):
            since = _since(cursor.get("last_arrived"), fallback_days=DEFAULT_IMPORT_DAYS) - RESYNC_MARGIN
            logger.warning(
                "%s: UIDVALIDITY changed from %s to %s; re-reading since %s (stored mail is not stored twice)",
                self.config["address"],
                cursor.get("uidvalidity"),
                uidvalidity,
                since.date(),
            )
            return sorted(client.search(["SINCE", since.date()])), 0
        days = self.config.get("import_days", DEFAULT_IMPORT_DAYS)
        if not days:
            return [], max(uidnext - 1, 0)
        since = datetime.now(UTC) - timedelta(days=days)
        return sorted(client.search(["SINCE", since.date()])), 0

    def _read(self, client, mailbox, uidvalidity, uids):
        """(envelopes, rejected, the UIDs read, latest arrival in UTC) per slice of at most FETCH_BYTES."""
        sizes = client.fetch(uids, ["RFC822.SIZE"])
        slices, current, weight = [], [], 0
        for uid in uids:
            size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
            if current and weight + size > FETCH_BYTES:
                slices.append(current)
                current, weight = [], 0
            current.append(uid)
            weight += size
        if current:
            slices.append(current)
        own, pattern = self.own, tag_pattern(self.config.get("tag_template", DEFAULT_TAG))
        languages = tuple(self.config.get("reply_languages") or LANGUAGES)
        for part in slices:
            fetched = client.fetch(part, ["BODY.PEEK[]", "INTERNALDATE"])
            envelopes: list[Envelope] = []
            rejected: list[Rejected] = []
            arrived_latest = ""
            for uid in part:
                data = fetched.get(uid)
                if not data or b"BODY[]" not in data:
                    continue  # expunged meanwhile
                arrived = _aware(data.get(b"INTERNALDATE"))
                if arrived is not None:  # compared as text: in one zone
                    arrived_latest = max(arrived_latest, arrived.astimezone(UTC).isoformat())
                item = interpret(
                    bytes(data[b"BODY[]"]),
                    location=MailLocation(mailbox=mailbox, uidvalidity=uidvalidity, uid=uid),
                    own=own,
                    tag_pattern=pattern,
                    arrived_at=arrived,
                    languages=languages,
                )
                if isinstance(item, Envelope):
                    envelopes.append(item)
                elif isinstance(item, Rejected):
                    rejected.append(item)
            yield envelopes, rejected, part, arrived_latest

    def _move_leftovers(self, client, cursor, uidvalidity) -> None:
        """Mail the cursor has passed but still in the mailbox (a poll stopped between storing a page and moving
        it) is moved now, so the mailbox does not keep what the desk already holds."""
        if self.config.get("after_store") != "move":
            return
        ensure_folder(client, self.config["move_to"])  # the setting may have changed since the channel was added
        if cursor.get("uidvalidity") != uidvalidity:
            return
        last = int(cursor.get("uid") or 0)
        if last:
            self._after_store(client, [uid for uid in client.search(["UID", f"1:{last}"]) if uid <= last])

    def _after_store(self, client, uids: list[int]) -> None:
        if not uids:
            return
        if self.config.get("after_store") == "move":
            if client.has_capability("MOVE"):
                client.move(uids, self.config["move_to"])
            else:
                client.copy(uids, self.config["move_to"])
                client.delete_messages(uids)
                client.uid_expunge(uids) if client.has_capability("UIDPLUS") else client.expunge()
        else:
            client.add_flags(uids, [b"\\Seen"], silent=True)

    def wait_for_mail(self, timeout: float) -> bool:
        """Wait on the mailbox with IMAP IDLE until the server announces new mail (True) or ``timeout`` seconds
        pass (False). Raises ``PermanentError`` when the server has no IDLE (the channel is then only polled)."""
        deadline = time.monotonic() + timeout
        with self._session() as client:
            client.select_folder(self.config.get("mailbox", "INBOX"), readonly=True)
            if not client.has_capability("IDLE"):
                raise PermanentError("The IMAP server does not offer IDLE; mail arrives at the next poll instead.")
            client.idle()
            try:
                while (remaining := deadline - time.monotonic()) > 0:
                    for response in client.idle_check(timeout=min(remaining, IDLE_CHECK_SECONDS)):
                        if len(response) > 1 and response[1] in (b"EXISTS", b"RECENT"):
                            return True
            finally:
                client.idle_done()
        return False

    # --- files ----------------------------------------------------------------------------------------

    def fetch_attachment(self, ref: str) -> Iterator[bytes]:
        try:
            where = json.loads(ref)
            mailbox, uid, part = where["mailbox"], int(where["uid"]), str(where["part"])
        except (ValueError, KeyError, TypeError):
            raise PermanentError("This file's reference is not one the email channel made.") from None
        raw = self._find_raw(mailbox, int(where.get("uidvalidity", 0)), uid, where.get("message_id", ""))
        if part:
            try:
                data = payload_bytes(read_message(raw), part)
            except (KeyError, EmailParseError):
                raise PermanentError(f"Part {part} is no longer in the message.") from None
        else:
            data = raw
        for offset in range(0, len(data), CHUNK):
            yield data[offset : offset + CHUNK]

    def _find_raw(self, mailbox: str, uidvalidity: int, uid: int, message_id: str) -> bytes:
        """The message's bytes: where it was read, or (moved, or the mailbox renumbered) found by Message-ID."""
        folders = [mailbox]
        if self.config.get("after_store") == "move":
            folders.append(self.config["move_to"])
        with self._session(mailbox) as client:
            for folder in folders:
                status = client.select_folder(folder, readonly=True)
                candidates = []
                if folder == mailbox and int(status[b"UIDVALIDITY"]) == uidvalidity:
                    candidates.append(uid)
                if message_id:
                    candidates += client.search(["HEADER", "Message-ID", f"<{message_id}>"])
                for candidate in candidates:
                    raw = client.fetch([candidate], ["BODY.PEEK[]"]).get(candidate, {}).get(b"BODY[]")
                    if raw and (not message_id or f"<{message_id}>".encode() in bytes(raw)[:65536]):
                        return bytes(raw)
        raise PermanentError("The message is no longer in the mailbox (deleted or moved elsewhere).")

    # --- replies --------------------------------------------------------------------------------------

    def _limits(self) -> AttachmentLimits:
        return AttachmentLimits(max_files=10, max_bytes=self.config.get("max_attachment_mb", 20) * 1024 * 1024)

    def reply_modes(self, target: ReplyTarget) -> list[ReplyMode]:
        limits = self._limits()
        if not target.followers:
            return [ReplyMode(key="", label="Reply", max_length=self.max_reply_length, attachments=limits)]
        return [
            ReplyMode(key="", label="Reply all", max_length=self.max_reply_length, attachments=limits),
            ReplyMode(key="sender", label="Reply to sender only", max_length=self.max_reply_length, attachments=limits),
        ]

    def message_id_for(self, key: str) -> str:
        return f"{ID_PREFIX}{key}@{self.config['address'].split('@')[1]}"

    def send(self, *, target: ReplyTarget, text: str, key: str, files: tuple[OutboundFile, ...] = ()) -> Sent:
        if self.mail_transport is None:
            raise PermanentError("No mail transport is configured for this channel.")
        mail = build_reply(
            target=target,
            text=text,
            message_id=self.message_id_for(key),
            address=self.config["address"],
            desk_name=self.config.get("desk_name") or "Help desk",
            tag_template=self.config.get("tag_template", DEFAULT_TAG),
            copy_followers=target.mode != "sender",
            files=files,
        )
        self.mail_transport.send(mail)
        return Sent(external_id=mail.message_id)

    def find_sent(self, *, target: ReplyTarget, text: str, key: str, since: datetime) -> Sent | None:
        if not self.finds_sent:
            return super().find_sent(target=target, text=text, key=key, since=since)
        message_id = self.message_id_for(key)
        folder = self.config["sent_folder"]
        with self._session(folder) as client:
            client.select_folder(folder, readonly=True)
            found = client.search(["HEADER", "Message-ID", f"<{message_id}>"])
        return Sent(external_id=message_id) if found else None


def tag_pattern(template: str) -> str:
    """The regular expression that finds ``template``'s tag ([#{number}] → \\[\\#(\\d{1,12})\\])."""
    before, after = template.split("{number}")
    return re.escape(before) + r"(\d{1,12})" + re.escape(after)


def _since(value, *, fallback_days: int) -> datetime:
    try:
        moment = datetime.fromisoformat(value) if value else None
    except ValueError:
        moment = None
    return moment or datetime.now(UTC) - timedelta(days=fallback_days)


def _aware(moment) -> datetime | None:
    if not isinstance(moment, datetime):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
