"""The Channels page: every channel's health (``channels_ingest.health``), polling, webhook, failed inbound
messages and this month's estimated spend, and the latest alerts; admins re-queue the failed messages from it."""

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, Sum
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from channel_adapters.base import DEFAULT_IMPORT_DAYS, Capability, ChannelAdapter
from channels_ingest import health, ingest
from channels_ingest.models import ApiUsage, Channel, ChannelAlert, InboundMessage
from channels_ingest.registry import adapter_class
from channels_ingest.usage import month_start, monthly_budget
from tickets.roles import Role

from .access import admin_required, agent_required, request_role
from .context_processors import DISMISSED_BANNER, banner_key

#: The alerts listed under the channels, newest first.
RECENT_ALERTS = 10


def _money(amount: Decimal) -> str:
    if 0 < amount < Decimal("0.005"):
        return "under $0.01"
    return f"${amount:,.2f}"


def webhook_url(request, channel) -> str:
    """The address an admin gives the platform to push to: under ``PUBLIC_BASE_URL`` (how the platform reaches
    the helpdesk, which may not be how this request did), else this request's own host."""
    path = reverse("channels_ingest:webhook", args=[channel.public_id])
    base = getattr(settings, "PUBLIC_BASE_URL", "")
    return base.rstrip("/") + path if base else request.build_absolute_uri(path)


def _describe_transport(request, channel):
    """What the page says of how messages reach the channel: its webhook (URL, whether the platform proved it,
    the last push) and its polling (whether it polls at all, how far back the first poll reaches)."""
    try:
        adapter = adapter_class(channel.kind)
    except LookupError:  # a kind no longer configured: nothing to say about it
        adapter = ChannelAdapter
    channel.takes_webhooks = Capability.WEBHOOK in adapter.capabilities
    channel.polls = Capability.POLL in adapter.capabilities
    if channel.takes_webhooks:
        channel.webhook_url = webhook_url(request, channel)
        # Only platforms that prove a webhook URL before pushing (Meta's hub.challenge) can be "verified".
        channel.verifies_webhook = adapter.verify_subscription is not ChannelAdapter.verify_subscription
    if channel.polls:
        channel.import_days = channel.config.get("import_days", DEFAULT_IMPORT_DAYS)
        channel.first_imported = _first_import(channel.first_import)


def _first_import(recorded: dict | None) -> dict | None:
    """What the first poll imported, with its sent times as datetimes; None before it ({}: not recorded)."""
    if not recorded:
        return None
    times = {
        key: datetime.fromisoformat(recorded[key]) if recorded.get(key) else None for key in ("earliest", "latest")
    }
    return {"messages": recorded["messages"], **times}


@agent_required
def channels(request):
    """Every channel's health, polling, webhook, failed inbound messages and this month's estimated spend;
    never its credentials. A fixed number of queries, whatever the number of channels."""
    now = timezone.now()
    rows = list(Channel.objects.defer("secrets", "cursor", "state").order_by("name"))
    activity = InboundMessage.objects.activity(now)
    spent = dict(
        ApiUsage.objects.filter(month=month_start())
        .order_by()
        .values("channel")
        .annotate(total=Sum("cost"))
        .values_list("channel", "total")
    )
    failed_counts = (
        InboundMessage.objects.filter(status=InboundMessage.Status.FAILED)
        .order_by()
        .values("channel")
        .annotate(count=Count("pk"), latest=Max("pk"))
    )
    failed = {row["channel"]: row["count"] for row in failed_counts}
    # The newest failure of each channel, in the words it was refused with (e.g. mail that cannot be read).
    latest_failures = {
        row.channel_id: row
        for row in InboundMessage.objects.filter(pk__in=[row["latest"] for row in failed_counts]).only(
            "channel", "error", "received_at"
        )
    }
    for channel in rows:
        channel.latest_failure = latest_failures.get(channel.pk)
        channel.spent = spent.get(channel.pk) or Decimal(0)
        channel.spent_display = _money(channel.spent)
        channel.budget = monthly_budget(channel)
        channel.budget_display = _money(channel.budget) if channel.budget is not None else ""
        channel.failed_inbound = failed.get(channel.pk, 0)
        _describe_transport(request, channel)
        channel.activity = activity.get(channel.pk, health.Activity())
        channel.health = health.assess(channel, channel.activity, now, polls=channel.polls)
    context = {
        "section": "channels",
        "channels": rows,
        "alerts": ChannelAlert.objects.select_related("channel").only("kind", "message", "at", "channel__name")[
            :RECENT_ALERTS
        ],
        "can_requeue": request_role(request) == Role.ADMIN,
        "rules": {
            "broken_after": health.BROKEN_AFTER_FAILURES,
            "busy_per_hour": health.BUSY_PER_HOUR,
            "silent_gaps": health.SILENT_AFTER_GAPS,
            "silent_minutes": int(health.SILENT_AT_LEAST.total_seconds() // 60),
        },
    }
    return render(request, "console/channels.html", context)


@agent_required
@require_POST
def channel_requeue_failed(request, pk):
    """An admin puts a channel's failed inbound messages back in the queue, to be ingested again."""
    if request_role(request) != Role.ADMIN:
        raise PermissionDenied
    channel = get_object_or_404(Channel, pk=pk)
    count = ingest.requeue_failed(channel)
    messages.success(request, f"Re-queued {count} failed inbound messages of {channel.name}.")
    return redirect("console:channels")


@admin_required
@require_POST
def broken_banner_dismiss(request):
    """An admin hides the broken channels' banner (the nav still counts them) until another channel breaks, or
    one of these recovers and breaks again."""
    broken = Channel.objects.broken().values_list("pk", "broken_since")
    request.session[DISMISSED_BANNER] = [banner_key(pk, since) for pk, since in broken]
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = reverse("console:ticket-list")
    return redirect(back)
