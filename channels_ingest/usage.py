"""The cost meter: billable platform calls per channel and month, and the monthly budget."""

import logging
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from channel_adapters.base import ConfigError

from .admin_mail import mail_channel_admins
from .models import ApiUsage, Channel, PriceRule

logger = logging.getLogger(__name__)

BUDGET_PAUSE = (
    "Monthly budget of ${budget} reached (${spent} spent); polling is paused until next month or a higher budget."
)


def month_start(now=None):
    return (now or timezone.now()).date().replace(day=1)


def record_usage(channel: Channel, usage) -> None:
    """Add an adapter's counted calls to this month's usage at current prices, then apply the budget."""
    usage = {operation: units for operation, units in usage.items() if units}
    if not usage:
        return
    prices = dict(
        PriceRule.objects.filter(kind=channel.kind, operation__in=usage).values_list("operation", "unit_price")
    )
    month = month_start()
    with transaction.atomic():
        for operation, units in usage.items():
            cost = prices.get(operation, Decimal(0)) * units
            row, created = ApiUsage.objects.get_or_create(
                channel=channel, month=month, operation=operation, defaults={"units": units, "cost": cost}
            )
            if not created:
                ApiUsage.objects.filter(pk=row.pk).update(units=F("units") + units, cost=F("cost") + cost)
    usage.clear()
    enforce_budget(channel)


def spent_this_month(channel: Channel) -> Decimal:
    total = ApiUsage.objects.filter(channel=channel, month=month_start()).aggregate(total=Sum("cost"))["total"]
    return total or Decimal(0)


def validate(config: dict) -> None:
    """Refuse a monthly budget that is not a non-negative number (``ConfigError``)."""
    budget = config.get("monthly_budget_usd")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float) or budget < 0):
        raise ConfigError("monthly_budget_usd must be a non-negative number.")


def monthly_budget(channel: Channel) -> Decimal | None:
    budget = channel.config.get("monthly_budget_usd")
    return Decimal(str(budget)) if budget not in (None, "") else None


def enforce_budget(channel: Channel) -> None:
    """Pause polling once the month's spend reaches the budget (and tell the admins); resume when it no longer does."""
    budget, spent = monthly_budget(channel), spent_this_month(channel)
    over = budget is not None and spent >= budget
    if over and not channel.paused_reason:
        reason = BUDGET_PAUSE.format(budget=budget, spent=f"{spent:.2f}")
        Channel.objects.filter(pk=channel.pk).update(paused_reason=reason)
        channel.paused_reason = reason
        logger.error("channel %s: %s", channel.name, reason)
        mail_channel_admins(f"Channel {channel.name} paused: budget reached", reason)
    elif not over and channel.paused_reason.startswith("Monthly budget"):
        Channel.objects.filter(pk=channel.pk).update(paused_reason="")
        channel.paused_reason = ""
        logger.info("channel %s: under its monthly budget again; polling resumes", channel.name)
