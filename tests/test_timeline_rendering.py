"""The hand-rendered timeline message and delivery badge escape everything a message carries."""

from types import SimpleNamespace

import pytest
from django.template import Context

from console.templatetags.console_timeline import delivery_status, timeline_message
from tickets.models import Message

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def hostile_reply(locmem_channel, agent):
    from tests.conftest import receive
    from tests.factories import message
    from tickets.models import Ticket

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
        files=[],
    )
    html = timeline_message(Context({}), note, oob=True)
    assert html.startswith('<li id="message-7" class="message message-note" hx-swap-oob="true">')
    assert "Only agents see this note" in html
