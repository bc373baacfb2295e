"""The Channels page: every channel's health, polling and this month's estimated spend."""

from decimal import Decimal

from django.db.models import Sum
from django.shortcuts import render

from channels_ingest.models import ApiUsage, Channel
from channels_ingest.usage import month_start, monthly_budget

from .access import agent_required


def _money(amount: Decimal) -> str:
    if 0 < amount < Decimal("0.005"):
        return "under $0.01"
    return f"${amount:,.2f}"


@agent_required
def channels(request):
    """Every channel's health, polling and this month's estimated spend; never its credentials."""
    rows = list(Channel.objects.defer("secrets", "cursor", "state").order_by("name"))
    spent = dict(
        ApiUsage.objects.filter(month=month_start())
        .order_by()
        .values("channel")
        .annotate(total=Sum("cost"))
        .values_list("channel", "total")
    )
    for channel in rows:
        channel.spent = spent.get(channel.pk) or Decimal(0)
        channel.spent_display = _money(channel.spent)
        channel.budget = monthly_budget(channel)
        channel.budget_display = _money(channel.budget) if channel.budget is not None else ""
    return render(request, "console/channels.html", {"section": "channels", "channels": rows})
