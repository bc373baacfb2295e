"""The email channel's test harness itself (tests/mail_servers.py): a real Dovecot answers IMAP as the adapter will
use it, and the SMTP catcher keeps exactly what Python's smtplib and Django's SMTP backend send."""

import smtplib
from email.message import EmailMessage

import pytest
from django.core.mail import EmailMessage as DjangoEmailMessage
from django.core.mail import get_connection
from imapclient.exceptions import LoginError

SUPPORT = "support@example.com"


def raw_mail(subject, body="Hello", message_id="<m1@example.com>"):
    return (
        f"From: Ann Employee <ann@example.com>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\nDate: Thu, 04 Dec 2025 09:00:00 +0000\r\n\r\n{body}\r\n"
    ).encode()


# Dovecot -------------------------------------------------------------------------------------------------


def test_login_needs_the_password(dovecot):
    dovecot.add_user(SUPPORT, "s3cret-pass")
    with dovecot.client(SUPPORT) as imap:
        assert imap.select_folder("INBOX")[b"EXISTS"] == 0
    with pytest.raises(LoginError):
        dovecot.connect(SUPPORT, "wrong")
    with pytest.raises(LoginError):
        dovecot.connect("nobody@example.com", "s3cret-pass")


def test_appended_mail_is_found_and_fetched_byte_for_byte(dovecot):
    dovecot.add_user(SUPPORT)
    first = raw_mail("Printer on fire", message_id="<p1@example.com>")
    second = raw_mail("VPN down", body="Since 9:00 \u2013 help".encode("utf-8").decode("latin-1"), message_id="<v1@x>")
    assert dovecot.deliver(SUPPORT, first) == 1
    assert dovecot.deliver(SUPPORT, second) == 2
    with dovecot.client(SUPPORT) as imap:
        imap.select_folder("INBOX", readonly=True)
        assert imap.search(["UNSEEN"]) == [1, 2]
        assert imap.search(["SUBJECT", "VPN"]) == [2]
        fetched = imap.fetch([1, 2], ["BODY.PEEK[]", "UID"])
    assert fetched[1][b"BODY[]"] == first
    assert fetched[2][b"BODY[]"] == second


def test_uidvalidity_is_reported_and_changes_when_the_mailbox_is_recreated(dovecot):
    dovecot.add_user(SUPPORT)
    before = dovecot.create_mailbox(SUPPORT, "Helpdesk")
    assert dovecot.deliver(SUPPORT, raw_mail("one"), mailbox="Helpdesk") == 1
    with dovecot.client(SUPPORT) as imap:
        assert imap.select_folder("Helpdesk")[b"UIDVALIDITY"] == before

    after = dovecot.recreate_mailbox(SUPPORT, "Helpdesk")  # IMAP DELETE + CREATE
    assert after != before
    assert dovecot.uidvalidity(SUPPORT, "Helpdesk") == after
    assert dovecot.deliver(SUPPORT, raw_mail("two"), mailbox="Helpdesk") == 1  # UIDs start again


def test_inbox_uidvalidity_is_forced_with_doveadm_and_its_mail_stays(dovecot):
    dovecot.add_user(SUPPORT)
    dovecot.deliver(SUPPORT, raw_mail("kept"))
    old = dovecot.uidvalidity(SUPPORT)
    assert dovecot.set_uidvalidity(SUPPORT, "INBOX", old + 1000) == old + 1000
    with dovecot.client(SUPPORT) as imap:
        assert imap.select_folder("INBOX")[b"EXISTS"] == 1


def test_several_users_and_mailboxes_are_kept_apart(dovecot):
    dovecot.add_user(SUPPORT)
    dovecot.add_user("alerts@example.com", "other-pass")
    dovecot.deliver(SUPPORT, raw_mail("inbox mail"))
    dovecot.deliver(SUPPORT, raw_mail("filed mail"), mailbox="Filed")
    dovecot.deliver("alerts@example.com", raw_mail("disk full"))
    with dovecot.client(SUPPORT) as imap:
        assert {name for _flags, _sep, name in imap.list_folders()} == {"INBOX", "Filed"}
        assert imap.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"] == 1
        assert imap.folder_status("Filed", [b"MESSAGES"])[b"MESSAGES"] == 1
    with dovecot.client("alerts@example.com") as imap:
        imap.select_folder("INBOX")
        assert [data[b"ENVELOPE"].subject for data in imap.fetch(imap.search(), ["ENVELOPE"]).values()] == [
            b"disk full"
        ]


def test_each_test_starts_with_no_users_and_no_mail(dovecot):
    assert dovecot.users == {}
    dovecot.add_user(SUPPORT)
    assert dovecot.uidvalidity(SUPPORT) > 0
    with dovecot.client(SUPPORT) as imap:
        assert imap.select_folder("INBOX")[b"EXISTS"] == 0


# SMTP catcher --------------------------------------------------------------------------------------------


def test_catcher_keeps_what_smtplib_sends(smtp_catcher):
    message = EmailMessage()
    message["From"] = "IT Help <help@example.com>"
    message["To"] = "ann@example.com"
    message["Subject"] = "[#12] Re: Printer on fire"
    message["Message-ID"] = "<reply-1@helpdesk.example.com>"
    message["In-Reply-To"] = "<p1@example.com>"
    message.set_content("Try turning it off and on.")
    with smtplib.SMTP(smtp_catcher.host, smtp_catcher.port) as smtp:
        smtp.send_message(message, to_addrs=["ann@example.com", "bo@example.com"])

    [caught] = smtp_catcher.messages
    assert caught.mail_from == "help@example.com"
    assert caught.rcpt_tos == ["ann@example.com", "bo@example.com"]
    assert b"In-Reply-To: <p1@example.com>" in caught.raw
    assert caught["Subject"] == "[#12] Re: Printer on fire"
    assert caught.message.get_content().strip() == "Try turning it off and on."


def test_catcher_keeps_what_djangos_smtp_backend_sends_with_a_login(smtp_catcher):
    connection = get_connection(
        "django.core.mail.backends.smtp.EmailBackend",
        host=smtp_catcher.host,
        port=smtp_catcher.port,
        username="relay-user",
        password="relay-pass",
        use_tls=False,
    )
    mail = DjangoEmailMessage(
        subject="[#7] Your VPN",
        body="Fixed \u2013 reconnect please.",
        from_email="Alex Agent <help@example.com>",
        to=["ann@example.com"],
        cc=["bo@example.com"],
        headers={"References": "<v1@x>"},
        connection=connection,
    )
    mail.attach("log.txt", "line 1\n", "text/plain")
    assert mail.send() == 1

    [caught] = smtp_catcher.wait_for(1)
    assert caught.login == "relay-user"
    assert caught.rcpt_tos == ["ann@example.com", "bo@example.com"]
    assert caught["References"] == "<v1@x>"
    body = caught.message.get_body(("plain",)).get_content()
    assert body.strip() == "Fixed \u2013 reconnect please."
    [attachment] = caught.message.iter_attachments()
    assert attachment.get_filename() == "log.txt"


def test_catcher_can_refuse_a_message_with_a_given_reply(smtp_catcher):
    smtp_catcher.refuse_next("550 5.1.1 <ann@example.com>: Recipient address rejected")
    with smtplib.SMTP(smtp_catcher.host, smtp_catcher.port) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("help@example.com", ["ann@example.com"], raw_mail("refused"))
        assert refused.value.smtp_code == 550
        assert b"Recipient address rejected" in refused.value.smtp_error
        smtp.sendmail("help@example.com", ["ann@example.com"], raw_mail("accepted"))
    assert [caught["Subject"] for caught in smtp_catcher.messages] == ["accepted"]
