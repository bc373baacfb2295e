"""Taking in messages: tickets, conversations and people formed from envelopes."""

import pytest

from channel_adapters import locmem
from tests.factories import deletion, edit, message
from tests.helpers import PNG, poll_and_ingest, share
from tests.helpers import poll_as_worker as poll
from tickets.models import Contact, Identity, Message, Ticket


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
