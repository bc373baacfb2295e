"""The mail emulator, driven by the clients the desk uses: imapclient for IMAP and smtplib for SMTP (as Django's
SMTP backend does), plus a raw socket where the exact bytes on the wire (RFC 3501 formats, literals) matter."""

import random
import smtplib
import socket
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from emulators.mail import DEFAULT_PASSWORD, DEFAULT_TOKEN, DEFAULT_USER, EmulatorControlError, MailEmulatorClient
from emulators.mail.employees import Employees

REPO_ROOT = Path(__file__).resolve().parents[2]
EIGHT_BIT = "From: Zoë <zoe@example.com>\r\nTo: it-help@example.com\r\nSubject: caf\xe9\r\nMessage-ID: <latin@x>\r\n"
EIGHT_BIT_RAW = EIGHT_BIT.encode("latin-1") + b"\r\nR\xe9sum\xe9 attached, na\xefve bytes \xff\r\n"


def imap(emulator, login: bool = True) -> IMAPClient:
    client = IMAPClient(emulator.imap_host, port=emulator.imap_port, ssl=False, timeout=10)
    if login:
        client.login(DEFAULT_USER, DEFAULT_PASSWORD)
    return client


def smtp(emulator) -> smtplib.SMTP:
    return smtplib.SMTP(emulator.smtp_host, emulator.smtp_port, timeout=10)


class RawImap:
    """A bare IMAP connection: send lines, read what the server answers, byte for byte."""

    def __init__(self, emulator):
        self.sock = socket.create_connection((emulator.imap_host, emulator.imap_port), timeout=5)
        self.file = self.sock.makefile("rb")
        self.greeting = self.file.readline()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def until(self, tag: bytes) -> list[bytes]:
        """Every line up to and including the tagged one (literals are left inline)."""
        lines = []
        while True:
            line = self.file.readline()
            assert line, "connection closed"
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def reply(text: str, to: str = "ann@example.com", **headers) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"IT Help <{DEFAULT_USER}>"
    message["To"] = to
    message["Subject"] = headers.pop("subject", "Re: [#12] VPN down")
    message["Message-ID"] = headers.pop("message_id", "<desk-1@helpdesk.example>")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message


# -- IMAP: reading a mailbox ---------------------------------------------------------------------------------------


def test_select_reports_the_folder_as_rfc_3501_says(mail_emulator):
    mail_emulator.deliver(sender="ann@example.com", subject="one", text="1")
    mail_emulator.deliver(sender="bo@example.com", subject="two", text="2", flags=["\\Seen"])
    with imap(mail_emulator) as client:
        state = client.select_folder("INBOX")
    assert state[b"EXISTS"] == 2
    assert state[b"RECENT"] == 2
    assert state[b"UIDVALIDITY"] == mail_emulator.folders()[0]["uidvalidity"]
    assert state[b"UIDNEXT"] == 3
    assert state[b"UNSEEN"] == [b"1"]
    assert b"\\Seen" in state[b"FLAGS"]
    assert state[b"READ-WRITE"]


def test_search_by_uid_range_date_and_message_id(mail_emulator):
    march = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    for day, message_id in ((1, "<a@x>"), (5, "<b@x>"), (9, "<c@x>")):
        mail_emulator.deliver(
            sender="ann@example.com",
            subject=f"day {day}",
            text=f"Grüße vom {day}.",
            message_id=message_id,
            internaldate=march.replace(day=day),
        )
    with imap(mail_emulator) as client:
        client.select_folder("INBOX", readonly=True)
        assert client.search("ALL") == [1, 2, 3]
        assert client.search(["UID", "2:*"]) == [2, 3]
        assert client.search(["UID", "7:*"]) == [3], "n:* takes the last message even when n is past it"
        assert client.search(["SINCE", date(2026, 3, 5)]) == [2, 3]
        assert client.search(["BEFORE", date(2026, 3, 5)]) == [1]
        assert client.search(["HEADER", "Message-ID", "<b@x>"]) == [2]
        assert client.search(["UID", "2:*", "SINCE", date(2026, 3, 9)]) == [3]
        assert client.search(["OR", "SUBJECT", "day 1", "SUBJECT", "day 9"]) == [1, 3]
        assert client.search(["NOT", "UID", "1"]) == [2, 3]
        assert client.search(["UNSEEN", "SUBJECT", "day"]) == [1, 2, 3]
        assert client.search(["BODY", "GRÜSSE VOM 9"], charset="UTF-8") == []
        assert client.search(["BODY", "grüße vom 9"], charset="UTF-8") == [3]  # CHARSET UTF-8 and a literal
        assert client.search("2:3") == [2, 3]


def test_fetch_serves_bytes_flags_dates_and_header_fields(mail_emulator):
    arrived = datetime(2026, 3, 2, 10, 15, 30, tzinfo=timezone(timedelta(hours=2)))
    uid = mail_emulator.deliver(EIGHT_BIT_RAW, internaldate=arrived)["uid"]
    with imap(mail_emulator) as client:
        client.normalise_times = False
        client.select_folder("INBOX")
        data = client.fetch(
            [uid],
            ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT)]", "BODY.PEEK[]"],
        )[uid]
        assert data[b"BODY[]"] == EIGHT_BIT_RAW
        assert data[b"RFC822.SIZE"] == len(EIGHT_BIT_RAW)
        assert data[b"BODY[HEADER.FIELDS (MESSAGE-ID SUBJECT)]"] == b"Subject: caf\xe9\r\nMessage-ID: <latin@x>\r\n\r\n"
        assert data[b"INTERNALDATE"] == arrived
        assert data[b"FLAGS"] == (b"\\Recent",), "PEEK leaves \\Seen alone"
        assert client.fetch([uid], ["RFC822"])[uid][b"RFC822"] == EIGHT_BIT_RAW
        assert b"\\Seen" in client.get_flags([uid])[uid], "a body fetch without PEEK marks the message read"
        text = client.fetch([uid], ["BODY.PEEK[TEXT]<0.6>"])[uid][b"BODY[TEXT]<0>"]
        assert text == b"R\xe9sum\xe9"


def test_line_ends_become_crlf(mail_emulator):
    uid = mail_emulator.deliver(b"Subject: lf\n\nfirst\nsecond\n")["uid"]
    with imap(mail_emulator) as client:
        client.select_folder("INBOX")
        assert client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"] == b"Subject: lf\r\n\r\nfirst\r\nsecond\r\n"


def test_store_adds_and_removes_flags(mail_emulator):
    uids = [mail_emulator.deliver(sender="ann@example.com", subject=str(n))["uid"] for n in range(3)]
    with imap(mail_emulator) as client:
        client.select_folder("INBOX")
        seen_and_recent = (b"\\Recent", b"\\Seen")
        assert client.add_flags(uids[:2], [b"\\Seen"]) == {uids[0]: seen_and_recent, uids[1]: seen_and_recent}
        client.remove_flags([uids[0]], [b"\\Seen"])
        assert client.search("UNSEEN") == [uids[0], uids[2]]
        assert client.search("SEEN") == [uids[1]]
    assert mail_emulator.messages()[1]["flags"] == ["\\Seen"]


def test_copy_and_move_answer_copyuid(mail_emulator):
    uids = [mail_emulator.deliver(sender="ann@example.com", subject=str(n))["uid"] for n in range(3)]
    with imap(mail_emulator) as client:
        client.create_folder("Archive")
        client.select_folder("INBOX")
        archive = client.folder_status("Archive", ["UIDVALIDITY"])[b"UIDVALIDITY"]
        client.copy([uids[0]], "Archive")
        assert client.folder_status("Archive", ["UIDVALIDITY", "UIDNEXT"]) == {b"UIDVALIDITY": archive, b"UIDNEXT": 2}
        client.move(uids[1:], "Archive")
        assert client.search("ALL") == [uids[0]]
        assert client.folder_status("Archive", ["MESSAGES"])[b"MESSAGES"] == 3
        with pytest.raises(IMAPClientError, match="TRYCREATE"):
            client.copy([uids[0]], "Nowhere")
    assert [m["subject"] for m in mail_emulator.messages("Archive")] == ["0", "1", "2"]


def test_move_sends_copyuid_then_expunge_on_the_wire(mail_emulator):
    for n in range(3):
        mail_emulator.deliver(sender="ann@example.com", subject=str(n))
    mail_emulator.create_folder("Done")
    done = mail_emulator.folders()[1]["uidvalidity"]
    raw = RawImap(mail_emulator)
    try:
        raw.send(f"a LOGIN {DEFAULT_USER} {DEFAULT_PASSWORD}\r\n".encode())
        assert raw.until(b"a")[-1].startswith(b"a OK")
        raw.send(b'b SELECT "INBOX"\r\n')
        raw.until(b"b")
        raw.send(b"m UID COPY 1 Done\r\n")
        assert raw.until(b"m") == [f"m OK [COPYUID {done} 1 1] COPY completed\r\n".encode()]
        raw.send(b"c UID MOVE 2:3 Done\r\n")
        assert raw.until(b"c") == [
            f"* OK [COPYUID {done} 2:3 2:3] Moved\r\n".encode(),
            b"* 2 EXPUNGE\r\n",
            b"* 2 EXPUNGE\r\n",
            b"c OK MOVE completed\r\n",
        ]
    finally:
        raw.close()


def test_literals_both_ways_synchronizing_and_literal_plus(mail_emulator):
    raw = RawImap(mail_emulator)
    try:
        assert raw.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
        assert b"LITERAL+" in raw.greeting
        assert b"AUTH=XOAUTH2" in raw.greeting
        raw.send(b"a LOGIN {%d}\r\n" % len(DEFAULT_USER))
        assert raw.file.readline().startswith(b"+ ")
        raw.send(DEFAULT_USER.encode() + b" {%d+}\r\n" % len(DEFAULT_PASSWORD) + DEFAULT_PASSWORD.encode() + b"\r\n")
        assert raw.until(b"a")[-1].startswith(b"a OK")
        raw.send(b"b APPEND INBOX (\\Flagged) {%d+}\r\n" % len(EIGHT_BIT_RAW) + EIGHT_BIT_RAW + b"\r\n")
        assert raw.until(b"b")[-1].startswith(b"b OK [APPENDUID ")
        raw.send(b"c SELECT INBOX\r\nd UID FETCH 1 (BODY.PEEK[TEXT])\r\n")
        raw.until(b"c")
        text = EIGHT_BIT_RAW.split(b"\r\n\r\n", 1)[1]
        assert raw.until(b"d") == [
            b"* 1 FETCH (UID 1 BODY[TEXT] {%d}\r\n" % len(text),
            text[:-2] + b"\r\n",
            b")\r\n",
            b"d OK UID FETCH completed\r\n",
        ]
    finally:
        raw.close()


def test_append_keeps_flags_date_and_bytes(mail_emulator):
    when = datetime(2026, 1, 31, 8, 0, tzinfo=UTC)
    with imap(mail_emulator) as client:
        answer = client.append("INBOX", EIGHT_BIT_RAW, flags=[b"\\Seen"], msg_time=when)
        assert answer.startswith(b"[APPENDUID ")
        client.select_folder("INBOX")
        data = client.fetch("1", ["FLAGS", "INTERNALDATE", "BODY.PEEK[]"])[1]
    assert data[b"BODY[]"] == EIGHT_BIT_RAW
    assert data[b"FLAGS"] == (b"\\Recent", b"\\Seen")
    assert mail_emulator.messages()[0]["internaldate"] == when.isoformat()


def test_expunge_removes_deleted_messages(mail_emulator):
    uids = [mail_emulator.deliver(sender="ann@example.com", subject=str(n))["uid"] for n in range(3)]
    with imap(mail_emulator) as client:
        client.select_folder("INBOX")
        client.add_flags([uids[0], uids[2]], [b"\\Deleted"])
        _message, responses = client.expunge()
        assert responses == [(1, b"EXPUNGE"), (2, b"EXPUNGE")], "each number as it is when that one goes"
        assert client.search("ALL") == [uids[1]]


def test_another_sessions_changes_arrive_on_noop(mail_emulator):
    uid = mail_emulator.deliver(sender="ann@example.com", subject="first")["uid"]
    with imap(mail_emulator) as watcher, imap(mail_emulator) as other:
        watcher.select_folder("INBOX")
        other.select_folder("INBOX")
        other.delete_messages([uid])
        other.expunge()
        mail_emulator.deliver(sender="bo@example.com", subject="second")
        _, responses = watcher.noop()
        assert responses[0] == (1, b"EXPUNGE")
        assert (1, b"EXISTS") in responses


def test_list_create_status_and_examine(mail_emulator):
    with imap(mail_emulator) as client:
        client.create_folder("Processed")
        assert [name for _, _, name in client.list_folders()] == ["INBOX", "Processed"]
        assert client.folder_exists("Processed")
        with pytest.raises(IMAPClientError, match="ALREADYEXISTS"):
            client.create_folder("Processed")
        mail_emulator.deliver(sender="ann@example.com", subject="x", folder="Processed")
        status = client.folder_status("Processed", ["MESSAGES", "UIDNEXT", "UNSEEN"])
        assert status == {b"MESSAGES": 1, b"UIDNEXT": 2, b"UNSEEN": 1}
        assert client.select_folder("Processed", readonly=True)[b"READ-ONLY"]
        with pytest.raises(IMAPClientError, match="READ-ONLY"):
            client.add_flags([1], [b"\\Seen"])
        client.fetch([1], ["BODY[]"])
        assert client.get_flags([1])[1] == (b"\\Recent",), "a read-only folder is not marked read"
        client.close_folder()


# -- IMAP: IDLE and authentication ---------------------------------------------------------------------------------


def test_idle_wakes_when_mail_arrives(mail_emulator):
    with imap(mail_emulator) as client:
        client.select_folder("INBOX")
        client.idle()
        threading.Timer(0.2, lambda: mail_emulator.deliver(sender="ann@example.com", subject="now")).start()
        responses = client.idle_check(timeout=5)
        client.idle_done()
        assert (1, b"EXISTS") in responses
        assert client.search("ALL") == [1]


def test_idle_stays_quiet_without_news(mail_emulator):
    with imap(mail_emulator) as client:
        client.select_folder("INBOX")
        client.idle()
        assert client.idle_check(timeout=0.3) == []
        assert client.idle_done()[0] == b"IDLE terminated"


def test_xoauth2_and_plain_take_the_account_secrets(mail_emulator):
    with imap(mail_emulator, login=False) as client:
        client.oauth2_login(DEFAULT_USER, DEFAULT_TOKEN)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    with imap(mail_emulator, login=False) as client:
        client.plain_login(DEFAULT_USER, DEFAULT_PASSWORD)
        assert client.list_folders()
    mail_emulator.add_account("second@example.com", password="pw2", token="tok2")
    with imap(mail_emulator, login=False) as client:
        client.oauth2_login("second@example.com", "tok2")


@pytest.mark.parametrize(
    "login",
    [
        lambda client: client.login(DEFAULT_USER, "wrong"),
        lambda client: client.plain_login(DEFAULT_USER, "wrong"),
        lambda client: client.oauth2_login(DEFAULT_USER, "expired-token"),
        lambda client: client.oauth2_login("nobody@example.com", DEFAULT_TOKEN),
    ],
)
def test_wrong_credentials_are_authenticationfailed(mail_emulator, login):
    with imap(mail_emulator, login=False) as client:
        with pytest.raises(LoginError, match=r"\[AUTHENTICATIONFAILED\]"):
            login(client)
        client.login(DEFAULT_USER, DEFAULT_PASSWORD)


def test_a_rotated_token_is_refused(mail_emulator):
    mail_emulator.add_account(DEFAULT_USER, token="rotated")
    with imap(mail_emulator, login=False) as client, pytest.raises(LoginError):
        client.oauth2_login(DEFAULT_USER, DEFAULT_TOKEN)


# -- IMAP: UIDVALIDITY and faults ----------------------------------------------------------------------------------


def test_a_new_uidvalidity_renumbers_and_ends_open_sessions(mail_emulator):
    for n in range(3):
        mail_emulator.deliver(sender="ann@example.com", subject=str(n))
    with imap(mail_emulator) as client:
        client.select_folder("INBOX")
        client.move([1, 2], mail_emulator.create_folder("Old")["name"])
    with imap(mail_emulator) as client:
        before = client.select_folder("INBOX")
        assert client.search("ALL") == [3]
        changed = mail_emulator.set_uidvalidity("INBOX", uidvalidity=before[b"UIDVALIDITY"] + 100)
        client.idle()
        assert client.idle_check(timeout=5)[0][:2] == (b"BYE", b"Mailbox")
    assert changed["uidvalidity"] == before[b"UIDVALIDITY"] + 100
    with imap(mail_emulator) as client:
        after = client.select_folder("INBOX")
        assert after[b"UIDVALIDITY"] == changed["uidvalidity"]
        assert after[b"UIDNEXT"] == 2
        assert client.search("ALL") == [1]


def test_imap_faults(mail_emulator):
    uid = mail_emulator.deliver(sender="ann@example.com", subject="x")["uid"]
    mail_emulator.fail_imap("UID FETCH", kind="drop")
    with imap(mail_emulator) as client:
        client.select_folder("INBOX")
        with pytest.raises((IMAPClientAbortError, OSError)):
            client.fetch([uid], ["BODY.PEEK[]"])
    mail_emulator.fail_imap("SELECT", kind="no", message="[UNAVAILABLE] Try later")
    with imap(mail_emulator) as client:
        with pytest.raises(IMAPClientError, match="UNAVAILABLE"):
            client.select_folder("INBOX")
        assert client.select_folder("INBOX")[b"EXISTS"] == 1
    mail_emulator.fail_imap("UID MOVE", kind="drop_after")
    mail_emulator.create_folder("Done")
    with imap(mail_emulator) as client:
        client.select_folder("INBOX")
        with pytest.raises((IMAPClientAbortError, OSError)):
            client.move([uid], "Done")
    assert len(mail_emulator.messages("Done")) == 1, "drop_after applies the command before dropping"
    mail_emulator.fail_imap("CONNECT", kind="bye", message="Too many connections")
    with pytest.raises(IMAPClientError):
        imap(mail_emulator)


def test_disconnect_closes_open_sessions(mail_emulator):
    with imap(mail_emulator) as client:
        client.select_folder("INBOX")
        assert mail_emulator.disconnect_imap() == 1
        with pytest.raises((IMAPClientAbortError, OSError)):
            client.noop()


def test_bad_commands_are_answered_bad(mail_emulator):
    raw = RawImap(mail_emulator)
    try:
        raw.send(b"a FROB\r\nb SELECT INBOX\r\nc LOGIN only-user\r\n")
        assert raw.until(b"a")[-1].startswith(b"a BAD ")
        assert raw.until(b"b")[-1].startswith(b"b BAD "), "SELECT before LOGIN"
        assert raw.until(b"c")[-1].startswith(b"c BAD ")
    finally:
        raw.close()


# -- SMTP ----------------------------------------------------------------------------------------------------------


def test_smtp_keeps_what_the_desk_sends(mail_emulator):
    message = reply("Have you tried turning it off and on again?", cc="bo@example.com", in_reply_to="<ann-1@x>")
    message.add_alternative("<p>Have you tried <b>turning it off</b>?</p>", subtype="html")
    message.add_attachment(b"%PDF-1.4 ...", maintype="application", subtype="pdf", filename="guide.pdf")
    with smtp(mail_emulator) as server:
        server.login(DEFAULT_USER, DEFAULT_PASSWORD)
        server.send_message(message)
    [sent] = mail_emulator.sent()
    assert sent["rcpt_to"] == ["ann@example.com", "bo@example.com"]
    assert sent["mail_from"] == DEFAULT_USER
    assert sent["auth_user"] == DEFAULT_USER
    assert sent["subject"] == "Re: [#12] VPN down"
    assert sent["to"] == [{"name": "", "email": "ann@example.com"}]
    assert sent["in_reply_to"] == "<ann-1@x>"
    assert sent["message_id"] == "<desk-1@helpdesk.example>"
    assert sent["text"].startswith("Have you tried turning it off")
    assert "<b>turning it off</b>" in sent["html"]
    assert [(a["filename"], a["content"]) for a in sent["attachments"]] == [("guide.pdf", b"%PDF-1.4 ...")]
    assert BytesParser(policy=default_policy).parsebytes(sent["raw"])["Subject"] == "Re: [#12] VPN down"


def test_smtp_carries_8bit_and_dot_lines_unchanged(mail_emulator):
    body = b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\ncaf\xc3\xa9\r\n"
    with smtp(mail_emulator) as server:
        server.sendmail(DEFAULT_USER, ["ann@example.com"], body)
    assert mail_emulator.sent()[0]["raw"] == body


def test_smtp_auth(mail_emulator):
    with smtp(mail_emulator) as server, pytest.raises(smtplib.SMTPAuthenticationError):
        server.login(DEFAULT_USER, "wrong")
    mail_emulator.require_smtp_auth()
    with smtp(mail_emulator) as server, pytest.raises(smtplib.SMTPSenderRefused) as refused:
        server.send_message(reply("hello"))
    assert refused.value.smtp_code == 530
    with smtp(mail_emulator) as server:
        server.login(DEFAULT_USER, DEFAULT_TOKEN)  # an app token works as the password, as on hosted mail
        server.send_message(reply("hello"))
    assert len(mail_emulator.sent()) == 1


def test_smtp_faults(mail_emulator):
    mail_emulator.fail_smtp("DATA", code=451, message="4.3.0 Try again later")
    with smtp(mail_emulator) as server, pytest.raises(smtplib.SMTPDataError) as refused:
        server.send_message(reply("one"))
    assert refused.value.smtp_code == 451
    mail_emulator.fail_smtp("RCPT", code=550, message="5.1.1 No such user")
    with smtp(mail_emulator) as server, pytest.raises(smtplib.SMTPRecipientsRefused):
        server.send_message(reply("two"))
    assert mail_emulator.sent() == []
    mail_emulator.fail_smtp("DATA", kind="drop_after")
    with smtp(mail_emulator) as server, pytest.raises(smtplib.SMTPServerDisconnected):
        server.send_message(reply("three"))
    assert [m["text"] for m in mail_emulator.sent()] == ["three\n"], "kept, though the sender never heard"
    mail_emulator.fail_smtp("CONNECT", kind="drop")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        smtp(mail_emulator)
    with smtp(mail_emulator) as server:
        server.send_message(reply("four"))
    assert len(mail_emulator.sent()) == 2


def test_mail_to_an_own_account_is_delivered_locally(mail_emulator):
    with smtp(mail_emulator) as server:
        server.send_message(reply("looped", to=DEFAULT_USER))
    assert [m["subject"] for m in mail_emulator.messages()] == ["Re: [#12] VPN down"]


# -- control API, simulated employees, command line ----------------------------------------------------------------


def test_control_api_refuses_nonsense(mail_emulator):
    with pytest.raises(EmulatorControlError) as missing:
        mail_emulator.deliver(subject="no sender")
    assert missing.value.status == 400
    with pytest.raises(EmulatorControlError) as unknown:
        mail_emulator.deliver(b"Subject: x\r\n\r\n", account="nobody@example.com")
    assert unknown.value.status == 404
    with pytest.raises(EmulatorControlError):
        mail_emulator.fail_smtp("MAIL", kind="drop_after")


def test_deliver_routes_by_recipient_and_keeps_attachments(mail_emulator):
    mail_emulator.add_account("sales@example.com")
    mail_emulator.deliver(
        sender="Ann <ann@example.com>",
        to="Sales <sales@example.com>",
        subject="quote",
        text="see attached",
        attachments=[{"filename": "a.png", "content": b"\x89PNG...", "content_id": "img1@x"}],
    )
    assert mail_emulator.messages() == []
    [message] = mail_emulator.messages(account="sales@example.com")
    parsed = BytesParser(policy=default_policy).parsebytes(message["raw"])
    [attachment] = parsed.iter_attachments()
    assert attachment.get_content() == b"\x89PNG..."
    assert attachment["Content-ID"] == "<img1@x>"


def test_employees_write_in_and_answer_the_desk(mail_emulator):
    employees = Employees(MailEmulatorClient(mail_emulator.url), desk=DEFAULT_USER, rng=random.Random(3))
    first = employees.write_new(cc=True)
    [incoming] = mail_emulator.messages()
    parsed = BytesParser(policy=default_policy).parsebytes(incoming["raw"])
    author = parsed["From"].addresses[0]
    assert parsed["Cc"].addresses[0].addr_spec != author.addr_spec
    with smtp(mail_emulator) as server:
        server.send_message(
            reply(
                "We reset your VPN profile.\nPlease try again.", to=str(parsed["From"]), references=first["message_id"]
            )
        )
        server.send_message(reply("not for an employee", to="stranger@example.org", message_id="<desk-2@x>"))
    [answer] = employees.answer_replies(probability=1.0)
    assert employees.answer_replies(probability=1.0) == [], "each desk reply is answered once"
    answered = BytesParser(policy=default_policy).parsebytes(mail_emulator.messages()[-1]["raw"])
    assert answer["message_id"] == answered["Message-ID"]
    assert answered["Subject"] == "Re: [#12] VPN down"
    assert answered["In-Reply-To"] == "<desk-1@helpdesk.example>"
    assert answered["References"].split() == [first["message_id"], "<desk-1@helpdesk.example>"]
    text = answered.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    assert f"IT Help <{DEFAULT_USER}> wrote:\n> We reset your VPN profile.\n> Please try again." in text


def test_cli_serves_until_terminated():
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.mail", "--imap-port", "0", "--smtp-port", "0", "--http-port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = process.stdout.readline()
        fields = dict(part.split("=", 1) for part in banner.split() if "=" in part)
        client = MailEmulatorClient(fields["control"].removesuffix("/_emulator/"))
        client.deliver(sender="ann@example.com", subject="hello")
        host, port = fields["imap"].rsplit(":", 1)
        with IMAPClient(host, port=int(port), ssl=False, timeout=5) as imap_client:
            imap_client.login(DEFAULT_USER, DEFAULT_PASSWORD)
            assert imap_client.select_folder("INBOX")[b"EXISTS"] == 1
    finally:
        process.terminate()
    assert process.wait(timeout=5) == 0
