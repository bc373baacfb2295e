"""The cost meter and the monthly budget."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from channels_ingest import sweep
from channels_ingest.models import ApiUsage, Channel, PriceRule
from channels_ingest.usage import month_start
from tests.helpers import (
    make_x_channel,
    reply_and_deliver,
    x_photo,
)
from tests.helpers import poll_as_worker as poll
from tickets.models import Ticket


@pytest.mark.django_db
def test_every_call_is_metered_at_the_admin_price(x_channel, x_emulator, agent):
    """Mentions read, DM events read and posts created are recorded per channel with their estimated cost."""
    maya = x_emulator.people["maya"]
    x_emulator.post_many([{"author_id": maya, "text": f"@ithelp {i}"} for i in range(10)])
    x_emulator.dm_from(maya, "dm")
    poll(x_channel)
    reply_and_deliver(Ticket.objects.filter(subject="@ithelp 0").get(), agent, "ok", mode="public")
    usage = {u.operation: (u.units, u.cost) for u in ApiUsage.objects.filter(channel=x_channel)}
    assert usage["post_read_owned"] == (10, Decimal("0.010000"))
    assert usage["dm_event_read"] == (1, Decimal("0.010000"))
    assert usage["post_create"] == (1, Decimal("0.015000"))


@pytest.mark.django_db
def test_budget_reached_pauses_polling_and_a_higher_budget_resumes_it(x_emulator, db, mailoutbox, settings):
    """Once the month's spend reaches the budget, polls stop (admins are told); raising the budget resumes them."""
    settings.ADMINS = [("Ops", "ops@example.com")]
    channel = make_x_channel(x_emulator, monthly_budget_usd=0.05)
    x_emulator.post_many([{"author_id": x_emulator.people["maya"], "text": f"@ithelp {i}"} for i in range(60)])
    poll(channel)
    assert channel.paused_reason.startswith("Monthly budget of $0.05 reached")
    assert "budget reached" in mailoutbox[0].subject
    assert not Channel.objects.due_for_poll(timezone.now() + timedelta(hours=1)).filter(pk=channel.pk).exists()

    Channel.objects.filter(pk=channel.pk).update(config={**channel.config, "monthly_budget_usd": 10})
    sweep.sweep()
    channel.refresh_from_db()
    assert channel.paused_reason == ""


@pytest.mark.django_db
def test_expanded_media_are_metered_and_the_reads_cost_what_they_did(x_channel, x_emulator, agent):
    """The media expansion adds one metered unit per media item (priced 0 until an admin sets X's price);
    the billed reads of posts and DM events are counted as before."""
    maya = x_emulator.people["maya"]
    x_emulator.post(maya, "@ithelp two", media=[x_photo(), x_photo()])
    x_emulator.post(maya, "@ithelp none")
    x_emulator.dm_from(maya, "dm", media=[x_photo()])
    poll(x_channel)

    usage = {u.operation: (u.units, u.cost) for u in ApiUsage.objects.filter(channel=x_channel)}
    assert usage["post_read_owned"] == (2, Decimal("0.002000"))
    assert usage["dm_event_read"] == (1, Decimal("0.010000"))
    assert usage["expanded_media_read"] == (3, Decimal("0"))
    assert usage["expanded_user_read"][0] == 2  # the author, once per answer
    assert set(usage) == {"post_read_owned", "dm_event_read", "expanded_user_read", "expanded_media_read"}
    assert PriceRule.objects.get(kind="x", operation="expanded_media_read").unit_price == 0

    PriceRule.objects.filter(kind="x", operation="expanded_media_read").update(unit_price=Decimal("0.005"))
    x_emulator.post(maya, "@ithelp three", media=[x_photo()])
    poll(x_channel)
    media_row = ApiUsage.objects.get(channel=x_channel, operation="expanded_media_read")
    assert (media_row.units, media_row.cost) == (4, Decimal("0.005000"))


@pytest.mark.django_db
def test_a_new_month_resumes_a_channel_paused_by_its_budget(x_emulator):
    """The budget is monthly: the first sweep of the next month lifts the pause, with the budget unchanged."""
    channel = make_x_channel(x_emulator, monthly_budget_usd=0.05)
    x_emulator.post_many([{"author_id": x_emulator.people["maya"], "text": f"@ithelp {i}"} for i in range(60)])
    poll(channel)
    assert channel.paused_reason.startswith("Monthly budget of $0.05 reached")

    next_month = (month_start() + timedelta(days=32)).replace(day=1)
    with time_machine.travel(datetime(next_month.year, next_month.month, 1, 0, 5, tzinfo=UTC), tick=False):
        sweep.sweep()
    channel.refresh_from_db()
    assert channel.paused_reason == ""
    assert channel.config["monthly_budget_usd"] == 0.05
