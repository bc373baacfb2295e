"""The Meta load: a Facebook Page, its Instagram account and a WhatsApp number on one Meta emulator.

People write DMs to the Page and the Instagram account, comment on their posts, and send WhatsApp messages (one
message in fifty is a WhatsApp photo, which the desk downloads through the Graph media endpoints). Everything
arrives by the emulator's signed webhooks; one Facebook or Instagram push in ten is lost on purpose, so that
polling, the backstop for lost pushes, has to find those. WhatsApp cannot be polled, so none of its pushes is
lost (Meta retries them for days; the emulator for seconds).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from channels_ingest.channel_config import clean_channel_config
from channels_ingest.models import Channel
from channels_ingest.polling import verify_channel
from emulators.meta import MetaEmulator

from .services import at_exit

PEOPLE = 50
CHUNK = 500
POSTS = 2
#: Of ten messages: three Facebook DMs, three Instagram DMs, three WhatsApp messages, one comment (Facebook and
#: Instagram in turn).
PLAN = ("facebook", "facebook", "facebook", "instagram", "instagram", "instagram", "whatsapp", "whatsapp",
        "whatsapp", "comment")  # fmt: skip
#: One Facebook or Instagram push in this many is lost.
DROP_EVERY = 10
PHOTO_EVERY = 50
#: A tiny but valid PNG (1x1), the photo people send on WhatsApp.
PHOTO = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


class MetaLoad:
    """DMs, comments and WhatsApp messages to three channels on one Meta emulator; webhooks, and polling of the
    Page and the Instagram account."""

    platform = "meta"

    def __init__(self, messages: int, *, web_url: str, client_timeout: float, **_):
        self.messages = messages
        self.web_url = web_url
        self.client_timeout = client_timeout
        self.emulator = MetaEmulator(port=0).start()
        at_exit(self.emulator.stop)
        self.page = self.emulator.add_page(name="IT Help")
        self.instagram = self.emulator.add_instagram(self.page["id"], username="ithelp")
        self.whatsapp = self.emulator.add_whatsapp()
        self.posts = {
            account: [self.emulator.add_post(account, f"Service notice {n}")["id"] for n in range(POSTS)]
            for account in (self.page["id"], self.instagram["id"])
        }
        self.sent_ids: list[str] = []

    def create_channels(self) -> list[Channel]:
        emulator, page = self.emulator, self.page
        common = {"base_url": emulator.base_url, "timeout": self.client_timeout, "triage": {"auto_ticket": "all"}}
        pages = {"page_id": page["id"], "page_access_token": page["token"], "app_secret": page["app_secret"]}
        wired = [
            ("facebook", page, {**pages, "verify_token": page["verify_token"], "human_agent": True}, 2),
            (
                "instagram",
                self.instagram,
                {**pages, "ig_user_id": self.instagram["id"], "verify_token": self.instagram["verify_token"]},
                2,
            ),
            (
                "whatsapp",
                self.whatsapp,
                {
                    "phone_number_id": self.whatsapp["id"],
                    "waba_id": self.whatsapp["waba_id"],
                    "access_token": self.whatsapp["token"],
                    "app_secret": self.whatsapp["app_secret"],
                    "verify_token": self.whatsapp["verify_token"],
                },
                0,  # WhatsApp cannot be polled
            ),
        ]
        channels = []
        for kind, account, raw, interval in wired:
            config, secrets = clean_channel_config(kind, {**raw, **common})
            channel = Channel.objects.create(
                kind=kind, name=f"faults-{kind}", config=config, secrets=secrets, poll_interval_seconds=interval
            )
            verify_channel(channel)  # as an admin adding it: the account's ids and templates
            # Registering the URL makes the emulator prove it with Meta's GET handshake first.
            handshake = emulator.set_webhook(account["id"], f"{self.web_url}/webhooks/{channel.public_id}/")
            if not handshake["handshake"]["passed"]:
                raise RuntimeError(f"the {kind} webhook handshake failed: {handshake['handshake']}")
            channels.append(channel)
        return channels

    def feed(self, stored_ids: Callable[[], set[str] | None]) -> None:
        for start in range(0, self.messages, CHUNK):
            for n in range(start, min(self.messages, start + CHUNK)):
                self.sent_ids.append(self._write(n))
            time.sleep(0.2)

    def _write(self, n: int) -> str:
        """Message ``n`` of the load, by its planned way in; returns the id the desk stores it under."""
        emulator, way, person = self.emulator, PLAN[n % len(PLAN)], n % PEOPLE
        if way == "whatsapp":
            if n % PHOTO_EVERY == PLAN.index("whatsapp"):
                sent = emulator.whatsapp(
                    self.whatsapp["id"], wa_id=_wa_id(person), name=f"Person {person}", type="image",
                    content=PHOTO, mime_type="image/png", caption=f"Screenshot {n}",
                )  # fmt: skip
            else:
                sent = emulator.whatsapp(
                    self.whatsapp["id"], f"Issue {n}: the VPN drops", wa_id=_wa_id(person), name=f"Person {person}"
                )
            return sent["wamid"]
        account = self.page["id"] if way == "facebook" or (way == "comment" and n % 20 < 10) else self.instagram["id"]
        if (n // len(PLAN)) % DROP_EVERY == 0:
            # A delivery receipt published meanwhile may take the drop instead: then nothing of this load is lost.
            emulator.drop_webhooks(1)
        if way == "comment":
            post = self.posts[account][n % POSTS]
            sent = emulator.comment(account, post, f"Comment {n}: printer jams", name=f"Person {person}")
            return f"comment:{sent['comment_id']}"
        return emulator.dm(account, f"Issue {n}: the VPN drops", name=f"Person {person}")["mid"]

    def expected_ids(self) -> set[str]:
        return set(self.sent_ids)

    def reply_copies(self) -> Counter:
        return Counter(sent["text"] for sent in self.emulator.sent())

    def reply_modes(self, count: int) -> list[str | None]:
        return [None] * count

    def storm_keys(self) -> None:
        return None  # every Graph call: polls, sends, lookups, media

    def close(self) -> None:
        self.emulator.stop()


def _wa_id(person: int) -> str:
    return f"1555010{person:04d}"
