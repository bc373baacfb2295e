"""Local mail server emulator: IMAP4rev1 (for the desk to read a mailbox), SMTP (for it to send) and a JSON control
API for tests and the demo, all in memory, on loopback. For ``make run``, where there is no Dovecot.

    from emulators.mail import MailEmulator
    emu = MailEmulator().start()                       # ports 0: IMAP, SMTP and HTTP each pick a free one
    emu.deliver(sender="Ann <ann@example.com>", to="it-help@example.com", subject="VPN down", text="Since 9am")
    imapclient.IMAPClient(emu.imap_host, port=emu.imap_port, ssl=False).login("it-help@example.com",
                                                                           "emulator-password")
    smtplib.SMTP(emu.smtp_host, emu.smtp_port).send_message(reply)      # then emu.sent()

    python -m emulators.mail --imap-port 8143 --smtp-port 8025 --http-port 8771   # the same, in the foreground

Client API (``MailEmulatorClient(url)``; ``MailEmulator`` is one too). Stable: tests and the demo use it.

    reset() -> None                                   start-up account(s) with an empty INBOX, nothing sent, no
                                                      faults, SMTP AUTH optional; open IMAP connections closed
    info() -> {"imap": {"host", "port"}, "smtp": {"host", "port"}}; stats() -> {"accounts", "messages", "sent"}
    add_account(user, password=None, token=None, address=None) -> dict     (also changes an account's secrets)
    accounts() -> list[dict]; create_folder(name, account=None); folders(account=None) -> [{"name",
        "uidvalidity", "uidnext", "messages"}]
    deliver(raw=None, *, sender, to, cc, subject, text, html, message_id, in_reply_to, references, headers,
            attachments=[{"filename", "content", "content_type"?, "content_id"?}], date, account=None,
            folder="INBOX", flags=(), internaldate=None) -> {"account", "folder", "uid", "uidvalidity", "message_id"}
    messages(folder="INBOX", account=None) -> [{"uid", "flags", "internaldate", "size", "message_id", "subject",
                                                "raw"}]
    set_uidvalidity(folder="INBOX", uidvalidity=None, account=None) -> dict   (renumbers UIDs from 1)
    sent(since_id=0) -> [{"id", "mail_from", "rcpt_to", "auth_user", "received_at", "raw", "subject", "from",
                          "to", "cc", "reply_to", "message_id", "in_reply_to", "references", "date", "headers",
                          "text", "html", "attachments"}];  wait_for_sent(count=1, timeout=10.0, since_id=0)
    require_smtp_auth(required=True); file_sent_mail(folder="Sent")   (file what an account sends in its folder, as
                                                      Gmail and Microsoft 365 do; None: nowhere, the start-up setting)
    fail_imap(command, kind="drop"|"drop_after"|"bye"|"no"|"bad", message="", count=1)
    fail_smtp(stage="DATA", kind="reply"|"drop"|"drop_after", code=451, message="", count=1); clear_faults()
    disconnect_imap() -> int
    start_storm(...), stop_storm(), storm_stats()     (emulators.common; what each kind does: emulators.mail.storms)

Simulated employees who write in and answer the desk's replies: ``emulators.mail.employees.Employees``.

Control routes (``/_emulator/``): POST reset, accounts, folders, deliver, uidvalidity, smtp/config, faults/imap,
faults/smtp, imap/disconnect, storm; GET info, stats, accounts, folders, messages, sent, storm; DELETE faults,
storm.

IMAP: CAPABILITY, NOOP, LOGOUT, LOGIN, AUTHENTICATE PLAIN and XOAUTH2 (with or without an initial response),
SELECT, EXAMINE, CREATE, DELETE, LIST, LSUB, (UN)SUBSCRIBE, STATUS, APPEND (flags, date; synchronizing and
LITERAL+ literals), IDLE, CHECK, CLOSE, UNSELECT, EXPUNGE, [UID] SEARCH, FETCH, STORE, COPY, MOVE, UID EXPUNGE.
FETCH serves UID, FLAGS, INTERNALDATE, RFC822.SIZE, RFC822(.HEADER/.TEXT), BODY[] and BODY.PEEK[] with HEADER,
TEXT, HEADER.FIELDS (.NOT) sections and partials; SEARCH the RFC 3501 keys but for part-specific ones.

SMTP: EHLO/HELO, AUTH PLAIN and LOGIN (the password, or the token), MAIL, RCPT, DATA, RSET, NOOP, VRFY, QUIT.
Mail to one of the emulator's own accounts is also delivered to its INBOX.

Simplifications against a real server:
- no TLS (STARTTLS or implicit); no BODYSTRUCTURE, ENVELOPE or numbered body parts in FETCH, no RENAME, no
  NAMESPACE, ID, ENABLE, CONDSTORE or QRESYNC; subscriptions are not kept (LSUB lists every folder);
- a flag change by one session is not pushed to the other sessions (they see it on their next FETCH);
- \\Recent goes to the first read-write session that sees a message;
- SEARCH HEADER/SUBJECT/FROM... match the header as written (encoded words are not decoded), case-insensitively;
- SMTP takes every recipient; nothing is relayed; a message is kept with CRLF line ends.
"""

from .client import EmulatorControlError, MailEmulatorClient
from .server import MailEmulator
from .store import DEFAULT_PASSWORD, DEFAULT_TOKEN, DEFAULT_USER

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_TOKEN",
    "DEFAULT_USER",
    "EmulatorControlError",
    "MailEmulator",
    "MailEmulatorClient",
]
