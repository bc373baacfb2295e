"""Triage: which public messages open a ticket at once, and what agents decide for the rest."""

import pytest
from django.test import TestCase

from channels_ingest import ingest
from channels_ingest.models import Channel, InboundMessage
from tests.factories import message
from tests.helpers import awaiting_triage, make_x_channel
from tests.helpers import poll_as_worker as poll
from tickets.models import Ticket, TicketEvent

pytestmark = pytest.mark.django_db


def test_withheld_post_is_kept_for_triage_with_a_clear_note(x_channel, x_emulator):
    """A withheld post (no text from X) is not dropped: it waits in triage, saying why its text is missing."""
    post = x_emulator.post(x_emulator.people["maya"], "@ithelp help")["id"]
    x_emulator.withhold_post(post)
    poll(x_channel)
    row = InboundMessage.objects.get()
    assert row.status == InboundMessage.Status.TRIAGE
    assert "withheld" in row.payload["text"]


def test_indirect_mention_waits_in_triage_until_an_agent_accepts_it(x_channel, x_emulator, agent):
    """By default only direct @mentions open tickets; an implicit mention waits for an agent."""
    ours = x_emulator.post(x_emulator.store.account_id, "Maintenance tonight 22:00")["id"]
    x_emulator.post(x_emulator.people["leo"], "will email be down too?", in_reply_to_tweet_id=ours)
    poll(x_channel)
    row = InboundMessage.objects.get()
    assert row.status == InboundMessage.Status.TRIAGE
    assert not Ticket.objects.exists()

    with TestCase.captureOnCommitCallbacks(execute=True):
        assert ingest.accept_triaged([row.pk], user=agent) == 1
    row.refresh_from_db()
    assert row.status == InboundMessage.Status.PROCESSED
    assert row.triaged_by == agent
    assert Ticket.objects.get().subject == "will email be down too?"


def test_an_accepted_post_that_reopens_a_ticket_shows_on_its_timeline(locmem_channel, ticket, agent):
    """Accepted from triage into a conversation whose ticket was resolved meanwhile: it reopens, on the record."""
    Ticket.objects.filter(pk=ticket.pk).update(status="resolved")
    [row] = awaiting_triage(locmem_channel, [message("m0.1", thread="m0", minute=3, text="it is back")])
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert ingest.accept_triaged([row.pk], user=agent) == 1
    assert Ticket.objects.get(pk=ticket.pk).status == "open"
    [event] = TicketEvent.objects.filter(ticket=ticket)
    assert (event.old_value, event.new_value, event.actor_name, event.reason) == (
        "resolved",
        "open",
        "Locmem lm",
        "new message from Ann Employee",
    )


def test_dismissed_mention_is_kept_on_record_without_a_ticket(x_channel, x_emulator, agent):
    x_emulator.post(x_emulator.people["leo"], "lol @ithelp is down again", in_reply_to_tweet_id=None)
    Channel.objects.filter(pk=x_channel.pk).update(config={**x_channel.config, "triage": {"auto_ticket": "none"}})
    x_channel.refresh_from_db()
    poll(x_channel)
    row = InboundMessage.objects.get()
    assert ingest.dismiss_triaged([row.pk], user=agent) == 1
    row.refresh_from_db()
    assert row.status == InboundMessage.Status.SKIPPED
    assert "Dismissed in triage by agent" in row.error
    assert not Ticket.objects.exists()


def test_keyword_rule_tickets_only_matching_mentions(x_emulator, db):
    channel = make_x_channel(x_emulator, triage={"auto_ticket": "keywords", "keywords": ["VPN", "laptop"]})
    x_emulator.post(x_emulator.people["maya"], "@ithelp my vpn keeps dropping")
    x_emulator.post(x_emulator.people["leo"], "@ithelp great job today!")
    poll(channel)
    assert list(Ticket.objects.values_list("subject", flat=True)) == ["@ithelp my vpn keeps dropping"]
    assert InboundMessage.objects.filter(status=InboundMessage.Status.TRIAGE).count() == 1


def test_everything_rule_tickets_every_mention(x_emulator, db):
    channel = make_x_channel(x_emulator, triage={"auto_ticket": "all"})
    ours = x_emulator.post(x_emulator.store.account_id, "Status: all good")["id"]
    x_emulator.post(x_emulator.people["leo"], "not for me", in_reply_to_tweet_id=ours)
    poll(channel)
    assert Ticket.objects.count() == 1


def test_replies_in_a_ticketed_conversation_skip_triage(x_channel, x_emulator):
    """Once a conversation has a ticket, its later posts join it even without an @mention."""
    root = x_emulator.post(x_emulator.people["maya"], "@ithelp wifi?")["id"]
    poll(x_channel)
    ours = x_emulator.post(x_emulator.store.account_id, "@maya_dev which floor?", in_reply_to_tweet_id=root)["id"]
    x_emulator.post(x_emulator.people["maya"], "third floor", in_reply_to_tweet_id=ours)
    poll(x_channel)
    assert Ticket.objects.get().message_count == 2
