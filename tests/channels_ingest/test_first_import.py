"""A channel's first poll imports the last ``import_days`` (default 7) days, on every kind, and says nothing
older: what a newly connected channel shows is predictable, and documented."""

import dataclasses
from datetime import UTC, timedelta
from datetime import timezone as timezone_of

import pytest
import time_machine
from django.utils import timezone

from channel_adapters import locmem
from channels_ingest import health
from channels_ingest.ingest import store_envelopes
from channels_ingest.models import InboundMessage
from tests.factories import BASE_TIME, edit, message
from tests.helpers import make_x_channel
from tests.helpers import poll_as_worker as poll
from tickets.models import Ticket


@pytest.mark.django_db
@pytest.mark.parametrize(("days_later", "imported"), [(3, True), (8, False)])
def test_slacks_first_poll_imports_the_last_seven_days(slack_channel, slack_emulator, days_later, imported):
    slack_emulator.post("C0GENERAL", "U0ANN", "my laptop won't boot")
    with time_machine.travel(timezone.now() + timedelta(days=days_later)):
        poll(slack_channel)
    assert Ticket.objects.filter(subject="my laptop won't boot").exists() == imported


@pytest.mark.django_db
@pytest.mark.parametrize(("days_later", "import_days", "imported"), [(3, 7, True), (8, 7, False), (8, 10, True)])
def test_xs_first_poll_imports_the_configured_days(x_emulator, days_later, import_days, imported):
    channel = make_x_channel(x_emulator, import_days=import_days, triage={"auto_ticket": "all"})
    x_emulator.post(x_emulator.people["maya"], "@ithelp the printer is jammed")
    with time_machine.travel(timezone.now() + timedelta(days=days_later)):
        poll(channel)
    assert InboundMessage.objects.filter(channel=channel).exists() == imported


@pytest.mark.django_db
def test_what_the_first_import_brought_counts_messages_and_compares_times_across_offsets(locmem_channel):
    """An edit is not a message; 09:30+02:00 (07:30 UTC) is earlier than 08:00 UTC, though its text sorts later."""
    early = message("m1", minute=0)
    early = dataclasses.replace(
        early, sent_at=early.sent_at.replace(hour=9, minute=30, tzinfo=timezone_of(timedelta(hours=2)))
    )
    store_envelopes(locmem_channel, [message("m0", minute=-60), early, edit("m0", "fixed")])
    locmem_channel.record_first_import()
    assert locmem_channel.first_import == {
        "messages": 2,
        "earliest": early.sent_at.astimezone(UTC).isoformat(),
        "latest": (BASE_TIME - timedelta(minutes=60)).isoformat(),
    }


@pytest.mark.django_db
def test_a_first_import_is_not_taken_for_the_channels_usual_traffic(locmem_channel):
    """300 messages of history arrive in the first poll: the channel is not "busy" for it, and a week of quiet
    after it is not "Silent, though normally busy". What comes after the import counts as usual."""
    locmem.inbox["lm"] = [message(f"old{n}", minute=n) for n in range(300)]
    poll(locmem_channel)
    later = timezone.now() + timedelta(hours=3)
    with time_machine.travel(later, tick=False):
        activity = InboundMessage.objects.activity(timezone.now()).get(locmem_channel.pk, health.Activity())
        assert (activity.last_hour, activity.last_week) == (0, 0)
        assert health.silent_for(activity, timezone.now()) is None

        locmem.inbox["lm"].append(message("new", minute=400))
        poll(locmem_channel)
        activity = InboundMessage.objects.activity(timezone.now())[locmem_channel.pk]
        assert (activity.last_hour, activity.last_week) == (1, 1)
