"""Mail that must never open a ticket: auto-replies, bounces, mailing lists, automated reports."""

from __future__ import annotations

import email.message
import enum
import re
from dataclasses import dataclass

from .parsing import header_text, unreadable_as_parse_error


class Noise(enum.StrEnum):
    NONE = ""
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    BULK = "bulk"  # Precedence: bulk/list/junk and mailing lists
    REPORT = "report"  # read receipts (MDN), abuse feedback (ARF)


@dataclass(frozen=True)
class Verdict:
    kind: Noise
    reason: str = ""

    def __bool__(self) -> bool:
        return self.kind is not Noise.NONE


_DAEMON = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mail\.daemon)@", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"^(undeliver(ed|able)|returned mail|mail delivery (failed|failure|subsystem)|delivery (status notification|failure|notification)|failure notice|non[- ]?delivery)",
    re.IGNORECASE,
)
_AUTO_SUBJECT = re.compile(
    r"^(automatic reply|auto(matic)?[- ]?(reply|response|respons)|out of (the )?office|abwesenheitsnotiz|réponse automatique)\b",
    re.IGNORECASE,
)


@unreadable_as_parse_error
def classify(message: email.message.Message) -> Verdict:
    """Whether this message is noise, and why (the header or sign that says so)."""

    def header(name: str) -> str:
        return header_text(message, name)[0].strip()

    ctype = message.get_content_type()
    report_type = str(message.get_param("report-type", "") or "").lower() if ctype == "multipart/report" else ""
    sender = header("From")
    address = (re.search(r"<([^>]*)>", sender) or re.search(r"(\S+@\S+)", sender) or [None, ""])[1] or ""
    subject = header("Subject")
    if report_type == "delivery-status":
        return Verdict(Noise.BOUNCE, "multipart/report; report-type=delivery-status")
    if _DAEMON.match(address.strip()):
        return Verdict(Noise.BOUNCE, f"from {address.strip()}")
    if header("X-Failed-Recipients"):
        return Verdict(Noise.BOUNCE, "X-Failed-Recipients")
    if report_type in ("disposition-notification", "feedback-report"):
        return Verdict(Noise.REPORT, f"multipart/report; report-type={report_type}")
    if header("Return-Path") == "<>" and _BOUNCE_SUBJECT.match(subject):
        return Verdict(Noise.BOUNCE, "null Return-Path and a bounce subject")
    auto = header("Auto-Submitted").lower()
    if auto and auto.split(";")[0].strip() != "no":
        return Verdict(Noise.AUTO_REPLY, f"Auto-Submitted: {auto}")
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Response"):
        if header(name):
            return Verdict(Noise.AUTO_REPLY, name)
    if header("X-Apple-Action").upper() == "VACATION":
        return Verdict(Noise.AUTO_REPLY, "X-Apple-Action: VACATION")
    if header("X-MS-Exchange-Inbox-Rules-Loop") or header("X-MS-Exchange-Generated-Message-Source"):
        return Verdict(Noise.AUTO_REPLY, "Exchange inbox-rule reply")
    if header("X-Auto-Response-Suppress") and _AUTO_SUBJECT.match(subject):
        return Verdict(Noise.AUTO_REPLY, "X-Auto-Response-Suppress and an automatic-reply subject")
    precedence = header("Precedence").lower()
    if precedence in ("bulk", "list", "junk"):
        return Verdict(Noise.BULK, f"Precedence: {precedence}")
    for name in ("List-Id", "List-Unsubscribe"):
        if header(name):
            return Verdict(Noise.BULK, name)
    if _AUTO_SUBJECT.match(subject) and header("Return-Path") == "<>":
        return Verdict(Noise.AUTO_REPLY, "null Return-Path and an automatic-reply subject")
    return Verdict(Noise.NONE)
