"""The composer: replies and notes, refusals with the draft kept, collisions, the counter, conversations."""

import re
from dataclasses import replace
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from channel_adapters import locmem
from channel_adapters.base import AttachmentLimits, Envelope, EnvelopeKind, Sender
from channel_adapters.x import NOT_SUMMONED
from channels_ingest.models import Channel
from tests.factories import BASE_TIME, composer_time, message, x_dm_from_bob
from tests.helpers import (
    detail_url,
    length_url,
    make_x_channel,
    merge,
    note_url,
    outbound,
    post_reply,
    receive,
    reply_url,
    requester_writes,
    seen_of,
    send_reply,
    shared_macro,
    text_of,
    thread_with_key,
    upload,
    x_ticket,
)
from tickets.merging import merge_tickets
from tickets.models import Attachment, Macro, Message, Ticket, TicketThread
from tickets.replies import add_note, reply_to_ticket
from tickets.updates import update_ticket

LONG_URL_BODY = "see https://example.com/a/very/long/path"


def counter(client, ticket, body, mode=None):
    data = {"body": body} if mode is None else {"body": body, "mode": mode}
    response = client.post(length_url(ticket), data, headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.content.decode()


def outbound_count(ticket):
    return ticket.messages.filter(direction=Message.Direction.OUTBOUND).count()


CHANGES = {
    "a new customer message": (
        lambda ticket, dana, channel: requester_writes(channel, "m1", "It is out now, never mind"),
        "Ann Employee wrote: It is out now, never mind",
    ),
    "another agent's reply": (
        lambda ticket, dana, channel: reply_to_ticket(ticket=ticket, author=dana, body="Facilities are on it"),
        "Dana Desk replied: Facilities are on it",
    ),
    "another agent's note": (
        lambda ticket, dana, channel: add_note(ticket=ticket, author=dana, body="I am handling this"),
        "Dana Desk added an internal note: I am handling this",
    ),
    "a status change": (
        lambda ticket, dana, channel: update_ticket(ticket=ticket, actor=dana, status="resolved"),
        "Status New → Resolved · Dana Desk",
    ),
    "an assignee change": (
        lambda ticket, dana, channel: update_ticket(ticket=ticket, actor=dana, assignee=dana),
        "Assignee nobody → Dana Desk · Dana Desk",
    ),
}


def note(client, ticket, seen, body="Probably the fuser", **extra):
    return client.post(reverse("console:ticket-note", args=[ticket.pk]), {"body": body, **seen, **extra})


def refusal_of(html):
    """The composer's refusal notice, as a reader hears it ("" if there is none)."""
    found = re.search(r'<div id="composer-refused"[^>]*role="alert"[^>]*>(.*?)</div>', html, re.S)
    return text_of(found.group(1)) if found else ""


def selected_conversation(html):
    select = re.search(r'<select id="reply-thread".*?</select>', html, re.S).group(0)
    return int(re.search(r'<option value="(\d+)" selected>', select).group(1))


@pytest.fixture
def with_x_dm(agent, merged, offline_x_channel):
    """``merged`` plus an X DM conversation (Bob on X, who wrote at minute 0: not the default)."""
    receive(
        offline_x_channel,
        [x_dm_from_bob()],
    )
    merge_tickets(
        ticket_ids=[merged.pk, Ticket.objects.get(channel=offline_x_channel).pk], actor=agent, keep_id=merged.pk
    )
    return merged


def assert_macro_kept(html, macro):
    assert f'<input type="hidden" name="macro" value="{macro.pk}">' in html
    assert f"Using <strong><bdi>{macro.name}</bdi></strong>" in html
    assert f'<option value="{macro.pk}" selected>' in html  # the picker shows it chosen too


def switch(client, ticket, thread):
    url = reverse("console:reply-conversation", args=[ticket.pk])
    return client.post(url, {"thread": thread.pk, "body": "hi"}, headers={"HX-Request": "true"}).content.decode()


@pytest.mark.django_db
def test_composer_offers_files_where_the_channel_takes_them(agent_client, slack_ticket):
    html = agent_client.get(detail_url(slack_ticket)).content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert re.search(
        r'<label for="reply-files">Attach files</label>\s*<input type="file" id="reply-files" name="files" multiple',
        html,
    )
    assert "Up to 10 files, each at most 25.0" in html
    assert "No attachments" not in html


@pytest.mark.django_db
def test_oversize_or_too_many_files_are_refused_with_a_clear_message(
    agent_client, slack_ticket, locmem_channel, settings, django_capture_on_commit_callbacks
):
    settings.ATTACHMENT_MAX_BYTES = 1000
    response = send_reply(
        agent_client, slack_ticket, "see", upload("huge.bin", b"x" * 2048), capture=django_capture_on_commit_callbacks
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "huge.bin is too large (2.0 KB); files may be at most 1000 bytes." in page
    assert "attach them again before sending" in page
    assert not Message.objects.filter(direction="outbound").exists()
    assert not Attachment.objects.filter(message__direction="outbound").exists()

    receive(locmem_channel, [message("lm1")])
    locmem_ticket = Ticket.objects.get(channel=locmem_channel)
    response = send_reply(
        agent_client,
        locmem_ticket,
        "see",
        *[upload(f"{n}.txt") for n in range(4)],
        capture=django_capture_on_commit_callbacks,
    )
    assert "4 files attached; a reply takes at most 3." in response.content.decode()


@pytest.mark.django_db
def test_files_sent_with_a_note_are_not_kept_and_the_agent_is_told(agent_client, slack_ticket):
    response = agent_client.post(
        reverse("console:ticket-note", args=[slack_ticket.pk]), {"body": "checked", "files": [upload()]}, follow=True
    )
    assert "Internal notes carry no files" in response.content.decode()
    assert Message.objects.get(direction="note").body == "checked"
    assert not Attachment.objects.exists()


@pytest.mark.django_db
def test_x_replies_carry_text_only(agent_client, x_emulator, django_capture_on_commit_callbacks):
    channel = make_x_channel(x_emulator)

    mention = replace(message("tweet:1"), public=True, meta={"summoned": True})
    receive(channel, [mention])
    ticket = Ticket.objects.get()
    html = agent_client.get(detail_url(ticket)).content.decode()
    assert 'type="file"' not in html
    assert "No attachments: replies on this channel carry text only." in html
    response = send_reply(agent_client, ticket, "hello", upload(), capture=django_capture_on_commit_callbacks)
    assert response.status_code == 422  # refused in place: the page again, with the draft
    assert "cannot carry attachments on this channel" in response.content.decode()
    assert not Message.objects.filter(direction="outbound").exists()


def test_reply_is_queued_then_sent(agent_client, ticket, django_capture_on_commit_callbacks):
    """A reply is stored as queued (its badge polls), then sent through the channel (the badge stops polling)."""
    with django_capture_on_commit_callbacks() as callbacks:
        response = agent_client.post(reply_url(ticket), {"body": "On it.\r\nHang tight."})
    assert response.status_code == 302
    assert response.url == detail_url(ticket)
    reply = outbound(ticket).get()
    assert reply.delivery_status == Message.DeliveryStatus.QUEUED
    assert reply.body == "On it.\nHang tight."
    status_url = reverse("console:message-status", args=[reply.pk])
    html = agent_client.get(detail_url(ticket)).content.decode()
    assert "Reply queued for delivery." in html
    assert f'hx-get="{status_url}" hx-trigger="every 2s"' in html

    for callback in callbacks:  # the commit: hands the reply to (eager) Celery
        callback()
    assert locmem.outbox == [{"thread_key": "m0", "text": "On it.\nHang tight."}]
    fragment = agent_client.get(status_url, headers={"HX-Request": "true"}).content.decode()
    assert "Delivery: </span>Sent" in fragment
    assert "hx-trigger" not in fragment


def test_reply_errors_are_shown(agent_client, ticket):
    """A reply the service refuses (blank, too long for the channel) is not stored and its reason is shown."""
    response = agent_client.post(reply_url(ticket), {"body": "   "}, follow=True)
    assert "A reply needs some text." in response.content.decode()
    response = agent_client.post(reply_url(ticket), {"body": "x" * 1001}, follow=True)
    assert "this channel takes at most 1000" in response.content.decode()
    assert not outbound(ticket).exists()


def test_reply_requires_csrf_token(agent, ticket):
    """A reply POST without the CSRF token is refused; with it, it goes through."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.post(reply_url(ticket), {"body": "Forged"}).status_code == 403
    assert not outbound(ticket).exists()

    client.get(detail_url(ticket))  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    assert client.post(reply_url(ticket), {"body": "Real", "csrfmiddlewaretoken": token}).status_code == 302
    assert outbound(ticket).filter(body="Real").exists()


@pytest.mark.django_db
def test_anonymous_counter_poll_reloads_the_page(client):
    """The counter's htmx request after the session expired asks for a reload instead of a login form."""
    response = client.post(reverse("console:reply-length", args=[1]), {"body": "x"}, headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response["HX-Refresh"] == "true"


def test_composer_offers_dm_when_public_reply_is_not_allowed(agent_client, offline_x_channel):
    """On a post that does not @mention us, public reply is shown disabled with X's reason, and DM is pre-selected."""
    ticket = x_ticket(offline_x_channel, summoned=False)
    response = agent_client.get(detail_url(ticket))
    html = response.content.decode()
    assert [m.key for m in response.context["reply_modes"]] == ["public", "dm"]
    assert "<legend>Send as</legend>" in html
    public = html[html.index('value="public"') : html.index("</div>", html.index('value="public"'))]
    dm = html[html.index('value="dm"') : html.index("</div>", html.index('value="dm"'))]
    assert "disabled" in public
    assert "checked" not in public
    assert 'Public reply <span class="muted">(up to 280 characters)</span>' in public
    assert f"Public reply is not possible here: {NOT_SUMMONED}" in public
    assert 'aria-describedby="reply-mode-1-reason"' in public
    assert 'id="reply-mode-1-reason"' in public
    assert "checked" in dm
    assert "disabled" not in dm
    assert "(up to 10000 characters)" in dm
    assert 'id="reply-counter" class="reply-counter" aria-live="polite"' in html
    assert "0 / 10000" in html  # the counter starts at the pre-selected mode's limit
    assert 'maxlength="10000"' in html  # the longest allowed mode; the counter shows the chosen one


def test_composer_preselects_public_reply_when_summoned(agent_client, offline_x_channel):
    """On a post that @mentions us, both modes are allowed and public reply (the first) is pre-selected."""
    ticket = x_ticket(offline_x_channel, summoned=True)
    html = agent_client.get(detail_url(ticket)).content.decode()
    public = html[html.index('value="public"') : html.index("</div>", html.index('value="public"'))]
    assert "checked" in public
    assert "disabled" not in public
    assert "not possible here" not in html
    assert "0 / 280" in html


def test_single_mode_channel_has_no_mode_field(agent_client, locmem_channel):
    """A channel with one unnamed mode (locmem, Slack) shows no radio group; its limit hint and counter stay."""
    receive(locmem_channel, [message("m0")])
    ticket = Ticket.objects.get()
    html = agent_client.get(detail_url(ticket)).content.decode()
    assert 'name="mode"' not in html
    assert 'id="reply-modes"' not in html
    assert "At most 1000 characters on this channel." in html
    assert "0 / 1000" in html
    assert 'hx-trigger="input changed delay:150ms"' in html


def test_textarea_triggers_the_counter(agent_client, offline_x_channel):
    """The textarea asks for the count while typing (debounced) and when the mode changes, sending the whole form."""
    ticket = x_ticket(offline_x_channel, summoned=True)
    html = agent_client.get(detail_url(ticket)).content.decode()
    assert f'hx-post="{length_url(ticket)}"' in html
    # The modes sit in a slot that is swapped when the agent picks another conversation; the slot stays.
    assert 'hx-trigger="input changed delay:150ms, change from:#reply-modes-slot"' in html
    assert 'hx-include="closest form" hx-target="#reply-counter" hx-swap="innerHTML"' in html
    assert '<body hx-headers=\'{"X-CSRFToken": "' in html  # htmx sends the CSRF token with every request


def test_counter_weighs_links_like_x(agent_client, offline_x_channel):
    """A public reply counts a link as 23 characters (twitter-text); a DM counts plain characters."""
    ticket = x_ticket(offline_x_channel, summoned=True)
    public = counter(agent_client, ticket, LONG_URL_BODY, "public")
    assert '<span class="reply-count">27 / 280</span>' in public
    assert "over the limit" not in public
    assert "<html" not in public
    assert f"{len(LONG_URL_BODY)} / 10000" in counter(agent_client, ticket, LONG_URL_BODY, "dm")


def test_counter_weighs_emoji_and_flags_over_the_limit(agent_client, offline_x_channel):
    """Emoji count 2 in a public reply; past 280 the counter says by how much it is over."""
    ticket = x_ticket(offline_x_channel, summoned=True)
    assert "4 / 280" in counter(agent_client, ticket, "🙂🙂", "public")
    over = counter(agent_client, ticket, "x" * 279 + "🙂", "public")
    assert '<span class="reply-count is-over">281 / 280</span>' in over
    assert "1 over the limit" in over


def test_counter_does_not_weigh_huge_text(agent_client, offline_x_channel):
    """Text past the 40,000 characters any message may hold is reported as over the limit without being weighed."""
    ticket = x_ticket(offline_x_channel, summoned=True)
    html = counter(agent_client, ticket, "🙂" * 40_001, "public")
    assert "40001 / 280" in html
    assert "39721 over the limit" in html


def test_counter_without_mode_uses_the_default(agent_client, offline_x_channel, locmem_channel):
    """Without (or with an unknown) mode the counter measures the default mode; on locmem, against its 1000."""
    ticket = x_ticket(offline_x_channel, summoned=False)  # default: DM
    assert f"{len(LONG_URL_BODY)} / 10000" in counter(agent_client, ticket, LONG_URL_BODY)
    assert f"{len(LONG_URL_BODY)} / 10000" in counter(agent_client, ticket, LONG_URL_BODY, "nonsense")
    receive(locmem_channel, [message("m0")])
    local = Ticket.objects.get(channel=locmem_channel)
    assert "3 / 1000" in counter(agent_client, local, "a\r\nb")  # CRLF counts as one character, as when sent


def test_counter_requires_csrf_token(agent, offline_x_channel):
    """The counter is a POST like the reply: refused without the CSRF header, answered with it."""
    ticket = x_ticket(offline_x_channel, summoned=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.post(length_url(ticket), {"body": "hi", "mode": "public"}).status_code == 403
    client.get(detail_url(ticket))  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post(length_url(ticket), {"body": "hi", "mode": "public"}, headers={"X-CSRFToken": token})
    assert response.status_code == 200
    assert "2 / 280" in response.content.decode()


def test_counter_query_count_is_fixed(agent_client, offline_x_channel):
    """Counting a keystroke reads the ticket, its latest conversation and what it answers, whatever the text."""
    ticket = x_ticket(offline_x_channel, summoned=True)
    with CaptureQueriesContext(connection) as short:
        counter(agent_client, ticket, "hi", "public")
    with CaptureQueriesContext(connection) as long:
        counter(agent_client, ticket, "hi " * 1000, "dm")
    assert len(short) == len(long)


def test_public_reply_refused_when_not_summoned(agent_client, offline_x_channel, django_capture_on_commit_callbacks):
    """Forcing mode=public on a post that does not @mention us shows X's reason and queues nothing."""
    ticket = x_ticket(offline_x_channel, summoned=False)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = agent_client.post(
            reverse("console:ticket-reply", args=[ticket.pk]), {"body": "Hi there", "mode": "public"}, follow=True
        )
    assert f"Public reply is not possible here: {NOT_SUMMONED}" in response.content.decode()
    assert not ticket.messages.filter(direction=Message.Direction.OUTBOUND).exists()
    assert callbacks == []


def test_dm_reply_is_queued_as_dm(agent_client, offline_x_channel, django_capture_on_commit_callbacks):
    """Choosing DM stores the reply queued with reply_mode "dm"; delivery waits for the commit (not run here)."""
    ticket = x_ticket(offline_x_channel, summoned=False)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = agent_client.post(
            reverse("console:ticket-reply", args=[ticket.pk]), {"body": LONG_URL_BODY, "mode": "dm"}
        )
    assert response.status_code == 302
    assert response.url == detail_url(ticket)
    reply = ticket.messages.get(direction=Message.Direction.OUTBOUND)
    assert reply.reply_mode == "dm"
    assert reply.delivery_status == Message.DeliveryStatus.QUEUED
    assert reply.body == LONG_URL_BODY
    assert len(callbacks) == 1  # the hand-over to delivery


def test_public_reply_over_280_weighted_is_refused(agent_client, offline_x_channel, django_capture_on_commit_callbacks):
    """The server enforces the weighted limit whatever the counter said."""
    ticket = x_ticket(offline_x_channel, summoned=True)
    with django_capture_on_commit_callbacks(execute=False):
        response = agent_client.post(
            reverse("console:ticket-reply", args=[ticket.pk]), {"body": "🙂" * 141, "mode": "public"}, follow=True
        )
    assert "The reply is 282 characters; a public reply takes at most 280." in response.content.decode()
    assert not ticket.messages.filter(direction=Message.Direction.OUTBOUND).exists()


def test_public_reply_when_summoned(agent_client, offline_x_channel, django_capture_on_commit_callbacks):
    """On a post that @mentions us, a public reply is queued as "public"."""
    ticket = x_ticket(offline_x_channel, summoned=True)
    with django_capture_on_commit_callbacks(execute=False):
        agent_client.post(reverse("console:ticket-reply", args=[ticket.pk]), {"body": LONG_URL_BODY, "mode": "public"})
    assert ticket.messages.get(direction=Message.Direction.OUTBOUND).reply_mode == "public"


def test_reply_without_mode_field_takes_the_default(agent_client, locmem_channel, django_capture_on_commit_callbacks):
    """A form without ``mode`` (single-mode channels) lets the service pick the default, as before."""
    receive(locmem_channel, [message("m0")])
    ticket = Ticket.objects.get()
    with django_capture_on_commit_callbacks(execute=False):
        agent_client.post(reverse("console:ticket-reply", args=[ticket.pk]), {"body": "On it."})
    assert ticket.messages.get(direction=Message.Direction.OUTBOUND).reply_mode == ""


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_reply_is_held_back_when_the_ticket_changed(agent_client, other_agent, ticket, locmem_channel, change):
    """The reply is not sent; the page comes back with the draft, what changed, and "Send anyway"."""
    make, listed = CHANGES[change]
    seen = seen_of(agent_client.get(detail_url(ticket)).content.decode())
    make(ticket, other_agent, locmem_channel)
    before = outbound_count(ticket)

    response = post_reply(agent_client, ticket, seen, body="Have you tried <b>turning it off</b>?")
    assert response.status_code == 409
    html = response.content.decode()
    assert outbound_count(ticket) == before
    assert ">Have you tried &lt;b&gt;turning it off&lt;/b&gt;?</textarea>" in html  # the draft, escaped
    text = text_of(html)
    assert "Not sent: this ticket changed since you opened it." in text
    assert listed in text
    assert 'name="confirm" value="1"' in html
    # The page shows the change itself, and the composer now counts it as seen.
    assert seen_of(html) != seen

    sent = post_reply(agent_client, ticket, seen, body="Have you tried turning it off?", confirm="1")
    assert sent.status_code == 302
    assert outbound_count(ticket) == before + 1
    assert ticket.messages.filter(body="Have you tried turning it off?", author_user__username="agent").exists()


def test_reply_after_seeing_the_warning_goes_through(agent_client, other_agent, ticket):
    """Posting again from the warning page (which shows the changes) sends: nothing new since."""
    page = agent_client.get(detail_url(ticket)).content.decode()
    add_note(ticket=ticket, author=other_agent, body="Mine")
    warning = post_reply(agent_client, ticket, seen_of(page)).content.decode()
    assert post_reply(agent_client, ticket, seen_of(warning)).status_code == 302
    assert outbound_count(ticket) == 1


def test_note_is_held_back_too_and_keeps_its_kind(agent_client, other_agent, ticket):
    seen = seen_of(agent_client.get(detail_url(ticket)).content.decode())
    update_ticket(ticket=ticket, actor=other_agent, assignee=other_agent)
    response = note(agent_client, ticket, seen, body="Check the warranty")
    assert response.status_code == 409
    html = response.content.decode()
    assert 'id="composer-kind-note" checked' in html
    assert ">Check the warranty</textarea>" in html
    assert "Add note anyway" in html
    assert not ticket.messages.filter(direction=Message.Direction.NOTE).exists()
    assert note(agent_client, ticket, seen, body="Check the warranty", confirm="1").status_code == 302
    assert ticket.messages.filter(direction=Message.Direction.NOTE, body="Check the warranty").exists()


def test_own_changes_and_other_fields_do_not_hold_a_reply_back(agent_client, agent, other_agent, ticket):
    """What the agent did themselves, and priority or queue changes, do not change what a reply should say."""
    seen = seen_of(agent_client.get(detail_url(ticket)).content.decode())
    add_note(ticket=ticket, author=agent, body="My own note")
    update_ticket(ticket=ticket, actor=agent, status="open")
    update_ticket(ticket=ticket, actor=other_agent, priority=4)
    assert post_reply(agent_client, ticket, seen).status_code == 302
    assert outbound_count(ticket) == 1


def test_a_post_without_a_place_is_not_checked(agent_client, other_agent, ticket):
    add_note(ticket=ticket, author=other_agent, body="Changed")
    assert post_reply(agent_client, ticket, {}).status_code == 302
    assert post_reply(agent_client, ticket, {"seen_message": "x", "seen_event": "0"}).status_code == 302


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
    alice, _bob, _ = duplicates
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


def test_switching_conversation_brings_its_reply_modes_and_counter(agent_client, agent, duplicates, offline_x_channel):
    """A Slack-like thread has one way to reply; an X DM has its own; the counter follows the chosen one."""
    alice, _, _ = duplicates
    receive(
        offline_x_channel,
        [x_dm_from_bob()],
    )
    dm_ticket = Ticket.objects.get(channel=offline_x_channel)
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


def test_agent_posts_a_note_shown_as_internal_and_never_sent(client, agent, ticket):
    client.force_login(agent)
    response = client.post(note_url(ticket), {"body": "Ordered a new one\r\nfrom IT"}, follow=True)

    assert response.status_code == 200
    note = Message.objects.get(direction=Message.Direction.NOTE)
    assert note.body == "Ordered a new one\nfrom IT"
    assert locmem.outbox == []
    html = response.content.decode()
    assert "Internal note added." in html
    assert f'id="message-{note.pk}" class="message message-note' in html
    assert "Internal note" in html
    assert "Ordered a new one" in html
    assert html.count('class="delivery-status"') == 0  # no delivery badge on a note


def test_a_note_is_escaped(client, agent, ticket):
    client.force_login(agent)
    client.post(note_url(ticket), {"body": '<script>alert("x")</script><b>bold</b>'})
    html = client.get(detail_url(ticket)).content.decode()
    assert "<script>alert" not in html
    assert "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in html


def test_an_empty_note_shows_an_error(client, agent, ticket):
    client.force_login(agent)
    response = client.post(note_url(ticket), {"body": "  "}, follow=True)
    assert "A note needs some text." in response.content.decode()
    assert not Message.objects.filter(direction=Message.Direction.NOTE).exists()


def test_the_composer_offers_reply_or_internal_note(client, agent, ticket):
    client.force_login(agent)
    html = client.get(detail_url(ticket)).content.decode()
    assert 'id="composer-kind-reply"' in html
    assert 'id="composer-kind-note"' in html
    assert f'formaction="{note_url(ticket)}"' in html
    assert "Send reply" in html
    assert "Add internal note" in html


def test_employee_cannot_add_a_note(client, employee, ticket):
    client.force_login(employee)
    assert client.post(note_url(ticket), {"body": "sneaky"}).status_code == 403
    assert not Message.objects.filter(direction=Message.Direction.NOTE).exists()


def test_anonymous_is_sent_to_login_and_get_is_refused(client, agent, ticket):
    response = client.post(note_url(ticket), {"body": "hello"})
    assert response.status_code == 302
    assert "/login/" in response["Location"]
    client.force_login(agent)
    assert client.get(note_url(ticket)).status_code == 405
    assert not Message.objects.filter(direction=Message.Direction.NOTE).exists()


def test_csrf_is_required(agent, ticket):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.post(note_url(ticket), {"body": "hello"}).status_code == 403
    assert not Message.objects.filter(direction=Message.Direction.NOTE).exists()


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
    carols = thread_with_key("c1")
    response = agent_client.post(reply_url(merged), {"body": "On it", "thread": carols.pk})
    assert response.status_code == 422
    html = response.content.decode()
    assert refusal_of(html) == (
        f"Not sent: That conversation is not part of ticket #{merged.pk}; pick one of its own conversations."
    )
    assert ">On it</textarea>" in html
    assert selected_conversation(html) == thread_with_key("a1").pk
    assert not outbound().exists()
    assert locmem.outbox == []


def test_a_refused_reply_keeps_its_conversation_and_mode(agent_client, with_x_dm):
    dm = thread_with_key("dm:55")
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
    bobs = thread_with_key("b1")
    response = agent_client.post(reply_url(merged), {"body": "Dana will help", "macro": macro.pk, "thread": bobs.pk})
    assert response.status_code == 422
    html = response.content.decode()
    assert "Dana Desk is not an agent" in refusal_of(html)
    assert "the macro was not applied" in refusal_of(html)
    assert ">Dana will help</textarea>" in html
    assert selected_conversation(html) == bobs.pk
    assert_macro_kept(html, macro)
    assert not outbound().exists()


def test_a_reply_that_goes_through_still_redirects(agent_client, ticket):
    response = agent_client.post(reply_url(ticket), {"body": "On my way"})
    assert response.status_code == 302
    assert response.url == detail_url(ticket)


def test_switching_conversation_updates_the_length_hint_and_the_file_input(agent_client, with_x_dm):
    page = agent_client.get(detail_url(with_x_dm)).content.decode()
    assert selected_conversation(page) == thread_with_key("a1").pk
    assert re.search(r'<p id="reply-hint" class="hint">\s*At most 1000 characters on this channel.\s*</p>', page)
    assert re.search(r'<fieldset id="composer-files"[^>]*data-modes=""\s*>', page)  # shown and enabled
    assert "Up to 3 files, each at most 1.0" in page

    to_dm = switch(agent_client, with_x_dm, thread_with_key("dm:55"))
    hint = re.search(r'<p id="reply-hint"[^>]*hx-swap-oob="true"[^>]*>(.*?)</p>', to_dm, re.S)
    assert hint
    assert hint.group(1).strip() == ""
    files = re.search(r'<div id="composer-files-slot" hx-swap-oob="innerHTML">(.*?)</div>', to_dm, re.S)
    assert files
    assert "No attachments: replies on this channel carry text only." in files.group(1)
    assert 'type="file"' not in to_dm

    back = switch(agent_client, with_x_dm, thread_with_key("a1"))
    assert re.search(
        r'<p id="reply-hint"[^>]*hx-swap-oob="true"[^>]*>\s*At most 1000 characters on this channel.', back
    )
    files = re.search(r'<div id="composer-files-slot" hx-swap-oob="innerHTML">(.*?)</div>\s*$', back, re.S)
    assert files
    assert 'type="file"' in files.group(1)
    assert "Up to 3 files, each at most 1.0" in files.group(1)
    assert "hidden disabled" not in files.group(1)


def test_the_page_starts_with_the_default_conversations_hint_and_files(
    agent_client, agent, with_x_dm, offline_x_channel
):
    """When the X DM is where the requester wrote last, the page opens on its composer."""
    receive(
        offline_x_channel,
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
    assert selected_conversation(page) == thread_with_key("dm:55").pk
    assert re.search(r'<p id="reply-hint" class="hint">\s*</p>', page)
    assert "No attachments" in page
    assert 'type="file"' not in page


def test_a_held_back_reply_keeps_its_conversation_and_macro_and_send_anyway_applies_both(
    agent_client, agent, other_agent, merged, django_capture_on_commit_callbacks
):
    macro = shared_macro(status="pending", assignee_action=Macro.AssigneeAction.APPLIER)
    seen = seen_of(agent_client.get(detail_url(merged)).content.decode())
    add_note(ticket=merged, author=other_agent, body="I am on the VPN one")
    bobs = thread_with_key("b1")
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


# Reply windows and templates (Meta's 24-hour customer-service window, WhatsApp's approved templates) -------

#: An approved template as WhatsApp lists it; its body is the platform's text (escaped like any other).
TEMPLATE = {"name": "ticket_update", "language": "en", "body": "Hi {{1}}, about <your ticket>: {{2}}"}
TEMPLATE_MODE = "template:ticket_update:en"


def windowed_ticket(**config):
    """Ann's ticket on a channel with a 24-hour reply window (locmem's ``window_hours``); she wrote at BASE_TIME."""
    channel = Channel.objects.create(kind="locmem", name="wa", config={"inbox": "wa", "window_hours": 24, **config})
    receive(channel, [message("w0", text="My phone lost its mail")])
    return Ticket.objects.get(channel=channel)


def hint_of(html):
    return text_of(re.search(r'<p id="reply-hint".*?</p>', html, re.S).group(0))


def mode_block(html, number):
    """The composer's ``number``-th send mode (1-based): its radio, label and what it says."""
    blocks = re.findall(r'<div class="reply-mode[^"]*">.*?(?=<div class="reply-mode|</fieldset>)', html, re.S)
    return blocks[number - 1]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("since", "left"), [(timedelta(minutes=48), "23 h 12 min left"), (timedelta(hours=23, minutes=59), "1 min left")]
)
def test_the_composer_counts_down_the_reply_window(agent_client, since, left):
    ticket = windowed_ticket()
    closes = BASE_TIME + timedelta(hours=24)
    with time_machine.travel(BASE_TIME + since, tick=False):
        html = agent_client.get(detail_url(ticket)).content.decode()
    assert hint_of(html) == f"At most 1000 characters on this channel. Reply window: {left}"
    # console.js counts down from the server's times (ms since the epoch), not the agent's clock.
    assert (
        f'<time datetime="{closes.isoformat()}" data-expires-at="{int(closes.timestamp() * 1000)}" '
        f'data-now="{int((BASE_TIME + since).timestamp() * 1000)}">{left}</time>'
    ) in html


@pytest.mark.django_db
def test_a_reply_at_23_h_59_min_goes_out(agent_client, django_capture_on_commit_callbacks):
    ticket = windowed_ticket()
    just_in_time = time_machine.travel(BASE_TIME + timedelta(hours=23, minutes=59), tick=False)
    with just_in_time, django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(reply_url(ticket), {"body": "Try the app again"})
    assert response.status_code == 302
    assert locmem.outbox == [{"thread_key": "w0", "text": "Try the app again"}]


@pytest.mark.django_db
def test_after_24_h_the_composer_says_why_and_the_reply_is_refused(agent_client):
    ticket = windowed_ticket()
    reason = (
        f"the 24-hour reply window closed at {BASE_TIME + timedelta(hours=24):%Y-%m-%d %H:%M} UTC; "
        "wait until the person writes again."
    )
    with time_machine.travel(BASE_TIME + timedelta(hours=24, minutes=1), tick=False):
        html = agent_client.get(detail_url(ticket)).content.decode()
        # The composer names its one mode when it is not possible (as it posts it), so the refusal gives the reason.
        assert '<input type="hidden" name="mode" value="">' in html
        response = agent_client.post(reply_url(ticket), {"body": "Still there?", "mode": ""})
    assert hint_of(html) == f"Reply is not possible here: {reason}"
    assert "Reply window" not in html
    assert response.status_code == 422
    assert refusal_of(response.content.decode()) == f"Not sent: Reply is not possible here: {reason}"
    assert "Still there?" in response.content.decode()  # the draft is kept
    assert locmem.outbox == []


@pytest.mark.django_db
def test_within_the_window_each_mode_says_its_own_time_left_and_templates_wait_unshown(agent_client):
    ticket = windowed_ticket(templates=[TEMPLATE])
    with time_machine.travel(BASE_TIME + timedelta(hours=23, minutes=59), tick=False):
        html = agent_client.get(detail_url(ticket)).content.decode()
    reply, template = mode_block(html, 1), mode_block(html, 2)
    assert 'value="" id="reply-mode-1"\n          checked' in reply
    assert 'aria-describedby="reply-mode-1-window"' in reply
    assert text_of(re.search(r'<p id="reply-mode-1-window".*?</p>', reply, re.S).group(0)) == (
        "Reply window: 1 min left"
    )
    assert f'value="{TEMPLATE_MODE}" id="reply-mode-2"' in template
    assert 'aria-describedby="reply-mode-2-template"' in template
    assert "checked" not in template  # its text is in the page, shown once the agent chooses it (console.css)
    assert hint_of(html) == ""  # several modes: each says its own


@pytest.mark.django_db
def test_after_the_window_a_template_is_the_way_and_shows_its_text(agent_client, django_capture_on_commit_callbacks):
    ticket = windowed_ticket(templates=[TEMPLATE])
    with time_machine.travel(BASE_TIME + timedelta(hours=24, minutes=1), tick=False):
        html = agent_client.get(detail_url(ticket)).content.decode()
        with django_capture_on_commit_callbacks(execute=True):
            sent = agent_client.post(reply_url(ticket), {"body": "Ann\nit is fixed", "mode": TEMPLATE_MODE})
    reply, template = mode_block(html, 1), mode_block(html, 2)
    assert "disabled" in reply
    assert text_of(re.search(r'<p id="reply-mode-1-reason".*?</p>', reply, re.S).group(0)).endswith(
        "UTC; send a template instead."
    )
    assert re.search(rf'value="{TEMPLATE_MODE}" id="reply-mode-2"\s+checked', template)
    assert (
        '<blockquote class="template-body" dir="auto">Hi <mark class="template-placeholder">{{1}}</mark>, '
        'about &lt;your ticket&gt;: <mark class="template-placeholder">{{2}}</mark></blockquote>'
    ) in template
    assert "Each line of your reply fills one placeholder: write 2 lines (line 1 fills {{1}}, line 2 fills {{2}})." in (
        text_of(template)
    )
    assert sent.status_code == 302
    assert locmem.outbox == [{"thread_key": "w0", "text": "Ann\nit is fixed", "mode": TEMPLATE_MODE}]


@pytest.mark.django_db
def test_switching_to_a_windowed_conversation_brings_its_countdown(agent_client, agent, ticket):
    windowed = windowed_ticket()
    merge(agent, ticket, windowed, keep=ticket)
    with time_machine.travel(BASE_TIME + timedelta(hours=1), tick=False):
        html = switch(agent_client, ticket, thread_with_key("w0"))
    hint = re.search(r'<p id="reply-hint" class="hint" hx-swap-oob="true">.*?</p>', html, re.S).group(0)
    assert text_of(hint) == "At most 1000 characters on this channel. Reply window: 23 h 0 min left"
    with time_machine.travel(BASE_TIME + timedelta(days=2), tick=False):
        closed = switch(agent_client, ticket, thread_with_key("w0"))
    assert '<input type="hidden" name="mode" value="">' in closed  # refused with the reason if sent anyway
    assert "Reply is not possible here: the 24-hour reply window closed" in closed
    assert 'name="mode"' not in switch(agent_client, ticket, thread_with_key("m0"))  # locmem's one mode needs none


@pytest.mark.django_db
def test_the_composer_says_which_kinds_of_file_the_platform_takes(agent_client, ticket, locmem_channel, monkeypatch):
    limits = AttachmentLimits(
        max_files=2, max_bytes=25 * 1024**2, by_type=(("image/", 8 * 1024**2),), other_types=False
    )
    monkeypatch.setattr("channel_adapters.locmem.REPLY_FILES", limits)
    page = text_of(agent_client.get(detail_url(ticket)).content.decode())
    assert "Up to 2 files, image at most 8.0 MB; no other files." in page
