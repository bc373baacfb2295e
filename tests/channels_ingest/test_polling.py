"""Polling: the cursor moves only with what was stored, one poller per channel, errors recorded."""

import pytest

from channel_adapters import locmem
from channel_adapters.base import CredentialsError, RateLimited, TransientError
from channels_ingest import polling
from channels_ingest.models import Channel, InboundMessage
from tests.factories import message

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
