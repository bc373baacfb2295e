"""Taking in messages: tickets, conversations and people formed from envelopes."""

from dataclasses import replace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channel_adapters import locmem
from tests.factories import BASE_TIME, deletion, edit, message
from tests.helpers import PNG, open_tickets, poll_and_ingest, receive, share
from tests.helpers import poll_as_worker as poll
from tickets.models import Contact, Identity, Message, Ticket, TicketEvent


@pytest.mark.django_db
def test_a_message_of_files_alone_is_named_by_its_files(slack_channel, slack_emulator):
    share(slack_emulator, "", ("vpn-error.png", PNG, "image/png"))
    poll(slack_channel)
    assert Ticket.objects.get().subject == "vpn-error.png"
    assert Message.objects.get().body == ""


@pytest.mark.django_db
def test_top_level_message_opens_ticket_and_thread_reply_joins_it(locmem_channel):
    """A message starting a thread opens a ticket; replies in that thread join the same ticket."""
    locmem.inbox["lm"] = [
        message("a", text="VPN is down\nsince this morning"),
        message("a.1", thread="a", minute=1, text="still down"),
        message("b", user="u2", name="Bo", minute=2),
    ]
    poll_and_ingest(locmem_channel)

    vpn = Ticket.objects.get(subject="VPN is down")
    assert list(vpn.messages.values_list("body", flat=True)) == ["VPN is down\nsince this morning", "still down"]
    assert vpn.message_count == 2
    assert vpn.requester.display_name == "Ann Employee"
    assert vpn.channel == locmem_channel
    assert Ticket.objects.count() == 2


@pytest.mark.django_db
def test_edits_and_deletions_update_the_message_without_new_tickets(locmem_channel):
    """Edits replace the text and mark it edited; deletions mark it deleted; neither opens a ticket."""
    locmem.inbox["lm"] = [message("a", text="printer broken"), message("b", minute=1, text="typo")]
    poll_and_ingest(locmem_channel)
    locmem.inbox["lm"] += [edit("a", "printer on floor 3 broken"), deletion("b")]
    poll_and_ingest(locmem_channel)

    edited = Message.objects.get(external_id="a")
    assert edited.body == "printer on floor 3 broken"
    assert edited.edited_at is not None
    assert Message.objects.get(external_id="b").deleted_at is not None
    assert Ticket.objects.count() == 2


@pytest.mark.django_db
def test_resolved_ticket_reopens_when_the_requester_writes_again(locmem_channel):
    """A new message in the thread of a resolved ticket reopens it."""
    locmem.inbox["lm"] = [message("a")]
    poll_and_ingest(locmem_channel)
    Ticket.objects.update(status=Ticket.Status.RESOLVED)
    locmem.inbox["lm"].append(message("a.1", thread="a", minute=5))
    poll_and_ingest(locmem_channel)
    assert Ticket.objects.get().status == Ticket.Status.OPEN


def writes_again(tickets, minute=10):
    """Each ticket's requester (``open_tickets``'s "Person <n>") writes again in its conversation."""
    numbers = [int(ticket.subject.split()[-1]) for ticket in tickets]
    return [message(f"m{n}.1", thread=f"m{n}", user=f"u{n}", name=f"Person {n}", minute=minute) for n in numbers]


@pytest.mark.django_db
def test_a_requesters_message_reopens_their_ticket_on_the_timeline(locmem_channel):
    """A resolved ticket, or one waiting on the requester, reopens when they write; the timeline shows the
    change, made by the channel, and why. A ticket already in the agents' hands does not change."""
    resolved, waiting, fresh = open_tickets(locmem_channel, 3)
    Ticket.objects.filter(pk=resolved.pk).update(status="resolved", resolved_at=BASE_TIME)
    Ticket.objects.filter(pk=waiting.pk).update(status="pending")
    receive(locmem_channel, writes_again([resolved, waiting, fresh]))

    assert dict(Ticket.objects.values_list("pk", "status")) == {
        resolved.pk: "open",
        waiting.pk: "open",
        fresh.pk: "new",
    }
    events = {
        e.ticket_id: (e.kind, e.old_value, e.new_value, e.actor, e.actor_name, e.reason)
        for e in TicketEvent.objects.all()
    }
    assert events == {
        resolved.pk: ("status", "resolved", "open", None, "Locmem lm", "new message from Person 0"),
        waiting.pk: ("status", "pending", "open", None, "Locmem lm", "new message from Person 1"),
    }


@pytest.mark.django_db
def test_reopening_many_tickets_costs_the_queries_of_a_few(locmem_channel):
    """Ingestion stays set-based: 2 or 20 tickets reopened, the same queries."""

    def queries_to_reopen(tickets):
        Ticket.objects.filter(pk__in=[t.pk for t in tickets]).update(status="resolved")
        envelopes = writes_again(tickets)
        with CaptureQueriesContext(connection) as queries:
            receive(locmem_channel, envelopes)
        return len(queries)

    few = open_tickets(locmem_channel, 2)
    many = open_tickets(locmem_channel, 20, first=100)[2:]
    assert queries_to_reopen(many) == queries_to_reopen(few)
    assert TicketEvent.objects.filter(kind="status", new_value="open").count() == 22


@pytest.mark.django_db
def test_one_person_is_one_identity_and_contact_across_tickets(locmem_channel):
    """Messages from the same platform user share one Identity and Contact."""
    locmem.inbox["lm"] = [message("a"), message("b", minute=1), message("c", user="u2", name="Bo", minute=2)]
    poll_and_ingest(locmem_channel)
    assert Identity.objects.count() == 2
    assert Contact.objects.count() == 2
    assert Ticket.objects.filter(requester__display_name="Ann Employee").count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text",
    [
        "🔥🙈 laptop on fire 👩🏽‍💻",
        "שלום, המדפסת לא עובדת",  # RTL
        "zero\u200bwidth\u200djoin\ufeff",
        "<script>alert(1)</script><img src=x onerror=alert(1)>",
    ],
)
def test_odd_text_is_stored_exactly(locmem_channel, text):
    """Emoji, RTL, zero-width characters and HTML are stored exactly as written (escaping is the view's job)."""
    locmem.inbox["lm"] = [message("a", text=text)]
    poll_and_ingest(locmem_channel)
    assert Message.objects.get().body == text


@pytest.mark.django_db
def test_nul_characters_and_huge_text_are_stored_safely(locmem_channel):
    """NUL (refused by PostgreSQL) becomes U+FFFD; text over 40,000 characters is truncated with a note."""
    locmem.inbox["lm"] = [message("a", text="a\x00b"), message("b", minute=1, text="x" * 50_000)]
    poll_and_ingest(locmem_channel)
    assert Message.objects.get(external_id="a").body == "a\ufffdb"
    huge = Message.objects.get(external_id="b").body
    assert huge.startswith("x" * 40_000)
    assert huge.endswith("[truncated 10000 characters]")


@pytest.mark.django_db
def test_a_message_that_refers_to_a_stored_one_joins_its_conversation(locmem_channel):
    """An email reply names what it answers (In-Reply-To, References); its own thread key does not matter."""
    receive(locmem_channel, [message("<a@mail>", text="VPN down")])
    receive(
        locmem_channel,
        [
            replace(message("<b@mail>", minute=1, text="still down"), refers_to=("<unknown@mail>", "<a@mail>")),
            replace(
                message("<c@mail>", minute=2, text="and now?"), refers_to=("<b@mail>",)
            ),  # answers b, in this batch
            replace(message("<d@mail>", minute=3, text="new problem"), refers_to=("<never@mail>",)),
        ],
    )
    vpn = Ticket.objects.get(subject="VPN down")
    assert list(vpn.messages.values_list("body", flat=True)) == ["VPN down", "still down", "and now?"]
    assert Ticket.objects.filter(subject="new problem").exists()
    assert vpn.threads.count() == 1


@pytest.mark.django_db
def test_finding_the_answered_messages_costs_the_same_for_any_batch(locmem_channel):
    receive(locmem_channel, [message("<a@mail>")])

    def queries_for(first, count):
        batch = [
            replace(message(f"<r{n}@mail>", minute=n), refers_to=("<a@mail>",)) for n in range(first, first + count)
        ]
        with CaptureQueriesContext(connection) as queries:
            receive(locmem_channel, batch)
        return len(queries)

    assert queries_for(1, 2) == queries_for(10, 8)
