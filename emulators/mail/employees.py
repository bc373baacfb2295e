"""Simulated employees who email the desk: they write new mails and answer the desk's replies the way mail
clients do (``Re:`` subject kept with its ticket tag, In-Reply-To, References, the history quoted below an
"On ... wrote:" line). They work through the control API only, so they can drive an emulator in another process.

    employees = Employees(MailEmulatorClient(url), desk="it-help@example.com")
    employees.write_new()          # one new mail into the desk's INBOX
    employees.answer_replies()     # answer what the desk sent them since the last call
    threading.Thread(target=employees.run, args=(stop_event,), daemon=True).start()   # both, at human pace
"""

import random
import threading
from datetime import UTC, datetime

from .client import MailEmulatorClient

EMPLOYEES = [
    ("Maya Patel", "maya@example.com"),
    ("Jonas Berg", "jonas@example.com"),
    ("Amira Haddad", "amira@example.com"),
    ("Leo Okafor", "leo@example.com"),
]
ISSUES = [
    ("VPN drops every few minutes", "Hi,\n\nsince this morning the VPN disconnects every five minutes or so."),
    ("Outlook keeps asking for my password", "Hello,\n\nOutlook asks for my password again and again. 🙃"),
    ("Access to the Finance shared drive", "Hi team,\n\ncould I get read access to the Finance drive, please?"),
    ("Printer on floor 3 jammed", "Hi,\n\nthe printer next to the kitchen on floor 3 is jammed again."),
    ("Monitor flickers", "Hello,\n\nmy second monitor flickers constantly. Can I get a new one?"),
    ("Überweisung: Zugang zum Bankportal", "Hallo,\n\nich komme seit Montag nicht mehr ins Bankportal."),
]
FOLLOW_UPS = [
    "Thanks, that worked!",
    "Still broken, I restarted twice.",
    "Any update on this? It's getting urgent.",
    "I tried that, same error. Log attached.",
]
ERROR_LOG = {
    "filename": "error.log",
    "content": b"ERROR vpn: TLS handshake failed\n" * 10,
    "content_type": "text/plain",
}


class Employees:
    def __init__(
        self,
        client: MailEmulatorClient,
        desk: str,
        people: list[tuple[str, str]] = EMPLOYEES,
        rng: random.Random | None = None,
    ):
        self.client = client
        self.desk = desk
        self.people = {address.lower(): name for name, address in people}
        self.rng = rng or random.Random()
        self.last_sent_id = 0

    def write_new(self, cc: bool | None = None) -> dict:
        """One employee writes a new mail to the desk (now and then copying a colleague); returns deliver()'s
        answer."""
        address, name = self.rng.choice(list(self.people.items()))
        subject, text = self.rng.choice(ISSUES)
        copied = []
        if cc if cc is not None else self.rng.random() < 0.2:
            colleague = self.rng.choice([other for other in self.people if other != address])
            copied = [f"{self.people[colleague]} <{colleague}>"]
        return self.client.deliver(
            sender=f"{name} <{address}>",
            to=self.desk,
            cc=copied,
            subject=subject,
            text=f"{text}\n\n{name.split()[0]}",
        )

    def answer_replies(self, probability: float = 0.6) -> list[dict]:
        """Each employee the desk wrote to since the last call answers with ``probability``; returns what the
        employees sent (deliver()'s answers)."""
        answers = []
        for sent in self.client.sent(since_id=self.last_sent_id):
            self.last_sent_id = max(self.last_sent_id, sent["id"])
            recipients = [a["email"].lower() for a in sent["to"] + sent["cc"]]
            employee = next((address for address in recipients if address in self.people), None)
            if employee is None or self.rng.random() >= probability:
                continue
            answers.append(self._answer(employee, sent))
        return answers

    def _answer(self, address: str, sent: dict) -> dict:
        name = self.people[address]
        subject = sent["subject"] if sent["subject"].lower().startswith("re:") else f"Re: {sent['subject']}"
        sender = sent["from"][0] if sent["from"] else {"name": "", "email": sent["mail_from"]}
        who = f"{sender['name']} <{sender['email']}>" if sender["name"] else sender["email"]
        when = sent["date"] or sent["received_at"]
        quoted = "\n".join(f"> {line}" if line else ">" for line in sent["text"].rstrip("\n").split("\n"))
        follow_up = self.rng.choice(FOLLOW_UPS)
        body = f"{follow_up}\n\n{name.split()[0]}\n\nOn {_human_date(when)}, {who} wrote:\n{quoted}\n"
        references = [*sent["references"], sent["message_id"]] if sent["message_id"] else sent["references"]
        attachments = [ERROR_LOG] if "attached" in follow_up else []
        return self.client.deliver(
            sender=f"{name} <{address}>",
            to=self.desk,
            subject=subject,
            text=body,
            in_reply_to=sent["message_id"] or None,
            references=references or None,
            attachments=attachments,
        )

    def run(self, stop: threading.Event, pace: tuple[float, float] = (8.0, 20.0), new_mail: float = 0.5) -> None:
        """Until ``stop`` is set: answer the desk's replies, and now and then write a new mail."""
        while not stop.is_set():
            try:
                self.answer_replies()
                if self.rng.random() < new_mail:
                    self.write_new()
            except OSError:
                pass  # the emulator is shutting down
            stop.wait(self.rng.uniform(*pace))


def _human_date(iso: str) -> str:
    moment = datetime.fromisoformat(iso).astimezone(UTC)
    return f"{moment:%a}, {moment.day} {moment:%b %Y} at {moment:%H:%M}"
