import logging
import re
import uuid
from functools import cache
from zoneinfo import available_timezones

import holidays
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.text import capfirst

from .business_hours import parse_hours
from .marks import WriteMark
from .patterns import RoutingError, check_pattern
from .placeholders import fill, validate_placeholders
from .querysets import ContactQuerySet, MacroQuerySet, MessageQuerySet, TicketEventQuerySet, TicketQuerySet

logger = logging.getLogger(__name__)

SUBJECT_LENGTH = 200
#: What PostgreSQL text refuses: U+0000, and lone UTF-16 surrogates (half of an escaped pair, "\ud83d").
UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


class Queue(models.Model):
    """A team's work queue (service desk, network, ...)."""

    name = models.CharField(max_length=100, unique=True)

    def __str__(self):
        return self.name


class Category(models.Model):
    """What a ticket is about (Hardware, Access, Network…): a list admins keep."""

    name = models.CharField(max_length=100, unique=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self):
        return self.name


class Service(models.Model):
    """A service the desk supports (VPN, Email, Payroll…), which an incident or change affects: a list admins keep."""

    name = models.CharField(max_length=100, unique=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Contact(models.Model):
    """A person who asks for help. One contact may have identities on many channels."""

    display_name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    #: What routing rules and SLA policies may look at (issue 13): a VIP's tickets may get tighter targets.
    vip = models.BooleanField("VIP", default=False)
    department = models.CharField(max_length=100, blank=True)
    #: A language tag (``en``, ``de``): which acknowledgement template they get, and which rules match.
    language = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ContactQuerySet.as_manager()

    class Meta:
        # The portal finds a person's tickets by their address, in any case (``ContactQuerySet.with_email``).
        indexes = [models.Index(Upper("email"), name="contact_email_any_case")]

    def __str__(self):
        return self.display_name


class Identity(models.Model):
    """A contact's account on one platform. ``namespace`` is opaque here: the channel layer names it."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="identities")
    namespace = models.CharField(max_length=100)
    external_id = models.CharField(max_length=191)
    handle = models.CharField(max_length=191, blank=True)
    display_name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(fields=["namespace", "external_id"], name="identity_unique_per_namespace"),
        ]
        indexes = [models.Index(Upper("email"), name="identity_email_any_case")]

    def __str__(self):
        return self.display_name or self.handle or self.external_id


class Ticket(models.Model):
    class Status(models.TextChoices):
        NEW = "new"
        OPEN = "open"
        PENDING = "pending", "Pending (waiting on requester)"
        RESOLVED = "resolved"
        CLOSED = "closed"

    class Priority(models.IntegerChoices):
        """Stored low to high (sorting by priority puts the most urgent first); named as ITIL numbers them."""

        LOW = 1, "P4 · Low"
        NORMAL = 2, "P3 · Normal"
        HIGH = 3, "P2 · High"
        URGENT = 4, "P1 · Urgent"

    class Level(models.IntegerChoices):
        """Impact and urgency, as ITIL rates them: the priority follows from both (``PriorityMatrix``)."""

        HIGH = 1
        MEDIUM = 2
        LOW = 3

    class Kind(models.TextChoices):
        """ITIL record types."""

        INCIDENT = "incident"
        SERVICE_REQUEST = "service_request", "Service request"
        PROBLEM = "problem"
        CHANGE = "change"

    class Approval(models.TextChoices):
        """A change's approval by its named approver (``tickets.itil``); blank until the change is planned."""

        NONE = "", "—"
        PENDING = "pending", "Awaiting approval"
        APPROVED = "approved"
        REJECTED = "rejected"

    CLOSED_STATUSES = (Status.RESOLVED, Status.CLOSED)
    #: A message from the requester puts a ticket waiting on them, or done, back in the agents' hands.
    REOPENED_BY_REQUESTER = (Status.PENDING, *CLOSED_STATUSES)

    subject = models.CharField(max_length=SUBJECT_LENGTH)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    kind = models.CharField(max_length=24, choices=Kind.choices, default=Kind.INCIDENT)
    requester = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="tickets")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tickets"
    )
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    team = models.ForeignKey("Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    service = models.ForeignKey(Service, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    impact = models.PositiveSmallIntegerField(choices=Level.choices, default=Level.MEDIUM)
    urgency = models.PositiveSmallIntegerField(choices=Level.choices, default=Level.MEDIUM)
    #: Set when an agent chose the priority (with a reason) instead of the matrix's; kept until the impact or the
    #: urgency changes again, which recomputes the priority from the matrix (``tickets.itil``).
    priority_overridden = models.BooleanField(default=False)
    #: The problem that explains this incident (``tickets.itil.link_problem``).
    problem = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="incidents",
        limit_choices_to={"kind": Kind.PROBLEM},
    )
    #: A change's planned window and its approval by a named approver (``tickets.itil``).
    change_start = models.DateTimeField(null=True, blank=True)
    change_end = models.DateTimeField(null=True, blank=True)
    change_approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    change_approval = models.CharField(max_length=16, choices=Approval.choices, blank=True)
    change_decided_at = models.DateTimeField(null=True, blank=True)
    #: When the desk first answered the requester, and when it must (first response) and must have resolved the
    #: ticket by, under its SLA policy; no due time without a policy.
    first_responded_at = models.DateTimeField(null=True, blank=True)
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    #: Free labels (routing rules add them): a short list of words.
    tags = models.JSONField(default=list, blank=True)
    #: The SLA policy that applies (the first matching one, ``tickets.sla``), and its clock's stored state:
    #: when the clock was paused (the ticket went Pending), the next instant the scan must look at the ticket
    #: (a warning or a breach), and when each warning and breach was recorded (each exactly once).
    sla_policy = models.ForeignKey(
        "SlaPolicy", null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    #: When the desk logged the ticket, from which its SLA clock runs: not the first message's own time, so a
    #: message read late (a first import of history, mail fetched after an outage) is not born breached.
    sla_started_at = models.DateTimeField(null=True, blank=True)
    sla_paused_at = models.DateTimeField(null=True, blank=True)
    sla_next_check_at = models.DateTimeField(null=True, blank=True)
    first_response_warned_at = models.DateTimeField(null=True, blank=True)
    first_response_breached_at = models.DateTimeField(null=True, blank=True)
    resolution_warned_at = models.DateTimeField(null=True, blank=True)
    resolution_breached_at = models.DateTimeField(null=True, blank=True)
    #: The channel the ticket was opened from.
    channel = models.ForeignKey(
        "channels_ingest.Channel", null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    #: Set when this ticket was merged into another: its conversations and messages live there now.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_tickets"
    )

    objects = TicketQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["-last_activity_at", "-id"], name="ticket_activity"),
            models.Index(fields=["status", "-last_activity_at", "-id"], name="ticket_status_activity"),
            # The queue's other sorts (?sort=created, ?sort=priority): read in order, not sorted per request.
            models.Index(fields=["-created_at", "-id"], name="ticket_created"),
            models.Index(fields=["-priority", "-last_activity_at", "-id"], name="ticket_priority_activity"),
            # Reports (tickets/reports.py): response and resolution times over the tickets answered or resolved in
            # a period, read from the index alone; the backlog by age and the open tickets per agent, from the
            # open tickets only (a small part of a desk's history).
            models.Index(
                fields=["first_responded_at"],
                include=["created_at"],
                condition=models.Q(first_responded_at__isnull=False),
                name="ticket_first_responded",
            ),
            models.Index(
                fields=["resolved_at"],
                include=["created_at", "assignee"],
                condition=models.Q(resolved_at__isnull=False),
                name="ticket_resolved",
            ),
            models.Index(
                fields=["created_at", "assignee"],
                condition=~models.Q(status__in=["resolved", "closed"]),
                name="ticket_open_created",
            ),
            # The SLA scan reads only the running clocks close to due (tickets.sla.scan): its cost follows
            # what is due, not the number of tickets.
            models.Index(
                fields=["sla_next_check_at"],
                condition=models.Q(status__in=["new", "open"], sla_next_check_at__isnull=False),
                name="ticket_sla_next_check",
            ),
            # The queue's "Due" sort (soonest first, no SLA last: PostgreSQL's default NULLS LAST).
            models.Index(fields=["resolution_due_at", "id"], name="ticket_resolution_due"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(change_start=None)
                | models.Q(change_end=None)
                | models.Q(change_end__gt=F("change_start")),
                name="ticket_change_window_ends_after_start",
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.subject}"

    @property
    def is_open(self):
        return self.status not in self.CLOSED_STATUSES

    def conversation_home(self) -> "Ticket":
        """The ticket this one's conversations live in: itself, or the ticket it was merged into (and on, if that
        one was merged in turn; ``tickets.merging``). One query per merge followed."""
        home = self
        while home.merged_into_id is not None:
            home = home.merged_into
        return home

    @staticmethod
    def subject_from_text(text):
        first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
        first_line = " ".join(first_line.split()) or "(no text)"
        if len(first_line) > SUBJECT_LENGTH:
            first_line = first_line[: SUBJECT_LENGTH - 1] + "…"
        return first_line

    def set_status(self, status, *, at, actor=None, actor_label="", reason="") -> "TicketEvent | None":
        """Move to ``status``: resolving (or closing) stamps ``resolved_at`` once, reopening clears it.

        Returns the change's timeline event (``TicketEvent.status_change``), unsaved so that a caller changing
        many tickets writes them in one INSERT; None if the status was already ``status``.
        """
        if status not in self.Status.values:
            raise ValueError(f"Unknown status {status!r}")
        if status == self.status:
            return None
        old, self.status = self.status, status
        if status in self.CLOSED_STATUSES:
            if self.resolved_at is None:
                self.resolved_at = at
        else:
            self.resolved_at = None
        return TicketEvent.status_change(
            ticket_id=self.pk, old=old, new=status, at=at, actor=actor, actor_label=actor_label, reason=reason
        )

    def record_agent_reply(self, *, at, author) -> "TicketEvent | None":
        """An agent (or, ``author`` None, the desk itself) answered: a new ticket is open from now on.

        Returns the status change's unsaved event, if there was one. Only a person's answer is the first response
        an SLA measures: an automatic acknowledgement is not."""
        event = None
        if author is not None and self.first_responded_at is None:
            self.first_responded_at = at
        if self.status == self.Status.NEW:
            reason = "replied" if author else "automatic acknowledgement"
            event = self.set_status(self.Status.OPEN, at=at, actor=author, reason=reason)
        self.last_activity_at = max(self.last_activity_at, at)
        self.message_count += 1
        return event


class PriorityMatrix(models.Model):
    """Impact x urgency → priority, one row per cell, which admins edit (the ITIL 3x3 by default, from the
    migration that made it). ``tickets.itil.matrix_priority`` reads it."""

    impact = models.PositiveSmallIntegerField(choices=Ticket.Level.choices)
    urgency = models.PositiveSmallIntegerField(choices=Ticket.Level.choices)
    priority = models.PositiveSmallIntegerField(choices=Ticket.Priority.choices)

    class Meta:
        verbose_name_plural = "priority matrix"
        ordering = ["impact", "urgency"]
        constraints = [models.UniqueConstraint(fields=["impact", "urgency"], name="priority_matrix_one_per_cell")]

    def __str__(self):
        return f"impact {self.get_impact_display()} x urgency {self.get_urgency_display()}"


class TicketThread(models.Model):
    """A conversation on a channel that belongs to a ticket. Replies go back to it."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="threads")
    channel = models.ForeignKey("channels_ingest.Channel", on_delete=models.CASCADE, related_name="threads")
    key = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)
    #: Set when the conversation's ticket was closed and a later message started a new ticket.
    detached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "key"], condition=models.Q(detached_at=None), name="thread_unique_per_channel"
            )
        ]

    def __str__(self):
        return f"{self.channel_id}:{self.key}"


class TicketFollower(models.Model):
    """Someone who follows a ticket without having opened it (an email's Cc'd people): they receive its public
    replies, and their own messages may join it (``tickets.inbound``)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="followers", db_index=False)
    identity = models.ForeignKey(Identity, on_delete=models.CASCADE, related_name="follows")
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ticket", "identity"], name="follower_unique_per_ticket"),
        ]

    def __str__(self):
        return f"{self.identity_id} follows ticket {self.ticket_id}"


class Message(models.Model):
    class Direction(models.TextChoices):
        INBOUND = "inbound"
        OUTBOUND = "outbound"
        NOTE = "note", "Internal note"

    class DeliveryStatus(models.TextChoices):
        NOT_APPLICABLE = "", "—"
        QUEUED = "queued"
        SENDING = "sending"
        SENT = "sent"
        #: The platform reported the reply on the person's device, then read (``tickets.delivery_reports``).
        DELIVERED = "delivered"
        READ = "read"
        FAILED = "failed"

    #: The longest text kept; an inbound message beyond it is cut (and says so), a reply or note beyond it is refused.
    MAX_BODY_LENGTH = 40_000

    # Both foreign keys are served by the composite indexes below, which also order by time.
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages", db_index=False)
    thread = models.ForeignKey(
        TicketThread, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages", db_index=False
    )
    direction = models.CharField(max_length=16, choices=Direction.choices)
    author_identity = models.ForeignKey(Identity, null=True, blank=True, on_delete=models.SET_NULL)
    author_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    body = models.TextField()
    #: The platform's id for this message; unique within its thread.
    external_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    #: Facts the channel keeps about this message (opaque here), e.g. whether a public reply is allowed.
    meta = models.JSONField(default=dict, blank=True)
    #: How a reply is sent, in the channel's terms (e.g. "public" or "dm"); empty for the default.
    reply_mode = models.CharField(max_length=32, blank=True)
    delivery_status = models.CharField(max_length=16, choices=DeliveryStatus.choices, blank=True)
    delivery_attempts = models.PositiveSmallIntegerField(default=0)
    delivery_error = models.TextField(blank=True)
    delivery_next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivery_started_at = models.DateTimeField(null=True, blank=True)
    #: When the worker holding this reply ``sending`` last said it was alive (it renews every few seconds, also
    #: while it waits on the platform); the sweep takes back a send whose heartbeat lapsed, and clears it then.
    delivery_heartbeat_at = models.DateTimeField(null=True, blank=True)
    #: When the earliest attempt whose outcome is unknown started (no answer after the request went out, or
    #: a worker that died mid-send): it may have arrived, so the next attempt first asks the channel.
    delivery_unconfirmed_since = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    #: When the platform last reported on this reply (delivered, read, or failed after it was sent).
    delivery_reported_at = models.DateTimeField(null=True, blank=True)
    #: Reactions people put on this message, by who reacted (``namespace:id``): the emoji.
    reactions = models.JSONField(default=dict, blank=True)
    #: Where this row's INSERT sits in commit order (tickets.marks), for the live page and the collision check.
    stored_mark = models.BigIntegerField(db_default=WriteMark(), editable=False)
    #: Where its last change that the timeline shows sits: the INSERT, then each edit, deletion and Retry.
    changed_mark = models.BigIntegerField(db_default=WriteMark(), editable=False)

    objects = MessageQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["thread", "external_id"],
                condition=~models.Q(external_id=""),
                name="message_unique_external_id_per_thread",
            ),
        ]
        indexes = [
            models.Index(fields=["ticket", "created_at", "id"], name="message_timeline"),
            models.Index(fields=["thread", "created_at", "id"], name="message_thread_timeline"),
            models.Index(
                fields=["delivery_next_attempt_at"],
                condition=models.Q(delivery_status__in=["queued", "sending"]),
                name="message_undelivered",
            ),
            models.Index(fields=["ticket", "changed_mark"], name="message_changes"),
            # A reply names what it answers by the platform's id (an email's In-Reply-To): found at any size.
            models.Index(fields=["external_id"], condition=~models.Q(external_id=""), name="message_external_id"),
            # The desk's automatic acknowledgements of the last hour, counted per requester (loop protection).
            models.Index(fields=["created_at"], condition=models.Q(meta__auto_ack=True), name="message_auto_acks"),
        ]

    def __str__(self):
        return f"{self.direction} message {self.pk} on ticket {self.ticket_id}"

    @classmethod
    def clean_body(cls, text: str) -> str:
        """Keep every character a person typed (emoji, RTL, zero-width), but nothing the database refuses,
        and no more than ``MAX_BODY_LENGTH``."""
        text = UNSTORABLE_CHARACTERS.sub("\ufffd", text)
        if len(text) > cls.MAX_BODY_LENGTH:
            dropped = len(text) - cls.MAX_BODY_LENGTH
            logger.warning("Message text truncated by %d characters", dropped)
            text = text[: cls.MAX_BODY_LENGTH] + f"\n… [truncated {dropped} characters]"
        return text

    @property
    def delivery_key(self) -> str:
        """The reply's name on its platform, the same on every attempt (where the platform keeps one, its
        reports carry it back): its id, and its creation time in microseconds, so a reused id (a restored or
        reseeded database) never names an older reply. ``MessageQuerySet.with_delivery_keys`` reads it back."""
        return f"{self.pk}-{int(self.created_at.timestamp() * 1_000_000)}"

    @property
    def delivery_stalled_since(self):
        """When this reply started waiting, if it is still queued or sending ``DELIVERY_STALE_SECONDS`` later.

        The wait starts at creation, or at the agent's Retry (which resets the attempts and schedules one
        now); a send in progress counts from its start. None while the wait is still normal.
        """
        if self.delivery_status == self.DeliveryStatus.SENDING:
            since = self.delivery_started_at or self.created_at
        elif self.delivery_status == self.DeliveryStatus.QUEUED:
            since = self.created_at
            if self.delivery_attempts == 0 and self.delivery_next_attempt_at:
                since = max(since, self.delivery_next_attempt_at)
        else:
            return None
        if (timezone.now() - since).total_seconds() < settings.DELIVERY_STALE_SECONDS:
            return None
        return since

    @property
    def author_name(self):
        if self.author_user_id:
            return self.author_user.get_full_name() or self.author_user.get_username()
        if self.author_identity_id:
            return str(self.author_identity)
        if self.direction == self.Direction.OUTBOUND:
            return SYSTEM  # the desk's own reply (an acknowledgement)
        return "unknown"


#: Who made a change that no agent made (an automatic acknowledgement, say), as the timeline names it.
SYSTEM = "System"


class TicketEvent(models.Model):
    """One change made to a ticket (status, priority, assignee or queue), for its audit trail and timeline.

    Values are stored as shown when the change was made (a queue's or agent's name), so the trail
    still reads right after a rename or deletion. An agent's change has its ``actor``; anything else's
    (a channel's message, the desk itself) its ``actor_label``. ``reason`` says what led to the change
    when it was not made directly (a reply, a merge, a macro, a bulk update).
    """

    class Kind(models.TextChoices):
        STATUS = "status"
        PRIORITY = "priority"
        ASSIGNEE = "assignee"
        QUEUE = "queue"
        #: Recorded on both tickets of a merge: ``old_value`` is the merged ticket's id, ``new_value`` the kept one's.
        MERGED = "merged"
        #: An agent removed a follower: ``old_value`` names them.
        FOLLOWER = "follower"
        #: A routing rule applied to a new ticket: ``new_value`` is the rule's name, ``reason`` what it did.
        ROUTED = "routed"
        #: The SLA: a policy chosen (``new_value`` its name and due times), a warning or a breach.
        SLA = "sla", "SLA"
        #: ITIL fields (``tickets.itil``): the record type, category, affected service, impact and urgency.
        KIND = "kind", "Type"
        CATEGORY = "category"
        SERVICE = "service"
        IMPACT = "impact"
        URGENCY = "urgency"
        #: On an incident: the problem linked (``new_value``) or unlinked (``old_value``), as "#id subject".
        PROBLEM = "problem"
        #: On a problem: an incident linked (``new_value``) or unlinked (``old_value``).
        INCIDENT = "incident", "Linked incident"
        #: A change's planned window ("start – end") and approver, and the approver's decision.
        CHANGE_PLAN = "change_plan", "Change plan"
        APPROVAL = "approval"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events", db_index=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: Who made the change when no agent did: a channel ("Slack it-help"), or the desk itself (SYSTEM).
    actor_label = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    old_value = models.CharField(max_length=200, blank=True)
    new_value = models.CharField(max_length=200, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    #: Where this row's INSERT sits in commit order (tickets.marks).
    stored_mark = models.BigIntegerField(db_default=WriteMark(), editable=False)

    objects = TicketEventQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["ticket", "created_at"], name="ticket_event_timeline"),
            models.Index(fields=["ticket", "stored_mark"], name="ticket_event_changes"),
        ]

    def __str__(self):
        return f"{self.kind} {self.old_value!r} → {self.new_value!r} on ticket {self.ticket_id}"

    @staticmethod
    def priority_value(priority: int) -> str:
        """How a priority event stores a priority: its name ("high"), which ``_display`` reads back, so old
        timelines read right whatever the priorities are called in the console."""
        return Ticket.Priority(priority).name.lower()

    @classmethod
    def status_change(cls, *, ticket_id, old, new, at, actor=None, actor_label="", reason="") -> "TicketEvent":
        """The timeline's record of a ticket's status change, unsaved. Every status change is recorded through
        here: ``Ticket.set_status``, and ingestion's set-based reopening (``tickets.inbound``).

        ``actor`` is the agent who made it; without one, ``actor_label`` names who did (SYSTEM by default).
        """
        return cls(
            ticket_id=ticket_id,
            kind=cls.Kind.STATUS,
            old_value=old,
            new_value=new,
            created_at=at,
            actor=actor,
            actor_label="" if actor else (actor_label or SYSTEM)[:200],
            reason=reason[:200],
        )

    @property
    def actor_name(self):
        if self.actor_id:
            return self.actor.get_full_name() or self.actor.get_username()
        return self.actor_label or "Someone"

    EMPTY = {
        Kind.ASSIGNEE: "nobody",
        Kind.SLA: "no SLA",
        Kind.QUEUE: "no queue",
        Kind.FOLLOWER: "removed",
        Kind.CATEGORY: "none",
        Kind.SERVICE: "none",
        Kind.PROBLEM: "none",
        Kind.INCIDENT: "none",
    }

    @property
    def merged_ticket_id(self):
        return int(self.old_value)

    @property
    def kept_ticket_id(self):
        return int(self.new_value)

    @property
    def old_display(self):
        return self._display(self.old_value)

    @property
    def new_display(self):
        return self._display(self.new_value)

    def _display(self, value):
        if self.kind == self.Kind.STATUS and value in Ticket.Status.values:
            return Ticket.Status(value).label
        if self.kind == self.Kind.PRIORITY:
            # Stored by name ("high"), shown as the console names it ("P2 · High").
            member = Ticket.Priority.__members__.get(value.upper())
            return member.label if member else capfirst(value)
        if self.kind == self.Kind.KIND and value in Ticket.Kind.values:
            return capfirst(Ticket.Kind(value).label)
        if self.kind == self.Kind.APPROVAL and value in Ticket.Approval.values:
            return capfirst(Ticket.Approval(value).label)
        return value or self.EMPTY.get(self.kind, "—")


class SavedView(models.Model):
    """An agent's own named queue: the list's filters, kept as the query string the list reads."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=60)
    #: The list's query string without paging (e.g. ``view=open&channel=3&q=vpn``).
    query = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="saved_view_name_unique_per_owner")]

    def __str__(self):
        return self.name


class Macro(models.Model):
    """A canned response: a text with placeholders, and what applying it also does to the ticket.

    Shared macros (no owner) are for every agent and managed by admins; personal ones by their owner.
    """

    class AssigneeAction(models.TextChoices):
        LEAVE = "", "Leave the assignee as it is"
        APPLIER = "applier", "Assign to the agent applying it"
        AGENT = "agent", "Assign to a specific agent"
        UNASSIGN = "unassign", "Unassign"

    name = models.CharField(max_length=100)
    body = models.TextField(
        blank=True, validators=[validate_placeholders], help_text="The reply text; may be empty for actions only."
    )
    #: The status to set; blank leaves it.
    status = models.CharField(max_length=16, choices=Ticket.Status.choices, blank=True)
    assignee_action = models.CharField(max_length=16, choices=AssigneeAction.choices, blank=True)
    #: Whom ``AssigneeAction.AGENT`` assigns. If that agent is deleted, applying the macro is refused.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: Null for a shared macro.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="macros"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MacroQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["owner", "name"], name="macro_owner_name")]

    def __str__(self):
        return self.name

    @property
    def is_shared(self):
        return self.owner_id is None

    @property
    def has_actions(self):
        return bool(self.status or self.assignee_action)

    def clean(self):
        if self.assignee_action == self.AssigneeAction.AGENT and self.assignee_id is None:
            raise ValidationError({"assignee": "Choose the agent this macro assigns tickets to."})
        if self.assignee_action != self.AssigneeAction.AGENT:
            self.assignee = None
        if not self.body.strip() and not self.has_actions:
            raise ValidationError("A macro needs a text, an action, or both.")

    def render(self, ticket, agent) -> str:
        """The macro's text for ``ticket``, as ``agent`` would send it."""
        requester = ticket.requester.display_name
        agent_name = agent.get_full_name() or agent.get_username()
        values = {
            "requester_name": requester,
            "requester_first_name": (requester.split() or [""])[0],
            "ticket_number": str(ticket.pk),
            "ticket_subject": ticket.subject,
            "agent_name": agent_name,
            "agent_first_name": agent.first_name or agent_name,
        }
        return fill(self.body, values)

    def action_labels(self) -> list[str]:
        """What applying the macro does besides the text, in words, e.g. ["Status: Resolved", "Unassign"]."""
        labels = []
        if self.status:
            labels.append(f"Status: {Ticket.Status(self.status).label}")
        if self.assignee_action == self.AssigneeAction.AGENT:
            agent = self.assignee
            labels.append(
                f"Assign to {(agent.get_full_name() or agent.get_username()) if agent else '(deleted agent)'}"
            )
        elif self.assignee_action:
            labels.append(self.AssigneeAction(self.assignee_action).label)
        return labels


def attachment_path(instance, filename):
    """Where a file is kept: a random name, so nothing a sender chose reaches the file system."""
    return f"attachments/{timezone.now():%Y/%m}/{uuid.uuid4().hex}"


class Attachment(models.Model):
    """A file that came with a message, or that an agent sent with a reply.

    Inbound files are stored ``pending`` with the channel's ``external_ref`` and downloaded after
    ingestion; ``stored`` means ``file`` holds the bytes. ``too_large`` (over ATTACHMENT_MAX_BYTES) and
    ``failed`` keep the reason in ``error``. An outbound file is ``stored`` when the reply is queued;
    ``delivered_at`` and ``external_id`` are set once the channel has it, so a retried delivery skips it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Downloading"
        STORED = "stored"
        TOO_LARGE = "too_large", "Too large"
        FAILED = "failed"

    #: Shown inline (and as thumbnails) rather than downloaded: raster images only, never SVG (it can script).
    INLINE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    #: Bytes: as declared by the platform until the file is stored, then as stored.
    size = models.PositiveBigIntegerField(default=0)
    file = models.FileField(upload_to=attachment_path, max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    #: Inbound: what the channel needs to fetch the file (opaque here).
    external_ref = models.TextField(blank=True)
    #: Inbound: what the sender wrote about what an image shows (its alt text), if anything.
    alt_text = models.TextField(blank=True)
    #: Outbound: the platform's id for the sent file.
    external_id = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="attachment_pending"),
        ]

    def __str__(self):
        return f"{self.name} ({self.status}) on message {self.message_id}"

    @property
    def is_inline_image(self):
        return self.status == self.Status.STORED and self.content_type in self.INLINE_TYPES


class AuditEntry(models.Model):
    """One configuration change (a channel, a user, a team, a shared macro…), written by ``tickets.audit``."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    #: Who, as they were called then (the user may be renamed or deleted), or the command that made the change.
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    #: What was changed: its model (``channels_ingest.channel``), primary key, and name at the time.
    target_type = models.CharField(max_length=100)
    target_id = models.CharField(max_length=64)
    target_label = models.CharField(max_length=200)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id", "-at"], name="audit_by_target")]
        verbose_name_plural = "audit entries"

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target_label}"

    def changes(self) -> list[tuple[str, object, object]]:
        """(field, before, after) for each value that differs, in a stable order."""
        before, after = self.before or {}, self.after or {}
        return [
            (key, before.get(key), after.get(key))
            for key in sorted(before.keys() | after.keys())
            if before.get(key) != after.get(key)
        ]


@cache
def time_zone_names() -> frozenset[str]:
    """The IANA time zone names the system's database knows ("Europe/Berlin", "UTC"). Read once: listing them
    walks the whole zoneinfo folder."""
    return frozenset(available_timezones())


def validate_time_zone(name):
    if name not in time_zone_names():
        raise ValidationError("%(name)s is not a time zone name such as Europe/Berlin.", params={"name": name})


class Profile(models.Model):
    """What a user sets for themselves. Created when they first save it: a user without one has the defaults."""

    DEFAULT_TIME_ZONE = "UTC"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    #: The console shows every time in this zone, named ("14:03 CET").
    time_zone = models.CharField(max_length=64, default=DEFAULT_TIME_ZONE, validators=[validate_time_zone])

    class Availability(models.TextChoices):
        """Whether a team's automatic assignment may give this agent new tickets (``tickets.routing``)."""

        AVAILABLE = "available"
        AWAY = "away"
        OFFLINE = "offline"

    availability = models.CharField(max_length=16, choices=Availability.choices, default=Availability.AVAILABLE)

    def __str__(self):
        return f"{self.user} ({self.time_zone})"


class Team(models.Model):
    """A group of agents, with an optional lead. Admins manage teams in the console (Users, Teams)."""

    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="led_teams"
    )

    class Assignment(models.TextChoices):
        """How a routing rule that sends a ticket to this team picks its assignee (``tickets.routing``)."""

        NONE = "", "Nobody (the team picks)"
        ROUND_ROBIN = "round_robin", "Round-robin"
        LEAST_LOADED = "least_loaded", "Least loaded (fewest open tickets)"

    assignment = models.CharField(max_length=16, choices=Assignment.choices, blank=True, default="")
    #: Round-robin's pointer: the member who got the team's last ticket (updated under the team's row lock).
    last_assigned = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class RoutingRule(models.Model):
    """One routing rule (``tickets.routing``): conditions a new ticket must all meet, and what then happens to it.

    Rules are tried by ``position``; the first that matches applies and ends the routing, unless it says
    ``continue_matching``: then later rules are tried too (a later rule's actions win where both set something).
    A condition left empty matches anything.
    """

    class Vip(models.TextChoices):
        ANY = "", "Anyone"
        YES = "yes", "VIP only"
        NO = "no", "Not VIP"

    name = models.CharField(max_length=100, unique=True)
    position = models.PositiveIntegerField(default=0, db_index=True)
    active = models.BooleanField(default=True)
    continue_matching = models.BooleanField(
        "Continue", default=False, help_text="After this rule applies, try the rules below it too."
    )
    # Conditions.
    channel_kind = models.CharField(max_length=32, blank=True, help_text="A kind of channel (slack, email…).")
    channel = models.ForeignKey(
        "channels_ingest.Channel", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    keywords = models.CharField(
        max_length=500, blank=True, help_text="Comma-separated words; any one of them in the text matches."
    )
    pattern = models.CharField(
        "Regular expression", max_length=200, blank=True, help_text="Searched in the text, ignoring case."
    )
    department = models.CharField(max_length=100, blank=True)
    vip = models.CharField("VIP", max_length=3, choices=Vip.choices, blank=True, default="")
    language = models.CharField(max_length=16, blank=True, help_text="A language tag (de, es…).")
    kind = models.CharField("Type", max_length=24, choices=Ticket.Kind.choices, blank=True)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    time_from = models.TimeField(null=True, blank=True, help_text="From (inclusive), with Until; may cross midnight.")
    time_until = models.TimeField(null=True, blank=True, help_text="Until (exclusive).")
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    # Actions.
    set_queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    set_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    set_priority = models.PositiveSmallIntegerField(choices=Ticket.Priority.choices, null=True, blank=True)
    raise_priority = models.BooleanField(default=False, help_text="Raise the priority one step (up to Urgent).")
    set_kind = models.CharField(max_length=24, choices=Ticket.Kind.choices, blank=True)
    set_category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    add_tags = models.CharField(max_length=200, blank=True, help_text="Comma-separated tags to add.")
    set_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        if (self.time_from is None) != (self.time_until is None):
            errors["time_until"] = "Give both ends of the time window, or neither."
        try:
            check_pattern(self.pattern)
        except RoutingError as exc:
            errors["pattern"] = str(exc)
        if errors:
            raise ValidationError(errors)


def validate_working_hours(value):
    try:
        parse_hours(value)
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValidationError(f"Invalid working hours: {exc}") from exc


class Calendar(models.Model):
    """Business hours for SLA clocks: a working week in a time zone, minus public holidays and custom dates.

    ``hours`` maps a weekday (Monday "0" … Sunday "6") to local intervals: ``{"0": [["08:00", "18:00"]]}``
    ("24:00" ends at midnight). ``always_open`` (24/7) ignores hours and holidays."""

    name = models.CharField(max_length=100, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    always_open = models.BooleanField(default=False)
    hours = models.JSONField(default=dict, blank=True, validators=[validate_working_hours])
    #: Public holidays from the ``holidays`` package: an ISO country code ("DE") and optional subdivision ("BE").
    holiday_country = models.CharField(max_length=2, blank=True)
    holiday_subdivision = models.CharField(max_length=10, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        if self.holiday_country:
            try:
                holidays.country_holidays(self.holiday_country, subdiv=self.holiday_subdivision or None)
            except NotImplementedError as exc:
                raise ValidationError({"holiday_country": str(exc)}) from exc
        if not self.always_open and not any((self.hours or {}).values()):
            raise ValidationError({"hours": "Give working hours, or make the calendar 24/7."})


class CalendarHoliday(models.Model):
    """A custom closed day on a calendar (a company holiday), besides the public ones."""

    calendar = models.ForeignKey(Calendar, on_delete=models.CASCADE, related_name="custom_holidays")
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="calendar_holiday_once")]

    def __str__(self):
        return f"{self.date} {self.name}".strip()


class SlaPolicy(models.Model):
    """First-response and resolution targets for the tickets it matches, on a business-hours calendar.

    Policies are tried in ``position`` order and the first whose conditions all hold applies; a blank
    condition matches any ticket. On a breach the policy's escalations run (``tickets.sla``)."""

    name = models.CharField(max_length=100, unique=True)
    position = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    # Conditions (blank = any).
    priorities = models.JSONField(default=list, blank=True, help_text="Priority numbers (1 low … 4 urgent).")
    kind = models.CharField(max_length=24, choices=Ticket.Kind.choices, blank=True)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    vip_only = models.BooleanField(default=False)
    # Targets, in business time on the calendar.
    first_response_minutes = models.PositiveIntegerField()
    resolution_minutes = models.PositiveIntegerField()
    calendar = models.ForeignKey(Calendar, on_delete=models.PROTECT, related_name="policies")
    #: Warn when this share of a target's business time has passed.
    warning_percent = models.PositiveSmallIntegerField(default=75)
    # Escalation on breach.
    notify = models.BooleanField(default=True, help_text="Email the assignee and the team lead.")
    reassign_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reassign_to_team = models.ForeignKey("Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    raise_priority = models.BooleanField(default=False)

    class Meta:
        ordering = ["position", "id"]
        verbose_name_plural = "SLA policies"

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        if not 1 <= self.warning_percent <= 99:
            raise ValidationError({"warning_percent": "Give a share between 1 and 99 %."})
        if any(p not in Ticket.Priority.values for p in self.priorities or []):
            raise ValidationError({"priorities": "Unknown priority."})
        if not self.first_response_minutes or not self.resolution_minutes:
            raise ValidationError("Targets must be at least a minute.")
