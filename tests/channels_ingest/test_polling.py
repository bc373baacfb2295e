"""Polling: the cursor moves only with what was stored, one poller per channel, errors recorded."""

import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import OperationalError, connections
from django.utils import timezone

from channel_adapters import locmem
from channel_adapters.base import CredentialsError, RateLimited, TransientError
from channels_ingest import polling, sweep
from channels_ingest.models import Channel, InboundMessage
from tests.factories import message
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db


def test_cursor_advances_only_with_what_was_stored(locmem_channel):
    """A poll that fails mid-way keeps the pages it stored and the cursor that covers exactly them."""
    locmem_channel.config["page_size"] = 2
    locmem_channel.save()
    locmem.inbox["lm"] = [message("a"), message("b"), TransientError("connection reset"), message("c")]

    outcome = polling.poll_channel(locmem_channel.pk)
    locmem_channel.refresh_from_db()
    assert outcome.stored == 2
    assert locmem_channel.cursor == {"position": 2}
    assert locmem_channel.last_error == "connection reset"
    assert set(InboundMessage.objects.values_list("external_id", flat=True)) == {"a", "b"}

    locmem.inbox["lm"].pop(2)
    assert polling.poll_channel(locmem_channel.pk).stored == 1
    locmem_channel.refresh_from_db()
    assert locmem_channel.cursor == {"position": 3}
    assert locmem_channel.healthy
    assert not locmem_channel.last_error


def test_a_channel_already_being_polled_is_not_polled_again(locmem_channel):
    """The poll lease keeps two pollers of one channel apart."""
    token = polling._acquire_poll_lease(locmem_channel.pk)
    assert token is not None
    locmem.inbox["lm"] = [message("a")]
    assert polling.poll_channel(locmem_channel.pk).polled is False
    polling._release_poll_lease(locmem_channel.pk, token)
    assert polling.poll_channel(locmem_channel.pk).stored == 1


def test_a_poller_that_lost_its_lease_stores_nothing_more(locmem_channel):
    """If another poller took over an expired lease, the old one's next page is refused (fencing)."""
    locmem.inbox["lm"] = [message("a")]
    pages = locmem_channel.adapter().poll({})
    token = polling._acquire_poll_lease(locmem_channel.pk)
    Channel.objects.filter(pk=locmem_channel.pk).update(poll_lease_token=None, poll_lease_expires_at=None)
    polling._acquire_poll_lease(locmem_channel.pk)  # a second poller wins
    renewed = Channel.objects.filter(pk=locmem_channel.pk, poll_lease_token=token).update(cursor=next(pages).cursor)
    assert renewed == 0


def test_a_dead_pollers_lease_is_taken_over_within_30_seconds(locmem_channel):
    """A worker died holding the lease: within 30 s (the lease, then one sweep) another poll takes over, even
    before the channel's next poll is due, and the dead poller's token is worthless."""
    locmem.inbox["lm"] = [message("a")]
    died_at = timezone.now()
    with time_machine.travel(died_at, tick=False) as clock:
        Channel.objects.filter(pk=locmem_channel.pk).update(next_poll_at=died_at + timedelta(minutes=1))
        dead = polling._acquire_poll_lease(locmem_channel.pk)  # ... and its worker is killed
        clock.shift(polling.POLL_LEASE - timedelta(seconds=1))
        assert polling.poll_channel(locmem_channel.pk).polled is False
        assert sweep.sweep()["polls"] == 0

        clock.shift(timedelta(seconds=5))
        assert timezone.now() - died_at <= timedelta(seconds=30)
        assert sweep.sweep()["polls"] == 1  # runs inline here
        assert InboundMessage.objects.filter(external_id="a").exists()
        assert polling._renew_poll_lease(locmem_channel.pk, dead) is False
        assert sweep.sweep()["polls"] == 0  # not polled again until due


def test_the_lease_and_beat_keep_the_30_second_promise():
    """A dead poller's lease lapses, then the next sweep starts a poll: both together within 30 s."""
    sweep_every = settings.CELERY_BEAT_SCHEDULE["sweep"]["schedule"]
    assert polling.POLL_LEASE + sweep_every <= timedelta(seconds=30)
    assert polling.LEASE_RENEWAL * 3 <= polling.POLL_LEASE  # two missed renewals do not lose a live lease


@pytest.mark.postgres  # three connections writing at once: the embedded test database (SQLite in memory) refuses
@pytest.mark.django_db(transaction=True)
def test_a_live_poll_keeps_its_lease_while_it_waits_on_the_platform(slack_channel, slack_emulator, monkeypatch):
    """One platform call outlasts the lease twice over: the heartbeat renews it, so the polls tried meanwhile
    do not start, and the slow poll stores its page (a poller that lost its lease would be refused)."""
    monkeypatch.setattr(polling, "POLL_LEASE", timedelta(seconds=1.5))
    monkeypatch.setattr(polling, "LEASE_RENEWAL", timedelta(seconds=0.2))
    slack_emulator.post("C0GENERAL", "U0ANN", "printer on fire")
    slack_emulator.fault("conversations.history", latency=3.2)
    outcome = {}

    def poll_in_its_own_worker():
        try:
            outcome["slow poll"] = polling.poll_channel(slack_channel.pk)
        except polling.LeaseLost as exc:
            outcome["slow poll"] = exc
        finally:
            connections.close_all()

    poller = threading.Thread(target=poll_in_its_own_worker)
    poller.start()
    wait_for(lambda: Channel.objects.get(pk=slack_channel.pk).poll_lease_token, message="the slow poll's lease")
    tries = 0
    while poller.is_alive():
        polling.poll_channel(slack_channel.pk)
        tries += 1
        time.sleep(0.1)
    poller.join()
    assert outcome["slow poll"] == polling.PollOutcome(polled=True, stored=1)
    assert slack_emulator.stats()["max_inflight"]["conversations.history:C0GENERAL"] == 1
    assert tries > 15  # tried well past the first lease's expiry
    assert InboundMessage.objects.count() == 1


def test_revoked_credentials_mark_only_that_channel_unhealthy(locmem_channel):
    """Credentials errors mark the channel unhealthy with the platform's error; other channels still poll."""
    other = Channel.objects.create(kind="locmem", name="other", config={"inbox": "other"}, state={"checked": True})
    locmem.inbox["lm"] = [CredentialsError("token_revoked")]
    locmem.inbox["other"] = [message("x")]

    polling.poll_channel(locmem_channel.pk)
    polling.poll_channel(other.pk)
    locmem_channel.refresh_from_db()
    other.refresh_from_db()
    assert not locmem_channel.healthy
    assert "token_revoked" in locmem_channel.last_error
    assert other.healthy
    assert other.last_poll_stored == 1


def test_an_adapter_that_crashes_shows_on_the_channels_health_and_breaks_it_after_three(locmem_channel, caplog):
    """A bug in reading the platform's answer (an adapter must make a failed row of what it cannot read) keeps
    what was stored before it, says so on the channel, is logged with its traceback, and after three polls in a
    row the channel is broken (the admins are told), instead of the task failing unseen at every poll."""
    locmem_channel.config["page_size"] = 1
    locmem_channel.save()
    locmem.inbox["lm"] = [message("a"), KeyError("text")]

    outcomes = [polling.poll_channel(locmem_channel.pk) for _ in range(3)]

    assert [o.stored for o in outcomes] == [1, 0, 0]
    assert "KeyError" in outcomes[0].error
    locmem_channel.refresh_from_db()
    assert "could not read" in locmem_channel.last_error
    assert locmem_channel.consecutive_failures == 3
    assert Channel.objects.broken().filter(pk=locmem_channel.pk).exists()
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)


def test_an_outage_during_a_poll_is_left_to_the_task_to_retry(locmem_channel):
    """Not the channel's fault: its health is untouched, and the task's own retry takes it."""
    locmem.inbox["lm"] = [OperationalError("the database system is shutting down")]
    with pytest.raises(OperationalError):
        polling.poll_channel(locmem_channel.pk)
    locmem_channel.refresh_from_db()
    assert (locmem_channel.consecutive_failures, locmem_channel.last_error) == (0, "")


def test_rate_limited_poll_is_rescheduled_after_retry_after(locmem_channel):
    """A 429 pushes the next poll back by Retry-After without marking the channel unhealthy."""
    locmem.inbox["lm"] = [RateLimited("slow down", retry_after=120)]
    polling.poll_channel(locmem_channel.pk)
    locmem_channel.refresh_from_db()
    assert locmem_channel.healthy
    assert (locmem_channel.next_poll_at - locmem_channel.last_poll_at).total_seconds() == pytest.approx(120)


def test_a_paused_channel_is_not_polled_even_by_a_task_queued_before_the_pause(locmem_channel):
    """The sweep queues no poll for a paused channel, and a poll task queued before the pause does nothing."""
    Channel.objects.filter(pk=locmem_channel.pk).update(paused_reason="Monthly budget of $1 reached ($1.00 spent)")
    locmem.inbox["lm"] = [message("a")]
    outcome = polling.poll_channel(locmem_channel.pk)
    assert outcome.polled is False
    assert outcome.paused == "Monthly budget of $1 reached ($1.00 spent)"
    assert not InboundMessage.objects.exists()
    assert polling.poll_channel(locmem_channel.pk, force=True).stored == 1
