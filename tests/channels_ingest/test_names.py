"""People's names: cached, looked up after ingestion, never during it."""

import pytest

from channel_adapters.base import Sender
from channels_ingest import ingest, names, polling
from tests.factories import message, sender
from tests.helpers import poll_as_worker as poll
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def test_a_name_lookup_for_a_deleted_channel_does_nothing(locmem_channel):
    """The follow-up name lookup runs after ingestion; if the channel was deleted meanwhile it has nothing to do."""
    channel_id = locmem_channel.pk
    locmem_channel.delete()
    assert names.describe_senders(channel_id, [sender("u1", "Ann")]) == 0


def test_user_names_are_cached(slack_channel, slack_emulator):
    """users.info is called once per person, not once per message."""
    slack_emulator.post_many("C0GENERAL", [{"user": "U0ANN", "text": f"m{i}"} for i in range(5)])
    poll(slack_channel)
    slack_emulator.post("C0GENERAL", "U0ANN", "another")
    poll(slack_channel)
    assert slack_emulator.stats()["calls"]["users.info"] == 1
    assert set(Ticket.objects.values_list("requester__display_name", flat=True)) == {"Ann Employee"}


def test_lookups_queued_by_several_batches_ask_the_platform_once(slack_channel, slack_emulator):
    """A new person's messages ingested in two batches queue two lookups before either ran: one users.info."""
    slack_emulator.post_many("C0GENERAL", [{"user": "U0ANN", "text": f"m{i}"} for i in range(4)])
    polling.poll_channel(slack_channel.pk)  # its follow-up tasks (run on commit) are left out: they run below
    ingest.ingest_channel(slack_channel.pk, batch_size=2)
    assert "users.info" not in slack_emulator.stats()["calls"]  # nothing asked during ingestion
    slack_channel.refresh_from_db()
    ann = Sender(namespace=f"slack:{slack_channel.state['team_id']}", external_id="U0ANN")
    assert names.describe_senders(slack_channel.pk, [ann]) == 1
    assert names.describe_senders(slack_channel.pk, [ann]) == 1  # the second batch's, answered from the cache
    assert slack_emulator.stats()["calls"]["users.info"] == 1
    assert set(Ticket.objects.values_list("requester__display_name", flat=True)) == {"Ann Employee"}


def test_a_person_the_platform_cannot_name_is_not_asked_about_on_every_message(
    locmem_channel, monkeypatch, django_capture_on_commit_callbacks
):
    """A miss is remembered (for less time than a name): a busy channel does not queue a lookup per batch."""
    asked = []
    monkeypatch.setattr(
        "channel_adapters.locmem.LocmemAdapter.describe_senders", lambda self, senders: asked.append(senders) or {}
    )
    ghost = Sender(namespace="locmem", external_id="ghost")
    assert names.describe_senders(locmem_channel.pk, [ghost]) == 0
    assert names.describe_senders(locmem_channel.pk, [ghost]) == 0
    assert len(asked) == 1
    unnamed = message("m1", user="ghost", name="")
    with django_capture_on_commit_callbacks() as queued:
        assert names.with_known_names(locmem_channel, [unnamed]) == [unnamed]
    assert not queued  # no lookup queued for them


@pytest.mark.parametrize("external_id", ["Alex Q ùxxx@yahoo.com", "x" * 1000, "ann\nbob", "人事部@例え.jp"])
def test_any_id_a_platform_gives_makes_a_cache_key_every_backend_takes(external_id):
    """Ids come from mail headers and platforms as they are: the key never carries them (memcached refuses spaces,
    control characters and keys over 250 characters)."""
    key = names.cache_key(Sender(namespace="email", external_id=external_id))
    assert len(key) < 250
    assert key.isascii()
    assert key.isprintable()
    assert " " not in key
    assert key != names.cache_key(Sender(namespace="email", external_id=external_id + "."))
