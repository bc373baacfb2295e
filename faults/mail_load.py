"""The email load: people write to the desk's mailbox on the mail emulator; the desk polls it over IMAP (moving
what it stored to Processed) and replies over SMTP.

The channel has ``sent_folder`` set and the emulator files what the desk sends in Sent, as Gmail and Microsoft 365
do: only then can a reply whose SMTP answer was lost be looked up, and exactly once be proven (without it, email
is at least once with a warning; docs/delivery.md).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable

from channel_adapters.email.inbound import mail_key
from channels_ingest.channel_config import clean_channel_config
from channels_ingest.models import Channel
from channels_ingest.polling import verify_channel
from emulators.mail import DEFAULT_PASSWORD, DEFAULT_USER, MailEmulator

from .services import at_exit

PEOPLE = 50
CHUNK = 500
SENT_FOLDER = "Sent"


class MailLoad:
    """Mails to the desk's mailbox, each from one of PEOPLE and a new conversation; read by IMAP polling."""

    platform = "email"

    def __init__(self, messages: int, *, client_timeout: float, **_):
        self.messages = messages
        self.client_timeout = client_timeout
        self.emulator = MailEmulator().start()
        at_exit(self.emulator.stop)
        self.emulator.file_sent_mail(SENT_FOLDER)
        self.emulator.create_folder(SENT_FOLDER)
        self.token = uuid.uuid4().hex[:8]
        self.message_ids: list[str] = []

    def create_channels(self) -> list[Channel]:
        emulator = self.emulator
        raw = {
            "address": DEFAULT_USER,
            "desk_name": "IT Help Desk",
            "imap_host": emulator.imap_host,
            "imap_port": emulator.imap_port,
            "imap_security": "none",
            "smtp_port": emulator.smtp_port,
            "smtp_security": "none",
            "username": DEFAULT_USER,
            "password": DEFAULT_PASSWORD,
            "after_store": "move",
            "move_to": "Processed",
            "sent_folder": SENT_FOLDER,
            "timeout": self.client_timeout,
        }
        config, secrets = clean_channel_config("email", raw)
        channel = Channel.objects.create(
            kind="email", name="faults-email", config=config, secrets=secrets, poll_interval_seconds=2
        )
        verify_channel(channel)
        return [channel]

    def feed(self, stored_ids: Callable[[], set[str] | None]) -> None:
        for start in range(0, self.messages, CHUNK):
            for n in range(start, min(self.messages, start + CHUNK)):
                person = n % PEOPLE
                message_id = f"issue-{n}-{self.token}@people.example.com"
                self.emulator.deliver(
                    sender=f"Person {person} <person{person}@people.example.com>",
                    to=DEFAULT_USER,
                    subject=f"Issue {n}: the VPN drops",
                    text=f"Since this morning, issue {n}.",
                    message_id=f"<{message_id}>",
                )
                self.message_ids.append(message_id)
            time.sleep(0.2)

    def expected_ids(self) -> set[str]:
        return {mail_key(message_id) for message_id in self.message_ids}

    def reply_copies(self) -> Counter:
        """How many sent mails carry each line: a reply's text is one line of the mail the desk sends."""
        return Counter(line for sent in self.emulator.sent() for line in set(sent["text"].splitlines()))

    def reply_modes(self, count: int) -> list[str | None]:
        return [None] * count

    def storm_keys(self) -> None:
        return None  # every IMAP command and SMTP stage

    def close(self) -> None:
        self.emulator.stop()
