"""The queue's hand-rendered parts (rows' relative times, the filter selects) say what the templates did."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from console.forms import TicketFilterForm
from console.templatetags.console_fields import plain_select
from console.templatetags.console_labels import ago, compact_since

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


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


def test_ago_gives_the_exact_utc_time_as_value_and_title():
    at = datetime(2026, 11, 25, 9, 5, 30, tzinfo=UTC)
    assert ago(at, NOW) == '<time datetime="2026-11-25T09:05:30+00:00" title="2026-11-25 09:05 UTC">2\u00a0h ago</time>'


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


def test_the_queue_keeps_its_filters_in_the_selects(agent_client, locmem_channel):
    html = agent_client.get(reverse("console:ticket-list"), {"status": "pending", "age": "7d"}).content.decode()
    assert '<option value="pending" selected>' in html
    assert '<option value="7d" selected>' in html
    assert '<label for="id_status">Status</label><select name="status" id="id_status">' in html
