"""Markup rendered in Python: every value escaped."""

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.template import Context
from django.utils import timezone

from console.forms import TicketFilterForm
from console.templatetags.console_composer import template_body, template_hint, time_left
from console.templatetags.console_fields import plain_select
from console.templatetags.console_labels import ago, compact_since
from console.templatetags.console_timeline import delivery_status, timeline_message
from tests.factories import message
from tests.helpers import receive, text_of
from tickets.models import Message, Ticket

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def hostile_reply(locmem_channel, agent):
    receive(locmem_channel, [message("m1", text="hi")])
    ticket = Ticket.objects.get()
    reply = Message.objects.create(
        ticket=ticket,
        direction=Message.Direction.OUTBOUND,
        author_user=agent,
        body=HOSTILE,
        delivery_status=Message.DeliveryStatus.FAILED,
        delivery_error=f"Slack error: {HOSTILE}",
    )
    reply.conversation_label = f"Locmem {HOSTILE}"
    return reply


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=5), "just now"),
        (timedelta(minutes=1), "1\u00a0min ago"),
        (timedelta(minutes=59, seconds=59), "59\u00a0min ago"),
        (timedelta(hours=3, minutes=20), "3\u00a0h ago"),
        (timedelta(days=2, hours=23), "2\u00a0d ago"),
        (timedelta(days=15), "2\u00a0wk ago"),
        (timedelta(days=65), "2\u00a0mo ago"),
        (timedelta(days=800), "2\u00a0yr ago"),
        (timedelta(seconds=-30), "just now"),  # a clock a little ahead is not "in the future"
    ],
)
def test_compact_since(delta, text):
    assert compact_since(NOW - delta, NOW) == text


def test_ago_gives_the_exact_utc_time_as_value_and_the_local_time_named_as_title():
    at = datetime(2026, 11, 25, 9, 5, 30, tzinfo=UTC)
    assert (
        ago(at, NOW) == '<time datetime="2026-11-25T09:05:30+00:00" title="25 Nov 2026, 09:05 UTC">2\u00a0h ago</time>'
    )
    with timezone.override(ZoneInfo("Europe/Berlin")):
        assert 'title="25 Nov 2026, 10:05 CET"' in ago(at, NOW)


@pytest.mark.django_db
def test_plain_select_marks_the_submitted_value_and_escapes_labels(locmem_channel):
    locmem_channel.name = '<b>"help"</b>'
    locmem_channel.save()
    form = TicketFilterForm({"channel": str(locmem_channel.pk), "sort": "priority"})
    html = plain_select(form["channel"])
    assert html.startswith('<select name="channel" id="id_channel">')
    assert f'<option value="{locmem_channel.pk}" selected>&lt;b&gt;&quot;help&quot;&lt;/b&gt;</option>' in html
    assert '<option value="">Any channel</option>' in html
    assert '<option value="priority" selected>Priority</option>' in plain_select(form["sort"])
    unfiltered = plain_select(TicketFilterForm({})["channel"])
    assert unfiltered.count(" selected") == 1
    assert '<option value="" selected>Any channel</option>' in unfiltered


def test_every_value_of_a_message_is_escaped(hostile_reply):
    html = timeline_message(Context({"csrf_token": 'tok"en'}), hostile_reply)
    assert "<script>" not in html
    assert html.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") == 3  # body, conversation, error
    assert html.startswith(f'<li id="message-{hostile_reply.pk}" class="message message-outbound">')
    assert '<span class="badge delivery-failed">' in html
    assert 'name="csrfmiddlewaretoken" value="tok&quot;en"' in html  # the Retry form, token escaped too


def test_a_reply_on_its_way_polls_and_a_stalled_one_says_so(hostile_reply, settings):
    settings.DELIVERY_STALE_SECONDS = 0
    Message.objects.filter(pk=hostile_reply.pk).update(delivery_status=Message.DeliveryStatus.QUEUED, delivery_error="")
    hostile_reply.refresh_from_db()
    html = delivery_status(Context({}), hostile_reply)
    assert f'hx-get="/console/messages/{hostile_reply.pk}/status/" hx-trigger="every 2s"' in html
    assert "delivery-stalled" in html
    assert "Still queued after" in html
    assert "Retry" not in html


def test_an_oob_entry_swaps_in_place():
    note = SimpleNamespace(
        pk=7,
        direction=Message.Direction.NOTE,
        created_at=Message._meta.get_field("created_at").default(),
        deleted_at=None,
        edited_at=None,
        author_name="Ann",
        body="x",
        meta={},
        files=[],
    )
    html = timeline_message(Context({}), note, oob=True)
    assert html.startswith('<li id="message-7" class="message message-note" hx-swap-oob="true">')
    assert "Only agents see this note" in html


SENT_AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(("status", "label"), [("sent", "Sent"), ("delivered", "Delivered"), ("read", "Read")])
def test_a_reported_reply_says_how_far_it_got_and_no_longer_polls(hostile_reply, status, label):
    Message.objects.filter(pk=hostile_reply.pk).update(
        delivery_status=status, delivery_error="", delivered_at=SENT_AT, delivery_reported_at=SENT_AT
    )
    hostile_reply.refresh_from_db()
    html = delivery_status(Context({}), hostile_reply)
    assert f'<span class="badge delivery-{status}" title="Reported ' in html  # when, on hover
    assert text_of(html) == f"Delivery: {label}"
    assert "hx-trigger" not in html
    assert "Retry" not in html


def test_a_failure_reported_after_sending_shows_the_platforms_words_and_retry(hostile_reply):
    words = "Message failed to send because more than 24 hours have passed (131047)"
    Message.objects.filter(pk=hostile_reply.pk).update(
        delivery_status="failed", delivery_error=words, delivered_at=SENT_AT, delivery_reported_at=SENT_AT
    )
    hostile_reply.refresh_from_db()
    html = delivery_status(Context({"csrf_token": "t"}), hostile_reply)
    assert text_of(html) == f"Delivery: Failed {words} Retry"
    assert "hx-trigger" not in html


def test_reactions_are_grouped_by_emoji_with_counts_and_escaped(hostile_reply):
    hostile_reply.reactions = {
        "locmem:u1": "👍",
        "locmem:u2": "❤️",
        "locmem:u3": "👍",
        "locmem:u4": HOSTILE,
        "locmem:u5": "",  # taken off, as a platform may report it
    }
    html = timeline_message(Context({}), hostile_reply)
    reactions = re.search(r'<ul class="reactions" aria-label="Reactions">.*?</ul>', html).group(0)
    shown = re.findall(
        r'<span class="reaction-emoji">(.*?)</span> <span class="reaction-count">(\d+)</span>', reactions
    )
    heard = re.findall(r'<span class="visually-hidden">(.*?)</span>', reactions)
    assert shown == [
        ("👍", "2"),
        ("❤️", "1"),
        ("&lt;script&gt;alert(&quot;x", "1"),
    ]  # most chosen first, then as they came
    assert heard == [
        "2 people reacted with 👍",
        "1 person reacted with ❤️",
        "1 person reacted with &lt;script&gt;alert(&quot;x",  # cut to REACTION_MAX_CHARS characters
    ]
    assert "<script>" not in html


def test_a_message_without_reactions_has_no_list(hostile_reply):
    assert "reactions" not in timeline_message(Context({}), hostile_reply)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "closed"),
        (0, "closed"),
        (59, "less than a minute left"),
        (60, "1 min left"),
        (23 * 3600 + 12 * 60 + 59, "23 h 12 min left"),  # minutes round down: never more time than there is
        (24 * 3600, "24 h 0 min left"),
        (47 * 3600 + 59 * 60, "47 h 59 min left"),
        (7 * 86400 - 1, "6 d 23 h left"),
    ],
)
def test_time_left_is_worded_as_the_countdown_words_it(seconds, text):
    assert time_left(seconds) == text


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        ("Your ticket is closed.", "This template has no placeholders: it is sent as written."),
        ("Hi {{1}}", "Each line of your reply fills one placeholder: write 1 line (line 1 fills {{1}})."),
        (
            "{{2}} then {{1}}, again {{ 1 }}",
            "Each line of your reply fills one placeholder: write 2 lines (line 1 fills {{1}}, line 2 fills {{2}}).",
        ),
    ],
)
def test_template_hint_says_how_many_lines_fill_which_placeholder(body, hint):
    assert template_hint(body) == hint


def test_a_template_body_is_escaped_and_its_placeholders_marked():
    assert template_body('<b onclick="x">{{1}}</b> & {{ 2 }}') == (
        '&lt;b onclick=&quot;x&quot;&gt;<mark class="template-placeholder">{{1}}</mark>&lt;/b&gt; &amp; '
        '<mark class="template-placeholder">{{2}}</mark>'
    )
