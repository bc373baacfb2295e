"""The ticket page where macros, live updates, merging and attachments meet.

- A refused reply or note comes back with its draft (kind, conversation, mode, macro), not a redirect.
- A merged ticket's timeline says which conversation each message belongs to; the requester panel lists
  everyone who wrote.
- Switching "Reply in" updates the whole composer: send modes, counter, length hint and file input.
- The held-back page keeps the chosen conversation and macro, and "Send anyway" applies both.

Uses ``agent`` (Alex Agent), ``other_agent`` (Dana Desk), ``locmem_channel`` and ``queries_for`` from conftest.
"""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from channel_adapters import locmem
from channel_adapters.base import Envelope, EnvelopeKind, Sender
from channels_ingest.models import Channel
from tests.conftest import queries_for, receive
from tests.factories import BASE_TIME, message, x_dm_from_bob
from tickets.merging import merge_tickets
from tickets.models import Attachment, Identity, Macro, Message, Ticket, TicketThread
from tickets.replies import add_note, reply_to_ticket


def detail_url(ticket):
    return reverse("console:ticket-detail", args=[ticket.pk])


def reply_url(ticket):
    return reverse("console:ticket-reply", args=[ticket.pk])


def note_url(ticket):
    return reverse("console:ticket-note", args=[ticket.pk])


def text_of(html):
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


def seen_of(html):
    return {
        name: re.search(rf'name="{name}" value="([^"]*)"', html).group(1) for name in ("seen_messages", "seen_events")
    }


def refusal_of(html):
    """The composer's refusal notice, as a reader hears it ("" if there is none)."""
    found = re.search(r'<div id="composer-refused"[^>]*role="alert"[^>]*>(.*?)</div>', html, re.S)
    return text_of(found.group(1)) if found else ""


def selected_conversation(html):
    select = re.search(r'<select id="reply-thread".*?</select>', html, re.S).group(0)
    return int(re.search(r'<option value="(\d+)" selected>', select).group(1))


def upload(name="boot.log", content=b"line 1\n"):
    return SimpleUploadedFile(name, content, content_type="text/plain")


def outbound():
    return Message.objects.filter(direction=Message.Direction.OUTBOUND)


@pytest.fixture
def ticket(locmem_channel):
    receive(locmem_channel, [message("m0", text="The printer is on fire")])
    return Ticket.objects.get()


@pytest.fixture
def merged(agent, locmem_channel):
    """Alice's ticket (a1, a2: she wrote last, at minute 5) with Bob's (b1) merged in."""
    receive(
        locmem_channel,
        [
            message("a1", user="alice", name="Alice", text="VPN is down", minute=0),
            message("a2", thread="a1", user="alice", name="Alice", text="Still down", minute=5),
            message("b1", user="bob", name="Bob", text="VPN down for me too", minute=2),
        ],
    )
    merge_tickets(ticket_ids=list(Ticket.objects.values_list("pk", flat=True)), actor=agent)
    return Ticket.objects.get(merged_into=None)


def thread(key):
    return TicketThread.objects.get(key=key)


@pytest.fixture
def x_channel(db):
    """An X channel that is never called: only asked for reply modes and lengths."""
    return Channel.objects.create(
        kind="x",
        name="x-help",
        config={"base_url": "http://127.0.0.1:9"},
        secrets={"bearer_token": "t"},
        state={"account_id": "1", "username": "ithelp"},
    )


@pytest.fixture
def with_x_dm(agent, merged, x_channel):
    """``merged`` plus an X DM conversation (Bob on X, who wrote at minute 0: not the default)."""
    receive(
        x_channel,
        [x_dm_from_bob()],
    )
    merge_tickets(ticket_ids=[merged.pk, Ticket.objects.get(channel=x_channel).pk], actor=agent, keep_id=merged.pk)
    return merged


def shared_macro(**fields):
    return Macro.objects.create(**{"name": "Ask for details", "body": "Hi {requester_first_name}", **fields})


# 1. A refused reply or note keeps the draft ----------------------------------------------------------


def test_a_reply_too_long_comes_back_with_its_draft_and_the_reason(agent_client, ticket):
    body = "<b>Hot</b> " + "y" * 1000
    response = agent_client.post(reply_url(ticket), {"body": body})
    assert response.status_code == 422  # the page itself, not a redirect: the draft is still there
    html = response.content.decode()
    assert f">{body.replace('<', '&lt;').replace('>', '&gt;')}</textarea>" in html
    assert refusal_of(html) == "Not sent: The reply is 1011 characters; this channel takes at most 1000."
    assert 'id="composer-kind-reply" checked' in html
    assert 'aria-invalid="true"' in html
    assert "composer-refused" in re.search(r'aria-describedby="([^"]*)"', html)[1]
    assert "1011 / 1000" in html
    assert "11 over the limit" in html
    assert not outbound().exists()


def test_an_empty_reply_and_an_empty_note_are_refused_in_place(agent_client, ticket):
    html = agent_client.post(reply_url(ticket), {"body": "   "}).content.decode()
    assert refusal_of(html) == "Not sent: A reply needs some text."
    response = agent_client.post(note_url(ticket), {"body": "x" * (Message.MAX_BODY_LENGTH + 1)})
    assert response.status_code == 422
    html = response.content.decode()
    assert 'id="composer-kind-note" checked' in html
    assert ">" + "x" * 50 in html
    assert (
        refusal_of(html)
        == f"Not added: The note is {Message.MAX_BODY_LENGTH + 1} characters; notes take at most {Message.MAX_BODY_LENGTH}."
    )
    assert not Message.objects.filter(direction=Message.Direction.NOTE).exists()


def test_refused_files_must_be_attached_again(agent_client, ticket, settings):
    settings.ATTACHMENT_MAX_BYTES = 1000
    response = agent_client.post(reply_url(ticket), {"body": "See the log", "files": [upload("huge.bin", b"x" * 2048)]})
    assert response.status_code == 422
    html = response.content.decode()
    assert ">See the log</textarea>" in html
    assert refusal_of(html) == (
        "Not sent: huge.bin is too large (2.0 KB); files may be at most 1000 bytes. "
        "Your attached files were not kept: attach them again before sending."
    )
    assert not Attachment.objects.exists()


def test_a_conversation_of_another_ticket_is_refused_with_the_draft(agent_client, merged, locmem_channel):
    receive(locmem_channel, [message("c1", user="carol", name="Carol", text="No VPN", minute=3)])
    carols = thread("c1")
    response = agent_client.post(reply_url(merged), {"body": "On it", "thread": carols.pk})
    assert response.status_code == 422
    html = response.content.decode()
    assert refusal_of(html) == (
        f"Not sent: That conversation is not part of ticket #{merged.pk}; pick one of its own conversations."
    )
    assert ">On it</textarea>" in html
    assert selected_conversation(html) == thread("a1").pk
    assert not outbound().exists()
    assert locmem.outbox == []


def test_a_refused_reply_keeps_its_conversation_and_mode(agent_client, with_x_dm):
    dm = thread("dm:55")
    response = agent_client.post(reply_url(with_x_dm), {"body": "x" * 10_001, "thread": dm.pk, "mode": "dm"})
    assert response.status_code == 422
    html = response.content.decode()
    assert refusal_of(html) == "Not sent: The reply is 10001 characters; a direct message takes at most 10000."
    assert selected_conversation(html) == dm.pk
    assert re.search(r'<input type="radio" name="mode" value="dm"[^>]*checked', html)
    assert "10001 / 10000" in html
    assert "No attachments" in html  # the X DM's composer, not the default conversation's


def test_a_macro_that_is_gone_is_refused_with_the_draft(agent_client, ticket):
    macro = shared_macro(status="pending")
    gone = macro.pk
    macro.delete()
    response = agent_client.post(reply_url(ticket), {"body": "Hello", "macro": gone})
    assert response.status_code == 422
    html = response.content.decode()
    assert refusal_of(html) == (
        "Not sent: That macro is no longer available to you. Nothing was sent and the macro was not applied."
    )
    assert ">Hello</textarea>" in html
    assert 'name="macro" value=' not in html


def test_a_refused_macro_action_keeps_the_draft_its_macro_and_conversation(agent_client, other_agent, merged):
    """The macro's agent lost the agent role: nothing is sent, and everything the agent chose is still there."""
    macro = shared_macro(assignee_action=Macro.AssigneeAction.AGENT, assignee=other_agent)
    other_agent.groups.clear()
    bobs = thread("b1")
    response = agent_client.post(reply_url(merged), {"body": "Dana will help", "macro": macro.pk, "thread": bobs.pk})
    assert response.status_code == 422
    html = response.content.decode()
    assert "Dana Desk is not an agent" in refusal_of(html)
    assert "the macro was not applied" in refusal_of(html)
    assert ">Dana will help</textarea>" in html
    assert selected_conversation(html) == bobs.pk
    assert_macro_kept(html, macro)
    assert not outbound().exists()


def assert_macro_kept(html, macro):
    assert f'<input type="hidden" name="macro" value="{macro.pk}">' in html
    assert f"Using <strong><bdi>{macro.name}</bdi></strong>" in html
    assert f'<option value="{macro.pk}" selected>' in html  # the picker shows it chosen too


def test_a_reply_that_goes_through_still_redirects(agent_client, ticket):
    response = agent_client.post(reply_url(ticket), {"body": "On my way"})
    assert response.status_code == 302
    assert response.url == detail_url(ticket)


# 2. Several conversations in one ticket ----------------------------------------------------------------


def conversation_labels(html):
    """Each timeline message's conversation label, by message id ("" when it has none)."""
    labels = {}
    for pk, item in re.findall(r'<li id="message-(\d+)"(.*?)</li>', html, re.S):
        found = re.search(r'<span class="message-conversation">(.*?)</span>\s*</div>', item, re.S)
        labels[int(pk)] = text_of(found.group(1)) if found else ""
    return labels


def test_the_timeline_says_which_conversation_each_message_is_in(agent_client, agent, merged):
    single = Ticket.objects.create(subject="alone", requester=merged.requester)
    receive_one = Message.objects.create(ticket=single, direction="inbound", body="hi")
    assert conversation_labels(agent_client.get(detail_url(single)).content.decode()) == {receive_one.pk: ""}

    to_bob = reply_to_ticket(ticket=merged, author=agent, body="Bob: on it", thread=thread("b1"))
    note = add_note(ticket=merged, author=agent, body="Both about the VPN")
    labels = conversation_labels(agent_client.get(detail_url(merged)).content.decode())
    by_id = {m.external_id or m.body: m.pk for m in merged.messages.all()}
    assert labels == {
        by_id["a1"]: "Conversation: Locmem lm — Alice",
        by_id["a2"]: "Conversation: Locmem lm — Alice",
        by_id["b1"]: "Conversation: Locmem lm — Bob",
        to_bob.pk: "Conversation: Locmem lm — Bob",
        note.pk: "",  # a note is in no conversation
    }


def test_live_and_earlier_entries_are_labelled_too(agent_client, agent, merged, locmem_channel):
    page = agent_client.get(detail_url(merged)).content.decode()
    poll = re.search(r'id="live-poller" hidden\s+hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
    receive(locmem_channel, [message("b2", thread="b1", user="bob", name="Bob", text="Any news?", minute=30)])
    html = agent_client.get(poll, headers={"HX-Request": "true"}).content.decode()
    assert conversation_labels(html) == {Message.objects.get(external_id="b2").pk: "Conversation: Locmem lm — Bob"}

    newest = merged.messages.order_by("created_at", "id").last()
    earlier = reverse("console:ticket-earlier", args=[merged.pk]) + f"?before={newest.pk}"
    labels = conversation_labels(agent_client.get(earlier).content.decode())
    assert set(labels.values()) == {"Conversation: Locmem lm — Alice", "Conversation: Locmem lm — Bob"}


def test_the_requester_panel_lists_everyone_who_wrote(agent_client, agent, merged, locmem_channel):
    bob = Identity.objects.get(external_id="bob").contact
    Identity.objects.create(contact=bob, namespace="x", external_id="200", handle="@bob_x", display_name="Bob X")
    html = agent_client.get(detail_url(merged)).content.decode()
    panel = text_of(html[html.index('<aside class="requester-panel"') :])
    assert panel.startswith("People Alice (requester)")
    assert "Bob Accounts of Bob locmem · bob (Bob) x · @bob_x (Bob X)" in panel
    assert "Alice (requester) Accounts of Alice locmem · alice (Alice)" in panel
    assert html.count('class="requester-name"') == 2


def test_the_page_costs_the_same_queries_for_one_or_many_conversations(agent_client, agent, locmem_channel):
    receive(locmem_channel, [message("s1", user="solo", name="Solo", text="Printer")])
    single = Ticket.objects.get()
    one = queries_for(agent_client, detail_url(single))

    receive(locmem_channel, [message(f"d{n}", user=f"u{n}", name=f"Person {n}", minute=n) for n in range(2)])
    merge_tickets(ticket_ids=list(Ticket.objects.values_list("pk", flat=True)), actor=agent, keep_id=single.pk)
    two = queries_for(agent_client, detail_url(single))

    receive(locmem_channel, [message(f"e{n}", user=f"v{n}", name=f"Other {n}", minute=n) for n in range(6)])
    receive(locmem_channel, [message(f"f{n}", thread="e0", user="v0", minute=10 + n) for n in range(20)])
    ids = list(Ticket.objects.filter(merged_into=None).values_list("pk", flat=True))
    merge_tickets(ticket_ids=ids, actor=agent, keep_id=single.pk)
    many = queries_for(agent_client, detail_url(single))
    assert single.threads.count() == 9
    assert single.messages.count() == 29
    assert one == two == many


# 3. Switching "Reply in" updates the whole composer ----------------------------------------------------


def switch(client, ticket, thread):
    url = reverse("console:reply-conversation", args=[ticket.pk])
    return client.post(url, {"thread": thread.pk, "body": "hi"}, headers={"HX-Request": "true"}).content.decode()


def test_switching_conversation_updates_the_length_hint_and_the_file_input(agent_client, with_x_dm):
    page = agent_client.get(detail_url(with_x_dm)).content.decode()
    assert selected_conversation(page) == thread("a1").pk
    assert re.search(r'<p id="reply-hint" class="hint">\s*At most 1000 characters on this channel.\s*</p>', page)
    assert re.search(r'<fieldset id="composer-files"[^>]*data-modes=""\s*>', page)  # shown and enabled
    assert "Up to 3 files, each at most 1.0" in page

    to_dm = switch(agent_client, with_x_dm, thread("dm:55"))
    hint = re.search(r'<p id="reply-hint"[^>]*hx-swap-oob="true"[^>]*>(.*?)</p>', to_dm, re.S)
    assert hint
    assert hint.group(1).strip() == ""
    files = re.search(r'<div id="composer-files-slot" hx-swap-oob="innerHTML">(.*?)</div>', to_dm, re.S)
    assert files
    assert "No attachments: replies on this channel carry text only." in files.group(1)
    assert 'type="file"' not in to_dm

    back = switch(agent_client, with_x_dm, thread("a1"))
    assert re.search(
        r'<p id="reply-hint"[^>]*hx-swap-oob="true"[^>]*>\s*At most 1000 characters on this channel.', back
    )
    files = re.search(r'<div id="composer-files-slot" hx-swap-oob="innerHTML">(.*?)</div>\s*$', back, re.S)
    assert files
    assert 'type="file"' in files.group(1)
    assert "Up to 3 files, each at most 1.0" in files.group(1)
    assert "hidden disabled" not in files.group(1)


def test_the_page_starts_with_the_default_conversations_hint_and_files(agent_client, agent, with_x_dm, x_channel):
    """When the X DM is where the requester wrote last, the page opens on its composer."""
    receive(
        x_channel,
        [
            Envelope(
                external_id="dm:2",
                kind=EnvelopeKind.MESSAGE,
                thread_key="dm:55",
                sent_at=BASE_TIME.replace(hour=11),
                sender=Sender(namespace="x", external_id="200", handle="bob_x", display_name=""),
                text="hello?",
                starts_thread=False,
                reopens=False,
            )
        ],
    )
    page = agent_client.get(detail_url(with_x_dm)).content.decode()
    assert selected_conversation(page) == thread("dm:55").pk
    assert re.search(r'<p id="reply-hint" class="hint">\s*</p>', page)
    assert "No attachments" in page
    assert 'type="file"' not in page


# 4. The held-back page keeps the conversation and the macro ------------------------------------------


def test_a_held_back_reply_keeps_its_conversation_and_macro_and_send_anyway_applies_both(
    agent_client, agent, other_agent, merged, django_capture_on_commit_callbacks
):
    macro = shared_macro(status="pending", assignee_action=Macro.AssigneeAction.APPLIER)
    seen = seen_of(agent_client.get(detail_url(merged)).content.decode())
    add_note(ticket=merged, author=other_agent, body="I am on the VPN one")
    bobs = thread("b1")
    draft = {"body": "Bob: we are on it.", "thread": bobs.pk, "macro": macro.pk, **seen}

    response = agent_client.post(reply_url(merged), draft)
    assert response.status_code == 409
    html = response.content.decode()
    assert ">Bob: we are on it.</textarea>" in html
    assert selected_conversation(html) == bobs.pk
    assert_macro_kept(html, macro)
    assert not outbound().exists()

    with django_capture_on_commit_callbacks(execute=True):
        sent = agent_client.post(reply_url(merged), {**draft, "confirm": "1"})
    assert sent.status_code == 302
    assert locmem.outbox == [{"thread_key": "b1", "text": "Bob: we are on it."}]
    merged.refresh_from_db()
    assert (merged.status, merged.assignee) == ("pending", agent)


def test_held_back_files_are_asked_for_again_in_the_composer(agent_client, other_agent, ticket):
    seen = seen_of(agent_client.get(detail_url(ticket)).content.decode())
    add_note(ticket=ticket, author=other_agent, body="Mine")
    response = agent_client.post(reply_url(ticket), {"body": "Log attached", "files": [upload()], **seen})
    assert response.status_code == 409
    assert (
        refusal_of(response.content.decode()) == "Your attached files were not kept: attach them again before sending."
    )
