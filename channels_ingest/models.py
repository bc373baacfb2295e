import logging
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from channel_adapters.base import CredentialsError, EnvelopeKind, RateLimited, TransientError

from . import health
from .admin_mail import mail_channel_admins
from .crypto import EncryptedJSONField, mask
from .mail_transport import give_transport
from .portal_channel import equip as equip_portal
from .registry import adapter_class

logger = logging.getLogger(__name__)

#: How precisely ``Channel.last_push_at`` follows the pushes.
PUSH_MARK_SECONDS = 10


class ChannelQuerySet(models.QuerySet):
    def broken(self):
        """The enabled channels the admins were told are broken, and which have not recovered."""
        return self.filter(broken_since__isnull=False, enabled=True).order_by("name")

    def due_for_poll(self, now):
        """Channels to poll now: their interval has passed, or the poller holding their lease died (a live one
        renews it), so the poll it was making is due again."""
        return self.filter(enabled=True, poll_interval_seconds__gt=0, paused_reason="").filter(
            models.Q(next_poll_at__isnull=True)
            | models.Q(next_poll_at__lte=now)
            | models.Q(poll_lease_expires_at__lt=now)
        )


class ErrorKind(models.TextChoices):
    """What kind of refusal a channel's last error was: the state shown ("re-authorize needed") follows it."""

    CREDENTIALS = "credentials", "Credentials rejected"
    RATE_LIMITED = "rate_limited", "Rate limited"
    TRANSIENT = "transient", "Unreachable or failing"
    PERMANENT = "permanent", "Refused"

    @classmethod
    def of(cls, exc: Exception) -> "ErrorKind":
        if isinstance(exc, CredentialsError):
            return cls.CREDENTIALS
        if isinstance(exc, RateLimited):
            return cls.RATE_LIMITED
        if isinstance(exc, TransientError):
            return cls.TRANSIENT
        return cls.PERMANENT


class Channel(models.Model):
    """One connected inbox on a platform: its configuration, credentials, cursor and health."""

    #: ``health.is_broken`` in SQL, so the alert's conditional UPDATE decides on the row as it is now.
    BROKEN = models.Q(enabled=True) & (
        models.Q(healthy=False) | models.Q(consecutive_failures__gte=health.BROKEN_AFTER_FAILURES)
    )

    kind = models.CharField(max_length=32)
    name = models.SlugField(max_length=64, unique=True)
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    config = models.JSONField(default=dict, blank=True)
    secrets = EncryptedJSONField(blank=True, default=dict)
    #: Facts learned from the platform (e.g. our own bot's user id), refreshed on credential checks.
    state = models.JSONField(default=dict, blank=True)
    cursor = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    poll_interval_seconds = models.PositiveIntegerField(default=60, help_text="0 turns polling off.")
    next_poll_at = models.DateTimeField(null=True, blank=True)
    poll_lease_token = models.UUIDField(null=True, blank=True, editable=False)
    poll_lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_poll_at = models.DateTimeField(null=True, blank=True)
    last_poll_stored = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    healthy = models.BooleanField(default=True)
    #: Why polling is paused (e.g. the monthly budget is spent); empty when it is not.
    paused_reason = models.TextField(blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_error_kind = models.CharField(max_length=16, choices=ErrorKind.choices, blank=True)
    #: Failed platform calls in a row (polls, credential checks, deliveries and downloads the credentials were
    #: refused for); a success resets it, a rate limit leaves it.
    consecutive_failures = models.PositiveIntegerField(default=0)
    #: Since when the admins were told the channel is broken (None: not broken, or recovered since).
    broken_since = models.DateTimeField(null=True, blank=True, editable=False)
    #: When the platform last pushed to the webhook (to the nearest PUSH_MARK_SECONDS), and when it last
    #: proved the webhook URL (Meta's hub.challenge handshake).
    last_push_at = models.DateTimeField(null=True, blank=True)
    webhook_verified_at = models.DateTimeField(null=True, blank=True)
    #: When the credentials were last checked and ``state`` refreshed (``polling.refresh_state``).
    credentials_checked_at = models.DateTimeField(null=True, blank=True)
    #: What the first complete poll imported: {"messages": n, "earliest": iso, "latest": iso} (sent times, UTC);
    #: None until then.
    first_import = models.JSONField(null=True, blank=True, editable=False)
    #: When the first import ended: the history it brought is not the channel's usual traffic (``activity``).
    first_imported_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ChannelQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [
            # The console's banner: the broken channels, on every console page an admin opens.
            models.Index(fields=["broken_since"], condition=models.Q(broken_since__isnull=False), name="channel_broken")
        ]

    def __str__(self):
        return f"{self.name} ({self.kind})"

    def __repr__(self):
        return f"<Channel {self.pk} {self.kind}:{self.name}>"

    def adapter(self):
        adapter = adapter_class(self.kind)(config=self.config, secrets=self.secrets, state=self.state)
        give_transport(adapter)
        equip_portal(adapter)
        return adapter

    def polling_limits(self) -> str:
        """What polling this channel cannot see ("" when nothing, or when it is not polled)."""
        return adapter_class(self.kind).polling_limits(self.config) if self.poll_interval_seconds else ""

    def masked_secrets(self):
        return {key: mask(value) for key, value in self.secrets.items()}

    def audited(self) -> dict:
        """What the audit log keeps of this channel: its settings, each credential only as "set (…abcd)"."""
        return {
            "kind": self.kind,
            "name": self.name,
            "enabled": self.enabled,
            "poll_interval_seconds": self.poll_interval_seconds,
            "config": {**self.config, **self.masked_secrets()},
        }

    def record_success(self, *, stored, at=None):
        at = at or timezone.now()
        self.last_poll_at = self.last_success_at = at
        self.last_poll_stored = stored
        self._record_fine(last_poll_at=at, last_success_at=at, last_poll_stored=stored)

    def record_verified(self):
        """An admin's credentials check passed: the channel is healthy again."""
        self._record_fine()

    def record_credentials_accepted(self):
        """The periodic credentials check passed: a rejection of the credentials no longer stands (a poll's
        other errors do, until a poll succeeds)."""
        if self.last_error_kind == ErrorKind.CREDENTIALS:
            self._record_fine()

    def _record_fine(self, **fields):
        self.healthy, self.last_error, self.last_error_kind, self.consecutive_failures = True, "", "", 0
        Channel.objects.filter(pk=self.pk).update(
            healthy=True, last_error="", last_error_kind="", consecutive_failures=0, **fields
        )
        self._alert_if_recovered()

    def record_first_import(self):
        """Once, after the first poll that completes: how many messages the channel holds (edits, reactions and
        delivery reports aside; rows it could not read have no sent time), sent between when and when (UTC).

        The times are compared as times, not as their stored text: platforms stamp them with different offsets.
        """
        sent = [
            datetime.fromisoformat(text).astimezone(UTC)
            for text in self.inbound.filter(payload__kind=EnvelopeKind.MESSAGE.value)
            .exclude(status=InboundMessage.Status.FAILED)
            .values_list(KeyTextTransform("sent_at", "payload"), flat=True)
            .iterator()
            if text
        ]
        self.first_import = {
            "messages": len(sent),
            "earliest": min(sent).isoformat() if sent else None,
            "latest": max(sent).isoformat() if sent else None,
        }
        self.first_imported_at = timezone.now()
        self.save(update_fields=["first_import", "first_imported_at"])

    def record_push(self, *, at=None):
        """A push arrived. Written at most once per ``PUSH_MARK_SECONDS``, so a busy webhook costs one cheap
        UPDATE that matches nothing, not a write per request."""
        at = at or timezone.now()
        Channel.objects.filter(pk=self.pk).filter(
            models.Q(last_push_at__isnull=True) | models.Q(last_push_at__lt=at - timedelta(seconds=PUSH_MARK_SECONDS))
        ).update(last_push_at=at)

    def record_credentials_rejected(self, message, *, at=None):
        """The platform refused the credentials outside a poll (a delivery, a download): unhealthy until an
        admin fixes them. The poll times are left alone: no poll ran."""
        at = at or timezone.now()
        self._record_failure(
            healthy=False,
            last_error_at=at,
            last_error=f"Credentials rejected: {message}"[:2000],
            last_error_kind=ErrorKind.CREDENTIALS,
        )

    def record_error(self, message, *, unhealthy, kind=None, retry_after=None, at=None):
        """A poll failed: when, why, of what ``kind`` (``ErrorKind.of`` the adapter's error; by default, refused
        if unhealthy, else transient), and whether the channel is unhealthy; ``retry_after`` postpones the next
        poll. A rate limit is the platform asking us to wait, not a failure."""
        at = at or timezone.now()
        kind = kind or (ErrorKind.PERMANENT if unhealthy else ErrorKind.TRANSIENT)
        fields = {"last_poll_at": at, "last_error_at": at, "last_error": message[:2000], "last_error_kind": kind}
        if unhealthy:
            fields["healthy"] = False
        if retry_after:
            fields["next_poll_at"] = at + timedelta(seconds=retry_after)
        self._record_failure(counted=kind != ErrorKind.RATE_LIMITED, **fields)

    def _record_failure(self, *, counted=True, **fields):
        for name, value in fields.items():
            setattr(self, name, value)
        # Counted in the database: a poll and a delivery may fail at the same moment in two workers.
        increment = {"consecutive_failures": models.F("consecutive_failures") + 1} if counted else {}
        Channel.objects.filter(pk=self.pk).update(**fields, **increment)
        if counted:
            self.refresh_from_db(fields=["consecutive_failures"])
        self._alert_if_broke()

    # Admins are told when the channel breaks, and again when it recovers: once per change, whatever the number
    # of workers recording at once. Each UPDATE's condition is checked on the row as it is when it runs (after
    # waiting for another worker's write to it), so of two workers seeing the same change only one makes it. A
    # failure can only break a channel and a success only mend it; whichever writes the row last leaves
    # ``broken_since`` agreeing with it.

    def _alert_if_broke(self):
        now = timezone.now()
        if Channel.objects.filter(Channel.BROKEN, pk=self.pk, broken_since__isnull=True).update(broken_since=now):
            self.broken_since = now
            self._alert(ChannelAlert.Kind.BROKE, self.last_error or f"{self.consecutive_failures} failures in a row")

    def _alert_if_recovered(self):
        if (
            Channel.objects.filter(pk=self.pk, broken_since__isnull=False)
            .exclude(Channel.BROKEN)
            .update(broken_since=None)
        ):
            self.broken_since = None
            self._alert(ChannelAlert.Kind.RECOVERED, "It works again.")

    def _alert(self, kind, message):
        alert = ChannelAlert.objects.create(channel=self, kind=kind, message=message[:2000])
        logger.log(logging.ERROR if kind == ChannelAlert.Kind.BROKE else logging.INFO, "channel %s: %s", self, alert)
        subject = f"Channel {self.name} {'is broken' if kind == ChannelAlert.Kind.BROKE else 'recovered'}"
        body = (
            f"{self} {alert.get_kind_display().lower()} at {alert.at:%Y-%m-%d %H:%M} UTC.\n\n{message}\n\n"
            "The console's Channels page shows every channel's health."
        )
        transaction.on_commit(lambda: mail_channel_admins(subject, body))


class InboundMessageQuerySet(models.QuerySet):
    def activity(self, now) -> dict[int, health.Activity]:
        """Every channel's inbound activity (``health.Activity``), counted by the database in two queries
        whatever the number of channels: the last week's and the last hour's messages and the newest, then
        the oldest message still pending. A channel's first import is history, not its traffic: left out."""
        week = (
            self.filter(received_at__gte=now - health.TYPICAL_WINDOW)
            .filter(
                models.Q(channel__first_imported_at__isnull=True)
                | models.Q(received_at__gt=models.F("channel__first_imported_at"))
            )
            .order_by()
            .values("channel")
            .annotate(
                last_week=models.Count("pk"),
                last_hour=models.Count("pk", filter=models.Q(received_at__gte=now - timedelta(hours=1))),
                last_received_at=models.Max("received_at"),
            )
        )
        pending = dict(
            self.filter(status=InboundMessage.Status.PENDING)
            .order_by()
            .values("channel")
            .annotate(oldest=models.Min("received_at"))
            .values_list("channel", "oldest")
        )
        counted = {
            row["channel"]: health.Activity(
                last_hour=row["last_hour"],
                last_week=row["last_week"],
                last_received_at=row["last_received_at"],
                oldest_pending_at=pending.pop(row["channel"], None),
            )
            for row in week
        }
        return counted | {channel: health.Activity(oldest_pending_at=at) for channel, at in pending.items()}


class InboundMessage(models.Model):
    """A raw inbound event, stored exactly once per (channel, external id) before anything else happens."""

    class Status(models.TextChoices):
        PENDING = "pending"
        TRIAGE = "triage", "Awaiting triage"
        PROCESSED = "processed"
        SKIPPED = "skipped"
        FAILED = "failed"

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="inbound")
    external_id = models.CharField(max_length=255)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    triaged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    triaged_at = models.DateTimeField(null=True, blank=True)

    objects = InboundMessageQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"], name="inbound_unique_per_channel"),
        ]
        indexes = [
            models.Index(
                fields=["channel", "id"],
                condition=models.Q(status="pending"),
                name="inbound_pending",
            ),
            models.Index(
                fields=["channel", "id"],
                condition=models.Q(status="triage"),
                name="inbound_triage",
            ),
            # The Channels page's rates: the last week's rows, counted per channel from the index alone.
            models.Index(fields=["received_at", "channel"], name="inbound_received"),
        ]

    def __str__(self):
        return f"{self.channel_id}:{self.external_id} ({self.status})"


class PriceRule(models.Model):
    """What one unit of a billable platform operation costs; admins keep it in line with the platform's prices."""

    kind = models.CharField(max_length=32)
    operation = models.CharField(max_length=64)
    unit_price = models.DecimalField(max_digits=10, decimal_places=6, help_text="US dollars per unit")
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "operation"], name="price_unique_per_operation")]
        ordering = ["kind", "operation"]

    def __str__(self):
        return f"{self.kind} {self.operation}: ${self.unit_price}"


class ApiUsage(models.Model):
    """Billable calls of one channel in one month, with their estimated cost at the prices of the time."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="usage")
    month = models.DateField(help_text="The first day of the month.")
    operation = models.CharField(max_length=64)
    units = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)

    class Meta:
        verbose_name_plural = "API usage"
        constraints = [
            models.UniqueConstraint(fields=["channel", "month", "operation"], name="usage_unique_per_month"),
        ]

    def __str__(self):
        return f"{self.channel_id} {self.month:%Y-%m} {self.operation}: {self.units} (${self.cost})"


class ChannelAlert(models.Model):
    """A channel broke or recovered: what the admins were told, by email and in the console."""

    class Kind(models.TextChoices):
        BROKE = "broke", "Broke"
        RECOVERED = "recovered", "Recovered"

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    message = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.message}"
