import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from .crypto import EncryptedJSONField, mask
from .mail_transport import give_transport
from .portal_channel import equip as equip_portal
from .registry import adapter_class

#: How precisely ``Channel.last_push_at`` follows the pushes.
PUSH_MARK_SECONDS = 10


class ChannelQuerySet(models.QuerySet):
    def due_for_poll(self, now):
        """Channels to poll now: their interval has passed, or the poller holding their lease died (a live one
        renews it), so the poll it was making is due again."""
        return self.filter(enabled=True, poll_interval_seconds__gt=0, paused_reason="").filter(
            models.Q(next_poll_at__isnull=True)
            | models.Q(next_poll_at__lte=now)
            | models.Q(poll_lease_expires_at__lt=now)
        )


class Channel(models.Model):
    """One connected inbox on a platform: its configuration, credentials, cursor and health."""

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
    #: When the platform last pushed to the webhook (to the nearest PUSH_MARK_SECONDS), and when it last
    #: proved the webhook URL (Meta's hub.challenge handshake).
    last_push_at = models.DateTimeField(null=True, blank=True)
    webhook_verified_at = models.DateTimeField(null=True, blank=True)
    #: When the credentials were last checked and ``state`` refreshed (``polling.refresh_state``).
    credentials_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ChannelQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

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

    def record_success(self, *, stored, at=None):
        at = at or timezone.now()
        self.last_poll_at = self.last_success_at = at
        self.last_poll_stored = stored
        self.healthy = True
        self.last_error = ""
        self.save(update_fields=["last_poll_at", "last_success_at", "last_poll_stored", "healthy", "last_error"])

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
        self.healthy = False
        self.last_error_at = at or timezone.now()
        self.last_error = f"Credentials rejected: {message}"[:2000]
        self.save(update_fields=["healthy", "last_error_at", "last_error"])

    def record_error(self, message, *, unhealthy, retry_after=None, at=None):
        """A poll failed: when, why, and whether the channel is unhealthy; ``retry_after`` postpones the next poll."""
        at = at or timezone.now()
        self.last_poll_at = self.last_error_at = at
        self.last_error = message[:2000]
        fields = ["last_poll_at", "last_error_at", "last_error"]
        if unhealthy:
            self.healthy = False
            fields.append("healthy")
        if retry_after:
            self.next_poll_at = at + timedelta(seconds=retry_after)
            fields.append("next_poll_at")
        self.save(update_fields=fields)


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
