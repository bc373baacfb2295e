"""X: mentions and DMs through the real tweepy client against the emulator; triage, replies, limits, cost."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import TestCase
from django.utils import timezone

from channels_ingest import delivery, ingest, sweep
from channels_ingest.models import ApiUsage, Channel, InboundMessage
from tests.conftest import make_x_channel
from tests.conftest import poll_as_worker as poll
from tickets.models import Message, Ticket
from tickets.replies import ReplyError, reply_modes, reply_to_ticket

pytestmark = pytest.mark.django_db


def reply(ticket, agent, body, mode=None):
    with TestCase.captureOnCommitCallbacks(execute=True):
        message = reply_to_ticket(ticket=ticket, author=agent, body=body, mode=mode)
    message.refresh_from_db()
    return message


# Mentions -------------------------------------------------------------------


def test_direct_mention_opens_a_ticket_with_the_x_identity(x_channel, x_emulator):
    """An @mention becomes a ticket; the requester's X id, @handle and name are kept for linking later."""
    maya = x_emulator.people["maya"]
    x_emulator.post(maya, "@ithelp my laptop fan sounds like a jet 🛫")
    poll(x_channel)
    ticket = Ticket.objects.get()
    assert ticket.subject == "@ithelp my laptop fan sounds like a jet 🛫"
    identity = ticket.requester.identities.get()
    assert (identity.namespace, identity.external_id, identity.handle, identity.display_name) == (
        "x",
        maya,
        "@maya_dev",
        "Maya Patel",
    )
    assert ticket.requester.display_name == "Maya Patel"


def test_reply_in_the_same_conversation_joins_the_ticket(x_channel, x_emulator):
    """A later post in the conversation (conversation_id) lands on the same ticket."""
    root = x_emulator.post(x_emulator.people["maya"], "@ithelp VPN down")["id"]
    poll(x_channel)
    x_emulator.post(x_emulator.people["maya"], "@ithelp still down", in_reply_to_tweet_id=root)
    poll(x_channel)
    ticket = Ticket.objects.get()
    assert [m.body for m in ticket.messages.timeline()] == ["@ithelp VPN down", "@ithelp still down"]


def test_own_posts_are_skipped(x_channel, x_emulator, agent):
    """The account's own public replies never come back as inbound messages."""
    x_emulator.post(x_emulator.people["maya"], "@ithelp printer?")
    poll(x_channel)
    reply(Ticket.objects.get(), agent, "Looking now", mode="public")
    poll(x_channel)
    assert Message.objects.filter(direction=Message.Direction.INBOUND).count() == 1


def test_mentions_are_paged_and_since_id_only_moves_after_all_pages(x_channel, x_emulator):
    """250 mentions arrive over three pages; a re-poll (or one after a lost cursor) stores nothing twice."""
    maya = x_emulator.people["maya"]
    ids = x_emulator.post_many([{"author_id": maya, "text": f"@ithelp issue {i}"} for i in range(250)])
    assert poll(x_channel).stored == 250
    assert x_channel.cursor["mentions"]["since_id"] == max(ids, key=int)
    assert x_emulator.stats()["calls"]["GET /2/users/:id/mentions"] == 3
    assert poll(x_channel).stored == 0
    Channel.objects.filter(pk=x_channel.pk).update(cursor={})
    assert poll(x_channel).stored == 0
    assert Ticket.objects.count() == 250


def test_pages_that_repeat_ids_do_not_duplicate(x_channel, x_emulator):
    """When X repeats a page's ids on the next page, each post is still stored once."""
    maya = x_emulator.people["maya"]
    x_emulator.post_many([{"author_id": maya, "text": f"@ithelp n{i}"} for i in range(150)])
    x_emulator.fault("mentions", repeat_ids_once=True)
    poll(x_channel)
    assert InboundMessage.objects.count() == 150
    assert Message.objects.count() == 150


def test_long_posts_keep_their_full_text(x_channel, x_emulator):
    """A post over 280 characters arrives with note_tweet; the ticket keeps the whole text."""
    text = "@ithelp " + "the build server is slow again " * 20
    x_emulator.post(x_emulator.people["maya"], text)
    poll(x_channel)
    assert Message.objects.get().body == text.strip() or Message.objects.get().body == text


def test_suspended_author_missing_from_includes_still_becomes_a_ticket(x_channel, x_emulator):
    """An author absent from includes (suspended) keeps their X id as the name; nothing is lost."""
    leo = x_emulator.people["leo"]
    x_emulator.post(leo, "@ithelp my badge stopped working")
    x_emulator.add_user(user_id=leo, suspended=True)
    poll(x_channel)
    ticket = Ticket.objects.get()
    assert ticket.requester.identities.get().external_id == leo


def test_withheld_post_is_kept_for_triage_with_a_clear_note(x_channel, x_emulator):
    """A withheld post (no text from X) is not dropped: it waits in triage, saying why its text is missing."""
    post = x_emulator.post(x_emulator.people["maya"], "@ithelp help")["id"]
    x_emulator.withhold_post(post)
    poll(x_channel)
    row = InboundMessage.objects.get()
    assert row.status == InboundMessage.Status.TRIAGE
    assert "withheld" in row.payload["text"]


@pytest.mark.parametrize(
    "text", ["@ithelp שלום המדפסת 🖨️", "@ithelp zero\u200bwidth\u200d", "@ithelp <script>x</script>"]
)
def test_odd_text_is_kept_exactly(x_channel, x_emulator, text):
    x_emulator.post(x_emulator.people["maya"], text)
    poll(x_channel)
    assert Message.objects.get().body == text


# Triage ---------------------------------------------------------------------


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


# DMs ------------------------------------------------------------------------


def test_dms_become_one_ticket_per_open_conversation(x_channel, x_emulator):
    """DMs of one conversation share a ticket while it is open; after it is resolved, a new DM opens a new one."""
    maya = x_emulator.people["maya"]
    x_emulator.dm_from(maya, "hi, can you reset my MFA?")
    x_emulator.dm_from(maya, "my phone was stolen")
    poll(x_channel)
    first = Ticket.objects.get()
    assert first.message_count == 2

    Ticket.objects.update(status=Ticket.Status.RESOLVED)
    Channel.objects.filter(pk=x_channel.pk).update(
        cursor={**x_channel.cursor, "dms": {**x_channel.cursor["dms"], "next_at": 0}}
    )
    x_emulator.dm_from(maya, "new problem: no Teams access")
    poll(x_channel)
    assert Ticket.objects.count() == 2
    assert Ticket.objects.exclude(pk=first.pk).get().subject == "new problem: no Teams access"
    assert InboundMessage.objects.count() == 3


def test_dm_polling_stops_at_the_first_event_already_seen(x_channel, x_emulator):
    """Without since_id, DM polling pages newest-first and stops at the newest event of the last poll."""
    maya = x_emulator.people["maya"]
    for i in range(3):
        x_emulator.dm_from(maya, f"dm {i}")
    poll(x_channel)
    Channel.objects.filter(pk=x_channel.pk).update(
        cursor={**x_channel.cursor, "dms": {**x_channel.cursor["dms"], "next_at": 0}}
    )
    x_emulator.dm_from(maya, "dm 3")
    x_channel.refresh_from_db()
    assert poll(x_channel).stored == 1


def test_dm_rate_limit_never_stalls_mentions(x_channel, x_emulator):
    """A 429 on dm_events defers DM polling to X's reset time; mentions are still polled and stored."""
    x_emulator.set_rate_limit("dm_events", limit=0)
    x_emulator.dm_from(x_emulator.people["maya"], "dm")
    x_emulator.post(x_emulator.people["leo"], "@ithelp mention")
    outcome = poll(x_channel)
    assert outcome.stored == 1
    assert not outcome.error
    assert Ticket.objects.get().subject == "@ithelp mention"
    assert x_channel.cursor["dms"]["next_at"] > timezone.now().timestamp() + 60


def test_mentions_rate_limit_reschedules_at_x_reset_time(x_channel, x_emulator):
    """A 429 on mentions: the next poll waits until x-rate-limit-reset, without marking the channel unhealthy."""
    poll(x_channel)
    x_emulator.set_rate_limit("mentions", limit=0, window_seconds=600)
    outcome = poll(x_channel)
    assert "rate limit" in outcome.error.lower()
    assert x_channel.healthy
    assert x_channel.next_poll_at > timezone.now() + timedelta(seconds=500)


def test_revoked_token_marks_the_channel_unhealthy(x_channel, x_emulator):
    x_emulator.set_tokens(revoked=True)
    poll(x_channel)
    assert not x_channel.healthy
    assert "401" in x_channel.last_error


def test_oauth1_credentials_work(x_emulator, db):
    """The four OAuth 1.0a keys work as well as an OAuth 2.0 user token."""
    from channel_adapters.x import XAdapter

    config, secrets = XAdapter.split_config(
        {
            "consumer_key": "ck",
            "consumer_secret": "cs",
            "access_token": "at",
            "access_token_secret": "ats",
            "base_url": x_emulator.url,
        }
    )
    channel = Channel.objects.create(kind="x", name="oauth1", config=config, secrets=secrets)
    x_emulator.post(x_emulator.people["maya"], "@ithelp oauth1?")
    assert poll(channel).stored == 1


# Replies --------------------------------------------------------------------


def test_public_reply_to_a_summoning_mention(x_channel, x_emulator, agent):
    """An agent's reply to an @mention goes out as a public reply to that post."""
    mention = x_emulator.post(x_emulator.people["maya"], "@ithelp printer jam")["id"]
    poll(x_channel)
    ticket = Ticket.objects.get()
    assert [m.key for m in reply_modes(ticket) if m.allowed] == ["public", "dm"]
    sent = reply(ticket, agent, "On our way 🏃", mode="public")
    assert sent.delivery_status == Message.DeliveryStatus.SENT
    [post] = x_emulator.account_posts()
    assert post["in_reply_to_tweet_id"] == mention
    assert post["text"] == "On our way 🏃"


def test_public_reply_not_allowed_when_not_summoned_offers_dm(x_emulator, agent, db):
    """X's 2026 rule: no API reply to a post that did not @mention us; the console says so and DM works."""
    channel = make_x_channel(x_emulator, triage={"auto_ticket": "all"})
    ours = x_emulator.post(x_emulator.store.account_id, "Planned outage at 22:00")["id"]
    x_emulator.post(x_emulator.people["leo"], "is SAP affected?", in_reply_to_tweet_id=ours)
    poll(channel)
    ticket = Ticket.objects.get()
    public, dm = reply_modes(ticket)
    assert (public.key, public.allowed) == ("public", False)
    assert "@mention" in public.reason
    assert dm.allowed
    with pytest.raises(ReplyError, match="not possible"):
        reply(ticket, agent, "Yes", mode="public")

    sent = reply(ticket, agent, "Yes, SAP too, sorry")
    assert sent.reply_mode == "dm"
    assert sent.delivery_status == Message.DeliveryStatus.SENT
    [dm_sent] = x_emulator.account_dms()
    assert dm_sent["text"] == "Yes, SAP too, sorry"

    Channel.objects.filter(pk=channel.pk).update(
        cursor={
            **channel.cursor,
            "dms": {"next_at": 0, **{k: v for k, v in channel.cursor["dms"].items() if k != "next_at"}},
        }
    )
    channel.refresh_from_db()
    x_emulator.dm_from(x_emulator.people["leo"], "thanks, when is it back?")
    poll(channel)
    assert Ticket.objects.count() == 1, "the DM answer joins the ticket the DM was sent from"
    assert Ticket.objects.get().message_count == 3


def test_dm_ticket_replies_by_dm(x_channel, x_emulator, agent):
    x_emulator.dm_from(x_emulator.people["maya"], "locked out")
    poll(x_channel)
    ticket = Ticket.objects.get()
    assert [m.key for m in reply_modes(ticket)] == ["dm"]
    assert reply(ticket, agent, "Reset link sent").delivery_status == Message.DeliveryStatus.SENT
    assert x_emulator.account_dms()[0]["text"] == "Reset link sent"


def test_public_acknowledgement_then_dm(x_emulator, agent, db):
    """With public_ack, a new mention is answered publicly with its ticket number; agents then default to DM."""
    channel = make_x_channel(x_emulator, public_ack="Thanks! Ticket #{ticket} is open, we'll continue in DM.")
    x_emulator.post(x_emulator.people["maya"], "@ithelp outlook crashes")
    poll(channel)
    ticket = Ticket.objects.get()
    [ack] = x_emulator.account_posts()
    assert ack["text"] == f"Thanks! Ticket #{ticket.pk} is open, we'll continue in DM."
    assert reply_modes(ticket)[0].key == "dm"
    assert reply(ticket, agent, "Which Outlook version?").reply_mode == "dm"


def test_public_reply_length_is_weighted_like_x(x_channel, x_emulator, agent):
    """280 weighted characters: a URL counts 23 and an emoji 2, checked before anything is queued."""
    x_emulator.post(x_emulator.people["maya"], "@ithelp link?")
    poll(x_channel)
    ticket = Ticket.objects.get()
    fits = "🙂" * 128 + " https://example.com/" + "x" * 200  # 256 + 1 + 23 = 280
    assert reply(ticket, agent, fits, mode="public").delivery_status == Message.DeliveryStatus.SENT
    with pytest.raises(ReplyError, match="281 characters"):
        reply_to_ticket(ticket=ticket, author=agent, body=fits + "!", mode="public")


def test_reply_rate_limited_is_retried_after_x_reset(x_channel, x_emulator, agent):
    x_emulator.post(x_emulator.people["maya"], "@ithelp ping")
    poll(x_channel)
    x_emulator.set_rate_limit("create_tweet", limit=0, window_seconds=120)
    from helpdesk.celery import app

    app.conf.task_always_eager = False
    message = reply_to_ticket(ticket=Ticket.objects.get(), author=agent, body="pong", mode="public")
    outcome = delivery.deliver_message(message.pk)
    assert outcome.status == "retry"
    assert 100 < outcome.retry_in <= 150


# Cost meter -------------------------------------------------------------------


def test_every_call_is_metered_at_the_admin_price(x_channel, x_emulator, agent):
    """Mentions read, DM events read and posts created are recorded per channel with their estimated cost."""
    maya = x_emulator.people["maya"]
    x_emulator.post_many([{"author_id": maya, "text": f"@ithelp {i}"} for i in range(10)])
    x_emulator.dm_from(maya, "dm")
    poll(x_channel)
    reply(Ticket.objects.filter(subject="@ithelp 0").get(), agent, "ok", mode="public")
    usage = {u.operation: (u.units, u.cost) for u in ApiUsage.objects.filter(channel=x_channel)}
    assert usage["post_read_owned"] == (10, Decimal("0.010000"))
    assert usage["dm_event_read"] == (1, Decimal("0.010000"))
    assert usage["post_create"] == (1, Decimal("0.015000"))


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
