"""The cost meter and the monthly budget."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db.models import Sum
from django.utils import timezone

from channels_ingest import sweep
from channels_ingest.models import ApiUsage, Channel, InboundMessage, PriceRule
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
    with time_machine.travel(tomorrow_at(12), tick=True):  # one UTC day: X bills the author once
        maya = x_emulator.people["maya"]
        x_emulator.post(maya, "@ithelp two", media=[x_photo(), x_photo()])
        x_emulator.post(maya, "@ithelp none")
        x_emulator.dm_from(maya, "dm", media=[x_photo()])
        poll(x_channel)

        usage = {u.operation: (u.units, u.cost) for u in ApiUsage.objects.filter(channel=x_channel)}
        assert usage["post_read_owned"] == (2, Decimal("0.002000"))
        assert usage["dm_event_read"] == (1, Decimal("0.010000"))
        assert usage["expanded_media_read"] == (3, Decimal("0"))
        assert usage["expanded_user_read"][0] == 1  # the author, once a UTC day however many answers name her
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


#: How the meter names what X bills per resource read (the emulator's billing kinds).
METERED_AS = {
    "dm_event": "dm_event_read",
    "post": "post_read_owned",
    "user": "expanded_user_read",
    "media": "expanded_media_read",
}


def metered_reads(channel):
    """Units per kind of resource read, whatever the month (the next UTC day may be in the next month)."""
    units = dict(ApiUsage.objects.filter(channel=channel).values_list("operation").annotate(units=Sum("units")))
    return {kind: units.get(operation, 0) for kind, operation in METERED_AS.items() if units.get(operation)}


def tomorrow_at(hour, minute=0):
    """``hour:minute`` UTC tomorrow: ahead of the real clock at any time of day, so what a test made before
    travelling there (its channel, its cursor) is older, as it would be. (Today at noon was behind the clock
    every afternoon, and the stored rows and metered reads then came out doubled.)"""
    return (datetime.now(UTC) + timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)


@pytest.mark.django_db
def test_dm_polls_meter_each_dm_event_once_a_utc_day_as_x_bills(x_channel, x_emulator):
    """120 DMs, then 7 polls in one UTC day: X bills 120 DM-event reads and the meter says 120 (it said 721).
    Idle polls read a small page. The next UTC day X bills a re-read again, and so does the meter."""
    maya = x_emulator.people["maya"]
    with time_machine.travel(tomorrow_at(12), tick=True) as clock:
        for n in range(120):
            x_emulator.dm_from(maya, f"dm {n}")
        for _ in range(7):
            poll(x_channel)
            clock.shift(61)  # past dm_poll_interval_seconds
        assert InboundMessage.objects.count() == 120
        assert metered_reads(x_channel) == {"dm_event": 120, "user": 1}
        assert metered_reads(x_channel) == x_emulator.billing()["billed"]
        assert x_emulator.billing()["returned"]["dm_event"] == 120 + 6 * 5  # 6 idle polls, a page of 5 each

    with time_machine.travel(tomorrow_at(0, 1) + timedelta(days=1), tick=True):
        poll(x_channel)
    assert metered_reads(x_channel) == x_emulator.billing()["billed"]
    assert metered_reads(x_channel)["dm_event"] == 125  # the idle page, read again on a new day
    dm_reads = ApiUsage.objects.filter(channel=x_channel, operation="dm_event_read")
    assert dm_reads.aggregate(cost=Sum("cost"))["cost"] == Decimal("1.25")


@pytest.mark.django_db
def test_mentions_read_again_after_a_failed_poll_are_metered_once(x_channel, x_emulator):
    """A poll that fails after its first page reads that page again next time: X bills its posts, their
    authors and media once that day, and the meter counts them once."""
    maya, leo = x_emulator.people["maya"], x_emulator.people["leo"]
    with time_machine.travel(tomorrow_at(12), tick=True):
        x_emulator.post(maya, "@ithelp photo", media=[x_photo()])
        x_emulator.post_many([{"author_id": (maya, leo)[n % 2], "text": f"@ithelp {n}"} for n in range(150)])
        poll(x_channel)  # the first mentions poll pages back from the backfill start: 100, then 51
        x_emulator.post_many([{"author_id": leo, "text": f"@ithelp again {n}"} for n in range(120)])
        x_emulator.post(maya, "@ithelp newest", media=[x_photo()])
        x_emulator.set_rate_limit("mentions", limit=1)
        outcome = poll(x_channel)  # stores its first page of 100, then X refuses the second
        assert "rate limit" in outcome.error
        x_emulator.set_rate_limit("mentions", limit=300)
        poll(x_channel)  # reads the first page again, then the rest
        assert InboundMessage.objects.count() == 272
        assert metered_reads(x_channel) == x_emulator.billing()["billed"]
        assert metered_reads(x_channel) == {"post": 272, "user": 2, "media": 2}
