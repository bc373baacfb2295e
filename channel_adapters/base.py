"""The adapter contract.

An adapter turns one platform's wire protocol into normalized ``Envelope``s
and sends replies back. It is stateless apart from what it is built with
(a channel's config, secrets and learned state), never touches the ORM, and
reports failures with the exceptions below so the pipeline can decide what is
transient, what is the channel's fault and what is bad input.

Subclasses set ``kind`` and ``capabilities`` and implement the methods their
capabilities promise: ``poll`` (POLL), ``handle_webhook`` (WEBHOOK),
``send`` (REPLY). ``check_credentials`` is always required. A channel whose
messages carry files implements ``fetch_attachment``; one whose reply modes
allow attachments (``ReplyMode.attachments``) implements ``send_attachment``.

Exactly once, out: ``send`` gets a stable ``key`` per reply (the same on every
attempt) and raises ``OutcomeUnknown`` when the request may have reached the
platform without an answer. An adapter that can ask its platform whether a
reply arrived sets ``finds_sent`` and implements ``find_sent``; the pipeline
then looks before it sends again, instead of posting a second copy.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


class Capability(enum.StrEnum):
    POLL = "poll"
    WEBHOOK = "webhook"
    REPLY = "reply"


class EnvelopeKind(enum.StrEnum):
    MESSAGE = "message"
    EDIT = "edit"
    DELETE = "delete"
    #: A platform's delivery report on one of our replies (``DeliveryReport`` says what ``meta`` holds).
    STATUS = "status"
    #: A reaction added to (or taken off) a stored message: ``meta`` = {"emoji": ..., "removed": bool}.
    REACTION = "reaction"


class DeliveryReport(enum.StrEnum):
    """What a ``STATUS`` envelope reports, in ``meta["status"]``.

    ``target_id`` is the reply's id as ``send`` returned it (``Sent.external_id``). A report on everything
    up to a moment (Messenger's read watermark) has no ``target_id`` and ``meta["up_to"]`` (ISO time) instead:
    it covers every reply in ``thread_key`` sent until then. ``FAILED`` carries the platform's words in
    ``meta["error"]``. Where the platform hands back the key the reply was sent with, ``meta["key"]`` has it:
    a report then confirms a reply whose send went unanswered (``SENT`` says only that the platform took it).
    """

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


@dataclass(frozen=True)
class Sender:
    """A person on a platform. ``namespace`` scopes ``external_id`` (e.g. one Slack workspace)."""

    namespace: str
    external_id: str
    handle: str = ""
    display_name: str = ""
    email: str = ""


@dataclass(frozen=True)
class InboundAttachment:
    """A file that came with a message. ``ref`` is opaque outside the adapter: it hands it back to
    ``fetch_attachment`` to get the bytes. ``size`` is what the platform declared (0 if unknown).
    ``alt_text`` is what the sender wrote about what an image shows, if anything."""

    name: str
    content_type: str
    size: int
    ref: str
    alt_text: str = ""


@dataclass(frozen=True)
class Envelope:
    """One inbound event, normalized.

    ``external_id`` is unique per channel for this event and is what makes
    storing it idempotent. ``thread_key`` names the conversation it belongs
    to; replies go back to the same key. For edits and deletions,
    ``target_id`` is the ``external_id`` of the message they change.
    ``public`` messages are visible to everyone and pass the channel's
    triage rules before they open a ticket. ``reopens`` says whether a new
    message on a resolved ticket's conversation reopens it (a thread) or
    starts a new ticket (a DM conversation). ``meta`` keeps the facts the
    adapter needs later to reply (e.g. whether the author summoned us).
    ``refers_to`` names earlier messages this one answers, nearest first (an
    email's In-Reply-To and References): if one of them is stored on the
    channel, the message joins that message's conversation rather than
    ``thread_key``'s. ``ticket_number`` is a desk ticket the message names
    itself (an email subject's ``[#123]``): it joins that ticket's
    conversation on the channel when its sender takes part in the ticket.
    ``copied`` are the other people it was addressed to (an email's Cc): they
    follow the ticket and receive its public replies. ``subject`` is the
    conversation's own title where the platform has one (an email's Subject):
    a ticket it opens is named by it rather than by its first words.
    """

    external_id: str
    kind: EnvelopeKind
    thread_key: str
    sent_at: datetime
    sender: Sender | None = None
    text: str = ""
    starts_thread: bool = False
    target_id: str = ""
    public: bool = False
    reopens: bool = True
    meta: dict = field(default_factory=dict)
    attachments: tuple[InboundAttachment, ...] = ()
    refers_to: tuple[str, ...] = ()
    ticket_number: int | None = None
    copied: tuple[Sender, ...] = ()
    subject: str = ""

    def to_json(self) -> dict:
        # Written out rather than dataclasses.asdict(), which deep-copies and is the hot spot of a poll.
        return {
            "external_id": self.external_id,
            "kind": str(self.kind),
            "thread_key": self.thread_key,
            "sent_at": self.sent_at.isoformat(),
            "sender": vars(self.sender).copy() if self.sender else None,
            "text": self.text,
            "starts_thread": self.starts_thread,
            "target_id": self.target_id,
            "public": self.public,
            "reopens": self.reopens,
            "meta": self.meta,
            "attachments": [vars(attachment).copy() for attachment in self.attachments],
            "refers_to": list(self.refers_to),
            "ticket_number": self.ticket_number,
            "copied": [vars(person).copy() for person in self.copied],
            "subject": self.subject,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> Envelope:
        sender = data.get("sender")
        return cls(
            external_id=data["external_id"],
            kind=EnvelopeKind(data["kind"]),
            thread_key=data["thread_key"],
            sent_at=datetime.fromisoformat(data["sent_at"]),
            sender=Sender(**sender) if sender else None,
            text=data.get("text", ""),
            starts_thread=data.get("starts_thread", False),
            target_id=data.get("target_id", ""),
            public=data.get("public", False),
            reopens=data.get("reopens", True),
            meta=data.get("meta") or {},
            attachments=tuple(InboundAttachment(**item) for item in data.get("attachments") or ()),
            refers_to=tuple(data.get("refers_to") or ()),
            ticket_number=data.get("ticket_number"),
            copied=tuple(Sender(**person) for person in data.get("copied") or ()),
            subject=data.get("subject", ""),
        )


@dataclass(frozen=True)
class ReplyTarget:
    """Where a reply goes: the conversation, how (``mode``), and the message it answers."""

    thread_key: str
    mode: str = ""
    reply_to: str = ""
    reply_to_meta: dict = field(default_factory=dict)
    recipient: str = ""
    #: When the person last wrote in this conversation (platforms with customer-service windows count from it).
    last_inbound_at: datetime | None = None
    #: Who else follows the conversation (an email's Cc'd people), by their ids on the platform: they receive
    #: the public replies too.
    followers: tuple[str, ...] = ()
    #: The desk's number for the ticket (an email subject's ``[#123]``).
    ticket_number: int | None = None
    #: Who on the desk writes the reply (an agent's name); "" for the desk itself (an acknowledgement).
    author_name: str = ""
    #: The reply's own subject, where the platform has subjects (an acknowledgement's); "" for the usual one.
    subject: str = ""


@dataclass(frozen=True)
class AttachmentLimits:
    """What files a reply mode can carry: how many, and how large each may be.

    ``by_type`` gives some kinds their own size limit, by content-type prefix (``("video/", 16 MB)``); with
    ``other_types`` false, files of no listed kind are refused (Instagram takes images, video and audio only).
    """

    max_files: int
    max_bytes: int
    by_type: tuple[tuple[str, int], ...] = ()
    other_types: bool = True

    def max_bytes_for(self, content_type: str) -> int | None:
        """How large a file of ``content_type`` may be; None when such files are not taken at all."""
        for prefix, limit in self.by_type:
            if content_type.lower().startswith(prefix):
                return min(limit, self.max_bytes)
        return self.max_bytes if self.other_types else None

    def capped(self, max_bytes: int) -> AttachmentLimits:
        """These limits, with no file larger than ``max_bytes`` (the desk's own cap)."""
        return AttachmentLimits(
            max_files=self.max_files,
            max_bytes=min(self.max_bytes, max_bytes),
            by_type=tuple((prefix, min(limit, max_bytes)) for prefix, limit in self.by_type),
            other_types=self.other_types,
        )


@dataclass(frozen=True)
class ReplyMode:
    """One way to answer on this channel (e.g. a public reply or a DM), and whether it is allowed now.

    ``attachments`` is None when replies this way carry text only.
    """

    key: str
    label: str
    max_length: int
    allowed: bool = True
    reason: str = ""
    attachments: AttachmentLimits | None = None
    #: Until when this mode stays allowed (a platform's reply window); the composer counts down to it.
    expires_at: datetime | None = None
    #: An approved message template this mode sends (WhatsApp outside its window): its body, whose ``{{1}}``,
    #: ``{{2}}``… the agent's text fills, one line each. "" for free text.
    template_body: str = ""


@dataclass(frozen=True)
class OutboundFile:
    """A file an agent attached to a reply."""

    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Sent:
    """A delivered reply. ``thread_key`` is set when the reply opened a new conversation (e.g. moved to DM).
    ``answered_meta`` are facts to keep on the message it answered (``ReplyTarget.reply_to``), which its next
    ``reply_modes`` reads there (e.g. that a comment's one private reply is used)."""

    external_id: str
    thread_key: str = ""
    answered_meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Rejected:
    """An inbound item the adapter could not interpret; recorded, never silently dropped.

    ``raw`` is the item as the platform sent it (decoded JSON), kept on the failed row for an admin.
    """

    reference: str
    reason: str
    raw: object = None


#: How many days back a channel's first poll imports, unless its config says otherwise (``import_days``).
DEFAULT_IMPORT_DAYS = 7

#: How far a platform's clock may run ahead of ours. More than Slack's 5-minute signature window, so a
#: request we accept never carries a time we refuse for being early.
MAX_CLOCK_SKEW = timedelta(minutes=10)


def plausible_time(moment: datetime, *, platform_epoch: datetime) -> datetime:
    """``moment`` if the platform could have stamped it: not before the platform existed, and not later than
    now plus ``MAX_CLOCK_SKEW``. Raises ``ValueError`` otherwise.

    An absurd time is refused rather than clamped: on these platforms the time is part of the message's
    identity (a Slack ``ts``), so such an item is not the platform's own; refused, it becomes a 400 or a
    failed row that keeps the raw payload, and it never sorts its ticket above every other one.
    """
    if moment.tzinfo is None:
        raise ValueError(f"time without a timezone: {moment.isoformat()}")
    if not platform_epoch <= moment <= datetime.now(UTC) + MAX_CLOCK_SKEW:
        raise ValueError(f"implausible time {moment.isoformat()}")
    return moment


@dataclass
class PollPage:
    """What one step of a poll produced, and the cursor that is safe to save once it is stored."""

    envelopes: list[Envelope]
    cursor: dict
    rejected: list[Rejected] = field(default_factory=list)


@dataclass
class WebhookResult:
    """The HTTP answer to give the platform, and what to store."""

    status: int = 200
    body: dict | str = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    envelopes: list[Envelope] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


class AdapterError(Exception):
    """A platform call failed. ``str(error)`` is safe to show and log (no credentials)."""


class TransientError(AdapterError):
    """Worth retrying later: timeouts, 5xx, rate limits."""

    def __init__(self, message, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(TransientError):
    pass


class OutcomeUnknown(TransientError):
    """A write whose request may have reached the platform, with no answer: a read timeout, or a connection
    reset after the request went out. It may have been applied. Before writing again, ask ``find_sent``
    where the adapter can; a plain ``TransientError`` (connection refused, 5xx, 429) means it was not."""


class CredentialsError(AdapterError):
    """The platform rejected our credentials; the channel is unhealthy until an admin fixes them."""


class PermanentError(AdapterError):
    """The platform refused this request for good (unknown conversation, text too long, ...)."""


class InvalidWebhook(AdapterError):
    """A push request that must be refused with ``status`` (forged, stale, malformed, unknown)."""

    def __init__(self, message, *, status: int = 400, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class ConfigError(ValueError):
    """A channel configuration that cannot work."""


class ChannelAdapter:
    kind: str = ""
    capabilities: frozenset[Capability] = frozenset()
    #: Config keys holding credentials: stored encrypted, never shown back in full.
    secret_fields: tuple[str, ...] = ()
    #: Longest reply text the platform takes.
    max_reply_length: int = 40_000
    #: Whether ``find_sent`` can tell if a reply already reached the platform.
    finds_sent: bool = False
    #: Whether the platform's delivery reports carry the key a reply was sent with (``DeliveryReport``), so that
    #: one can confirm a reply whose send went unanswered, where ``find_sent`` cannot look.
    reports_carry_key: bool = False
    #: Whether a reply's files travel in the same post as its text (an email): ``send`` then gets them as
    #: ``files`` and ``send_attachment`` is never called.
    files_with_text: bool = False

    def __init__(self, *, config: Mapping, secrets: Mapping, state: Mapping | None = None):
        self.config = dict(config)
        self.secrets = dict(secrets)
        self.state = dict(state or {})
        #: Billable platform calls made by this instance: operation → units, for the cost meter.
        self.usage: Counter[str] = Counter()

    @classmethod
    def split_config(cls, raw: Mapping) -> tuple[dict, dict]:
        """Validate a raw config and split it into (config, secrets). Raises ``ConfigError``."""
        secrets = {key: raw[key] for key in cls.secret_fields if key in raw}
        config = {key: value for key, value in raw.items() if key not in cls.secret_fields}
        return config, secrets

    def check_credentials(self) -> dict:
        """Verify the credentials against the platform and return facts to keep as channel state."""
        raise NotImplementedError

    def poll(self, cursor: Mapping) -> Iterator[PollPage]:
        """Yield pages of new envelopes, each with the cursor to save once the page is stored."""
        raise NotImplementedError

    def handle_webhook(self, *, headers: Mapping, body: bytes) -> WebhookResult:
        """Verify and interpret one push request. Raises ``InvalidWebhook`` to refuse it."""
        raise NotImplementedError

    def verify_subscription(self, params: Mapping[str, str]) -> WebhookResult:
        """Answer the platform's GET that proves we own the webhook URL (Meta's ``hub.challenge``).
        Raises ``InvalidWebhook`` when the request is not the platform's (wrong verify token)."""
        raise InvalidWebhook("This channel's webhook takes no verification requests.", status=405)

    def describe_senders(self, senders: list[Sender]) -> dict[str, Sender]:
        """Ask the platform for these senders' names; those it knows, keyed by external id. Best effort:
        never raises. Called after ingestion, never during it, and the pipeline caches what it returns."""
        return {}

    @classmethod
    def polling_limits(cls, config: Mapping) -> str:
        """What polling with this config does not see, for admins (the Channels page); "" when nothing."""
        return ""

    @classmethod
    def describe_thread(cls, key: str) -> str:
        """What kind of conversation a thread key names, in the platform's words (e.g. "DM"); "" for the usual one.

        Shown where an agent picks which of a ticket's conversations to answer.
        """
        return ""

    def reply_modes(self, target: ReplyTarget) -> list[ReplyMode]:
        """The ways an agent may answer ``target`` now; the first allowed one is the default."""
        return [ReplyMode(key="", label="Reply", max_length=self.max_reply_length)]

    def reply_length(self, text: str, mode: str) -> int:
        """How long the platform considers ``text`` (X weighs characters, for instance)."""
        return len(text)

    def send(self, *, target: ReplyTarget, text: str, key: str) -> Sent:
        """Post ``text`` as ``target`` says and return what the platform assigned.

        ``key`` names this reply and is the same on every attempt: an adapter that can, stores it with the
        post (Slack's message metadata) so that ``find_sent`` recognises it. Raises ``OutcomeUnknown`` when
        the post may have been applied without an answer. An adapter with ``files_with_text`` also takes
        ``files`` (a tuple of ``OutboundFile``) and sends them with the text.
        """
        raise NotImplementedError

    def find_sent(self, *, target: ReplyTarget, text: str, key: str, since: datetime) -> Sent | None:
        """The reply ``key`` (with ``text``) if an attempt started at ``since`` or later posted it, else None.

        Asked after an unknown outcome, before sending again; only when ``finds_sent`` is true. Raises the
        usual errors (``TransientError``: look again later).
        """
        raise NotImplementedError(f"{self.kind} cannot tell whether a reply arrived.")

    def send_attachment(self, *, target: ReplyTarget, file: OutboundFile) -> str:
        """Post one file into the conversation ``target`` names (after the reply's text); returns the
        platform's id for it. Called once per file, so a retry resends only the files not yet sent."""
        raise PermanentError(f"{self.kind} replies carry text only; this file was not sent.")

    def fetch_attachment(self, ref: str) -> Iterator[bytes]:
        """The bytes of an inbound file, in chunks, from the ``ref`` its envelope carried.

        Raises the usual errors (``TransientError`` is retried). The caller may stop reading early
        (a file over the size cap), so the generator must release its connection when closed.
        """
        raise PermanentError(f"{self.kind} messages carry no files to fetch.")
