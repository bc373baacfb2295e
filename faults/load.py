"""What the platforms send during a scenario, and what they received back.

A load owns an in-process emulator, wires a channel to it as an admin would, posts the scenario's messages
(webhook burst, polling, or both), and afterwards names what it sent (the external ids the helpdesk must have
stored once each) and counts the copies of each reply the platform holds.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from channels_ingest.channel_config import clean_channel_config
from channels_ingest.models import Channel
from emulators.slack import SlackEmulator
from emulators.x import XEmulator

from .services import at_exit

PEOPLE = 50
CHUNK = 500
#: Slack retries a failed event delivery three times (immediately, after 1 and 5 minutes); the emulator's waits are
#: shorter, long enough to outlast a restart of the web process.
EVENT_RETRY_DELAYS = (1.0, 4.0, 10.0)
#: X serves only the newest 800 mentions: the load keeps the unread ones within that window, so that whatever is
#: lost is the helpdesk's doing.
X_UNREAD_MAX = 400


class SlackLoad:
    """Messages in #it-help (a tenth of them replies in 20 threads), by webhook, polling or both."""

    platform = "slack"
    #: The fault key of posting a reply.
    send_method = "chat.postMessage"

    def __init__(self, messages: int, *, webhook: bool, poll: bool, web_url: str, client_timeout: float):
        self.messages = messages
        self.client_timeout = client_timeout
        self.webhook = webhook
        self.poll = poll
        self.web_url = web_url
        self.emulator = SlackEmulator(port=0, event_workers=4, event_retry_delays=EVENT_RETRY_DELAYS).start()
        at_exit(self.emulator.stop)
        self.posted: list[str] = []

    def create_channels(self) -> list[Channel]:
        raw = {
            "bot_token": "xoxb-emulator",
            "signing_secret": "emulator-secret",
            "conversations": ["C0GENERAL"],
            "base_url": self.emulator.base_url,
            "timeout": self.client_timeout,
        }
        config, secrets = clean_channel_config("slack", raw)
        channel = Channel.objects.create(
            kind="slack",
            name="faults-slack",
            config=config,
            secrets=secrets,
            poll_interval_seconds=2 if self.poll else 0,
        )
        if self.webhook:
            self.emulator.configure(events_url=f"{self.web_url}/webhooks/{channel.public_id}/")
        for n in range(PEOPLE):
            self.emulator.add_user(f"U{n:05d}", name=f"person{n}", real_name=f"Person {n}")
        return [channel]

    def feed(self, stored_ids: Callable[[], set[str] | None]) -> None:
        replies = self.messages // 10
        entries = [
            {"user": f"U{n % PEOPLE:05d}", "text": f"Issue {n}: the VPN drops"} for n in range(self.messages - replies)
        ]
        first, rest = entries[:CHUNK], entries[CHUNK:]
        self.posted += self.emulator.post_many("C0GENERAL", first, dispatch_events=self.webhook)
        parents = self.posted[:20]
        rest += [
            {"user": f"U{n % PEOPLE:05d}", "text": f"Follow-up {n}", "thread_ts": parents[n % len(parents)]}
            for n in range(replies)
        ]
        for start in range(0, len(rest), CHUNK):
            time.sleep(0.2)
            self.posted += self.emulator.post_many(
                "C0GENERAL", rest[start : start + CHUNK], dispatch_events=self.webhook
            )

    def expected_ids(self) -> set[str]:
        return {f"C0GENERAL:{ts}" for ts in self.posted}

    def reply_copies(self) -> Counter:
        return Counter(message["text"] for message in self.emulator.bot_messages("C0GENERAL"))

    def reply_modes(self, count: int) -> list[str | None]:
        return [None] * count

    def storm_keys(self) -> None:
        return None  # every Web API call, file transfers included

    def close(self) -> None:
        self.emulator.stop()


class XLoad:
    """@mentions (one conversation each) and, for one message in fifty, DMs; both read by polling."""

    platform = "x"

    def __init__(self, messages: int, *, client_timeout: float, **_):
        self.messages = messages
        self.client_timeout = client_timeout
        self.emulator = XEmulator(port=0).start()
        at_exit(self.emulator.stop)
        for endpoint in ("mentions", "dm_events", "create_tweet", "dm_send", "users", "users_me", "tweets"):
            # The suite measures faults, not X's 15-minute windows (the 429 storm brings its own).
            self.emulator.set_rate_limit(endpoint, limit=1_000_000)
        self.people = [self.emulator.add_user(username=f"person{n}", name=f"Person {n}")["id"] for n in range(PEOPLE)]
        self.mentions: list[str] = []
        self.dms: list[str] = []
        self._lock = threading.Lock()

    def create_channels(self) -> list[Channel]:
        raw = {
            "bearer_token": "x-emulator-bearer",
            "base_url": self.emulator.url,
            "triage": {"auto_ticket": "all"},
            "dm_poll_interval_seconds": 1,
            "timeout": self.client_timeout,
        }
        config, secrets = clean_channel_config("x", raw)
        return [
            Channel.objects.create(kind="x", name="faults-x", config=config, secrets=secrets, poll_interval_seconds=1)
        ]

    def feed(self, stored_ids: Callable[[], set[str] | None]) -> None:
        dms = max(1, self.messages // 50)
        mentions = self.messages - dms
        every = max(1, mentions // dms)
        for start in range(0, mentions, X_UNREAD_MAX):
            self._wait_for_reader(stored_ids)
            burst = [
                {"author_id": self.people[n % PEOPLE], "text": f"@ithelp issue {n}: the VPN drops"}
                for n in range(start, min(mentions, start + X_UNREAD_MAX))
            ]
            ids = self.emulator.post_many(burst)
            with self._lock:
                self.mentions += ids
            for n in range(start, min(mentions, start + X_UNREAD_MAX)):
                if n % every == 0 and len(self.dms) < dms:
                    event = self.emulator.dm_from(self.people[n % PEOPLE], f"DM {n}: can you reset my MFA?")
                    with self._lock:
                        self.dms.append(event["dm_event_id"])

    def _wait_for_reader(self, stored_ids, timeout: float = 600) -> None:
        """Post the next burst once every mention but the last burst's is stored, so that X (which serves the
        newest 800) still serves every unread mention after it, however the helpdesk reads them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                older = {f"tweet:{post_id}" for post_id in self.mentions[:-X_UNREAD_MAX]}
            stored = stored_ids()
            if stored is not None and older <= stored:
                return
            time.sleep(0.5)

    def expected_ids(self) -> set[str]:
        return {f"tweet:{post_id}" for post_id in self.mentions} | {f"dm:{event_id}" for event_id in self.dms}

    def reply_copies(self) -> Counter:
        posts = [post["text"] for post in self.emulator.account_posts()]
        return Counter(posts + [dm["text"] for dm in self.emulator.account_dms()])

    def reply_modes(self, count: int) -> list[str | None]:
        """Public replies and DMs, both ways out of X."""
        return ["public" if n % 2 == 0 else "dm" for n in range(count)]

    def storm_keys(self) -> None:
        return None

    def close(self) -> None:
        self.emulator.stop()
