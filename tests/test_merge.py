"""Merging duplicate tickets: conversations and messages move to the kept ticket, and replies still reach everyone.

Tickets arrive on the locmem channel (``receive``); the locmem adapter records every reply it sends
(``locmem.outbox``), so a reply is checked against the conversation it really went to.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from channel_adapters import locmem
from channels_ingest.models import Channel
from tests.conftest import receive
from tests.factories import BASE_TIME, composer_time, message, x_dm_from_bob
from tickets.merging import merge_tickets
from tickets.models import Message, Ticket, TicketEvent, TicketThread
from tickets.updates import TicketUpdateError

MERGE = reverse("console:ticket-merge")


def detail_url(ticket):
    return reverse("console:ticket-detail", args=[ticket.pk])


def flashes(response):
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def duplicates(locmem_channel):
    """Alice's ticket (2 messages, the oldest), then Bob's (1 message) and Carol's (1 message) about the same outage."""
    receive(
        locmem_channel,
        [
            message("a1", user="alice", name="Alice", text="VPN is down", minute=0),
            message("a2", thread="a1", user="alice", name="Alice", text="Still down", minute=5),
            message("b1", user="bob", name="Bob", text="VPN down for me too", minute=2),
            message("c1", user="carol", name="Carol", text="No VPN here", minute=3),
        ],
    )
    tickets = {t.requester.display_name: t for t in Ticket.objects.select_related("requester")}
    return tickets["Alice"], tickets["Bob"], tickets["Carol"]


def merge(agent, *tickets, keep=None):
    return merge_tickets(ticket_ids=[t.pk for t in tickets], actor=agent, keep_id=keep.pk if keep else None)


# The service -------------------------------------------------------------------


def test_merge_moves_threads_and_messages_and_closes_the_others(agent, duplicates):
    alice, bob, carol = duplicates
    outcome = merge(agent, bob, alice, carol)
    assert outcome.kept == alice  # the oldest, by default
    assert {t.pk for t in outcome.merged} == {bob.pk, carol.pk}

    assert set(Message.objects.values_list("ticket_id", flat=True)) == {alice.pk}
    threads = {t.key: t.ticket_id for t in TicketThread.objects.all()}
    assert threads == {"a1": alice.pk, "b1": alice.pk, "c1": alice.pk}
    # Each message keeps its own conversation, so a reply can go back to each requester.
    assert {m.external_id: m.thread.key for m in Message.objects.select_related("thread")} == {
        "a1": "a1",
        "a2": "a1",
        "b1": "b1",
        "c1": "c1",
    }

    alice.refresh_from_db()
    assert alice.message_count == 4
    assert alice.merged_into is None
    assert alice.status == "new"
    assert alice.last_activity_at == BASE_TIME + timedelta(minutes=5)  # the latest message
    for ticket in (bob, carol):
        ticket.refresh_from_db()
        assert (ticket.status, ticket.merged_into, ticket.message_count) == ("closed", alice, 0)
        assert ticket.resolved_at is not None
        assert {(e.kind, e.old_value, e.new_value, e.actor) for e in ticket.events.all()} == {
            ("status", "new", "closed", agent),
            ("merged", str(ticket.pk), str(alice.pk), agent),
        }
    assert {(e.kind, e.old_value, e.new_value) for e in alice.events.all()} == {
        ("merged", str(bob.pk), str(alice.pk)),
        ("merged", str(carol.pk), str(alice.pk)),
    }


def test_the_agent_picks_the_ticket_to_keep(agent, duplicates):
    alice, bob, _ = duplicates
    outcome = merge(agent, alice, bob, keep=bob)
    assert outcome.kept == bob
    bob.refresh_from_db()
    alice.refresh_from_db()
    assert bob.message_count == 3
    assert alice.merged_into == bob


def test_a_resolved_ticket_kept_reopens_when_an_open_one_merges_in(agent, duplicates):
    """An open conversation must not drop out of the queue because the ticket it joined was resolved."""
    alice, bob, _ = duplicates
    Ticket.objects.filter(pk=alice.pk).update(status="resolved", resolved_at=BASE_TIME)
    merge(agent, alice, bob)
    alice.refresh_from_db()
    assert alice.status == "open"
    assert alice.resolved_at is None
    assert alice.events.filter(kind="status", old_value="resolved", new_value="open").exists()


@pytest.mark.parametrize(
    ("selection", "keep", "error"),
    [
        ("A", None, "Select at least 2 tickets to merge."),
        ("", None, "Select at least 2 tickets to merge."),
        ("AA", None, "A ticket cannot be merged into itself."),
        ("A", "A", "A ticket cannot be merged into itself."),
        ("AB", "C", "The ticket to keep, #{C}, must be one of the selected tickets."),
    ],
)
def test_merges_that_are_refused(agent, duplicates, selection, keep, error):
    by_letter = dict(zip("ABC", duplicates, strict=True))
    ids = [by_letter[letter].pk for letter in selection]
    with pytest.raises(TicketUpdateError) as refused:
        merge_tickets(ticket_ids=ids, actor=agent, keep_id=by_letter[keep].pk if keep else None)
    assert str(refused.value) == error.format(C=by_letter["C"].pk)
    assert not TicketEvent.objects.exists()
    assert not Ticket.objects.filter(merged_into__isnull=False).exists()


def test_an_already_merged_ticket_cannot_be_merged_again(agent, duplicates):
    alice, bob, carol = duplicates
    merge(agent, alice, bob)
    events = TicketEvent.objects.count()
    with pytest.raises(TicketUpdateError, match=f"#{bob.pk} was already merged into #{alice.pk}."):
        merge(agent, bob, carol)
    with pytest.raises(TicketUpdateError, match=f"#{bob.pk} was already merged into #{alice.pk}."):
        merge(agent, carol, bob, keep=bob)
    assert TicketEvent.objects.count() == events
    carol.refresh_from_db()
    assert carol.merged_into is None
    assert carol.messages.count() == 1


def test_merge_query_count_does_not_grow(agent, locmem_channel):
    """Merging 3 tickets or 30 takes the same queries."""

    def tickets(prefix, count):
        receive(locmem_channel, [message(f"{prefix}{n}", user=f"{prefix}{n}", minute=n) for n in range(count)])
        return list(Ticket.objects.filter(subject__startswith=f"text of {prefix}"))

    few, many = tickets("few", 3), tickets("many", 30)
    with CaptureQueriesContext(connection) as few_queries:
        merge(agent, *few)
    with CaptureQueriesContext(connection) as many_queries:
        merge(agent, *many)
    assert len(many_queries) == len(few_queries)
    assert Ticket.objects.get(pk=min(t.pk for t in many)).message_count == 30


# After a merge: new messages and replies -------------------------------------------------


def test_later_messages_on_a_moved_conversation_land_in_the_kept_ticket(agent, locmem_channel, duplicates):
    alice, bob, _ = duplicates
    merge(agent, alice, bob)
    receive(locmem_channel, [message("b2", thread="b1", user="bob", name="Bob", text="Any news?", minute=30)])
    assert Message.objects.get(external_id="b2").ticket_id == alice.pk
    alice.refresh_from_db()
    assert alice.message_count == 4
    assert alice.last_activity_at == BASE_TIME + timedelta(minutes=30)
    assert Ticket.objects.count() == 3  # no new ticket was opened for Bob


def test_a_reply_goes_to_the_chosen_conversation(agent_client, agent, duplicates, django_capture_on_commit_callbacks):
    """After the merge, a reply can answer each requester in their own conversation."""
    alice, bob, _ = duplicates
    merge(agent, alice, bob)
    threads = {t.key: t for t in TicketThread.objects.all()}
    reply_url = reverse("console:ticket-reply", args=[alice.pk])
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(reply_url, {"body": "Bob: we are on it.", "thread": threads["b1"].pk})
        agent_client.post(reply_url, {"body": "Alice: we are on it.", "thread": threads["a1"].pk})
        agent_client.post(reply_url, {"body": "Whoever wrote last."})
    assert locmem.outbox == [
        {"thread_key": "b1", "text": "Bob: we are on it."},
        {"thread_key": "a1", "text": "Alice: we are on it."},
        {"thread_key": "a1", "text": "Whoever wrote last."},  # Alice wrote last (minute 5)
    ]
    assert set(Message.objects.filter(direction="outbound").values_list("ticket_id", "delivery_status")) == {
        (alice.pk, "sent")
    }


def test_a_reply_to_another_tickets_conversation_is_refused(agent_client, duplicates):
    alice, bob, _ = duplicates
    bobs_thread = TicketThread.objects.get(key="b1")
    for thread in (bobs_thread.pk, "999999", "nonsense"):
        response = agent_client.post(reverse("console:ticket-reply", args=[alice.pk]), {"body": "Hi", "thread": thread})
        assert response.status_code == 422
        assert response.context["refusal"] == (
            f"That conversation is not part of ticket #{alice.pk}; pick one of its own conversations."
        )
    assert not Message.objects.filter(direction="outbound").exists()
    assert locmem.outbox == []


def test_a_merged_ticket_takes_no_replies(agent_client, agent, duplicates):
    alice, bob, _ = duplicates
    merge(agent, alice, bob)
    response = agent_client.post(reverse("console:ticket-reply", args=[bob.pk]), {"body": "Hi"})
    assert response.status_code == 422
    assert response.context["refusal"] == f"This ticket was merged into #{alice.pk}; reply there."
    assert not Message.objects.filter(direction="outbound").exists()


# The console --------------------------------------------------------------------


def test_merging_from_the_queue_asks_which_ticket_to_keep(agent_client, duplicates):
    alice, bob, carol = duplicates
    ids = [str(bob.pk), str(alice.pk)]
    response = agent_client.post(MERGE, {"ids": ids, "next": "/console/?view=open"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Merge 2 tickets" in html
    assert f'<input type="radio" name="keep" value="{alice.pk}" id="keep-{alice.pk}" checked>' in html
    assert f'<input type="radio" name="keep" value="{bob.pk}" id="keep-{bob.pk}">' in html
    assert f'<label for="keep-{alice.pk}">' in html
    assert "VPN is down" in html
    assert 'name="next" value="/console/?view=open"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert f'id="keep-{carol.pk}"' not in html  # only the ticked tickets are offered

    response = agent_client.post(MERGE, {"ids": ids, "keep": str(bob.pk)}, follow=True)
    assert response.redirect_chain[-1][0] == detail_url(bob)
    assert flashes(response) == [f"Merged #{alice.pk} into #{bob.pk}. Replies still go to each conversation's channel."]
    alice.refresh_from_db()
    assert alice.merged_into == bob


def test_merge_refusals_are_shown_in_the_queue(agent_client, agent, duplicates):
    alice, bob, carol = duplicates
    response = agent_client.post(MERGE, {"ids": [str(alice.pk)]}, follow=True)
    assert flashes(response) == ["Select at least 2 tickets to merge."]
    merge(agent, alice, bob)
    response = agent_client.post(
        MERGE, {"ids": [str(bob.pk), str(carol.pk)], "keep": str(carol.pk), "next": "/console/?view=open"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/console/?view=open"
    assert flashes(response) == [f"#{bob.pk} was already merged into #{alice.pk}."]


def test_merged_ticket_shows_a_banner_and_both_timelines_say_so(agent_client, agent, duplicates):
    alice, bob, _ = duplicates
    merge(agent, alice, bob)
    html = agent_client.get(detail_url(bob)).content.decode()
    assert f'<strong>Merged into <a href="{detail_url(alice)}">#{alice.pk}</a></strong>' in html
    assert f'merged this ticket into <a href="{detail_url(alice)}">#{alice.pk}</a>' in html
    kept = agent_client.get(detail_url(alice)).content.decode()
    assert "Merged into" not in kept
    assert f'merged <a href="{detail_url(bob)}">#{bob.pk}</a> into this ticket' in kept
    assert "VPN down for me too" in kept  # Bob's message is in the kept ticket's timeline


def test_composer_offers_each_conversation_defaulting_to_the_latest(agent_client, agent, duplicates):
    alice, bob, carol = duplicates
    merge(agent, alice, bob, carol)
    threads = {t.key: t.pk for t in TicketThread.objects.all()}
    html = agent_client.get(detail_url(alice)).content.decode()
    assert '<label for="reply-thread">Reply in</label>' in html
    assert (
        f'<option value="{threads["a1"]}" selected>Locmem lm — Alice (last wrote {composer_time(5)})</option>' in html
    )
    assert f'<option value="{threads["b1"]}">Locmem lm — Bob (last wrote {composer_time(2)})</option>' in html
    assert f'<option value="{threads["c1"]}">Locmem lm — Carol' in html
    single = Ticket.objects.create(subject="s", requester=alice.requester)
    assert 'id="reply-thread"' not in agent_client.get(detail_url(single)).content.decode()


def test_merge_is_for_agents_with_the_csrf_token(client, employee, agent, duplicates):
    alice, bob, _ = duplicates
    data = {"ids": [str(alice.pk), str(bob.pk)], "keep": str(alice.pk)}
    assert client.post(MERGE, data).url.startswith(reverse("login"))
    client.force_login(employee)
    assert client.post(MERGE, data).status_code == 403
    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(agent)
    assert guarded.post(MERGE, data).status_code == 403
    assert not Ticket.objects.filter(merged_into__isnull=False).exists()


# Conversations on different channels ---------------------------------------------------


@pytest.fixture
def x_channel(db):
    """An X channel that is never called: these tests only ask it for reply modes and lengths."""
    return Channel.objects.create(
        kind="x",
        name="x-help",
        config={"base_url": "http://127.0.0.1:9"},
        secrets={"bearer_token": "t"},
        state={"account_id": "1", "username": "ithelp"},
    )


def test_switching_conversation_brings_its_reply_modes_and_counter(agent_client, agent, duplicates, x_channel):
    """A Slack-like thread has one way to reply; an X DM has its own; the counter follows the chosen one."""
    alice, _, _ = duplicates
    receive(
        x_channel,
        [x_dm_from_bob()],
    )
    dm_ticket = Ticket.objects.get(channel=x_channel)
    merge(agent, alice, dm_ticket)
    dm_thread = TicketThread.objects.get(key="dm:55")
    alice_thread = TicketThread.objects.get(key="a1")
    html = agent_client.get(detail_url(alice)).content.decode()
    assert f'<option value="{dm_thread.pk}">X x-help · DM — bob_x' in html
    assert 'hx-post="{}"'.format(reverse("console:reply-conversation", args=[alice.pk])) in html

    switch = reverse("console:reply-conversation", args=[alice.pk])
    fragment = agent_client.post(switch, {"thread": dm_thread.pk, "body": "hi"}).content.decode()
    assert "<legend>Send as</legend>" in fragment
    assert 'value="dm"' in fragment
    assert "checked" in fragment
    assert 'id="reply-counter" hx-swap-oob="innerHTML"' in fragment
    assert "2 / 10000" in fragment
    fragment = agent_client.post(switch, {"thread": alice_thread.pk, "body": "hi"}).content.decode()
    assert "<legend>Send as</legend>" not in fragment
    assert "2 / 1000" in fragment
    other = TicketThread.objects.exclude(ticket=alice).first()
    assert agent_client.post(switch, {"thread": other.pk}).status_code == 400

    length = reverse("console:reply-length", args=[alice.pk])
    assert "2 / 10000" in agent_client.post(length, {"thread": dm_thread.pk, "body": "hi"}).content.decode()
    assert "2 / 1000" in agent_client.post(length, {"thread": alice_thread.pk, "body": "hi"}).content.decode()
