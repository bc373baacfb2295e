"""The Slack adapter through the pipeline: recorded Events API payloads in and polled history in, the
expected tickets out; replies and errors against the emulator."""

import json
import time
import uuid
from datetime import UTC, datetime

import pytest

from channel_adapters.base import ConfigError, OutcomeUnknown, ReplyTarget, TransientError
from channel_adapters.slack import SlackAdapter
from channels_ingest import delivery, polling
from channels_ingest.models import Channel, InboundMessage
from helpdesk.celery import app
from tests.channel_adapters.slack_events import SlackWebhookCase, fixture, sign
from tests.helpers import canned_slack_channel
from tests.helpers import poll_as_worker as poll
from tickets.models import Message, Ticket
from tickets.replies import reply_to_ticket

pytestmark = pytest.mark.django_db


def test_history_is_paged_and_each_message_stored_once(slack_channel, slack_emulator):
    """conversations.history is followed across next_cursor pages; a re-poll stores nothing new."""
    slack_channel.config["page_size"] = 3
    slack_channel.save()
    slack_emulator.post_many("C0GENERAL", [{"user": "U0ANN", "text": f"issue {i}"} for i in range(10)])

    assert poll(slack_channel).stored == 10
    assert slack_emulator.stats()["calls"]["conversations.history"] == 4
    assert poll(slack_channel).stored == 0
    assert Ticket.objects.count() == 10
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == sorted(f"issue {i}" for i in range(10))


def test_new_thread_replies_are_fetched_with_conversations_replies(slack_channel, slack_emulator):
    """A thread reply is not in history; the parent's latest_reply leads the poll to conversations.replies."""
    parent = slack_emulator.post("C0GENERAL", "U0ANN", "printer jammed")["ts"]
    poll(slack_channel)
    slack_emulator.post("C0GENERAL", "U0ANN", "still jammed", thread_ts=parent)
    slack_emulator.post("C0GENERAL", "U0BO", "mine too", thread_ts=parent)

    assert poll(slack_channel).stored == 2
    ticket = Ticket.objects.get()
    assert [m.body for m in ticket.messages.timeline()] == ["printer jammed", "still jammed", "mine too"]
    assert poll(slack_channel).stored == 0


def test_edits_seen_in_history_update_the_message(slack_channel, slack_emulator):
    """An edited message in the lookback window updates the stored text, once."""
    ts = slack_emulator.post("C0GENERAL", "U0ANN", "wifi slow")["ts"]
    poll(slack_channel)
    slack_emulator.edit("C0GENERAL", ts, "wifi down on floor 2")
    poll(slack_channel)
    poll(slack_channel)
    message = Message.objects.get()
    assert message.body == "wifi down on floor 2"
    assert message.edited_at
    assert InboundMessage.objects.count() == 2


def replies_calls(slack_emulator):
    return slack_emulator.stats()["calls"].get("conversations.replies", 0)


def test_an_edited_thread_reply_is_picked_up_by_polling(slack_channel, slack_emulator):
    """An edit does not move the parent's latest_reply, so the thread is re-read within the lookback window:
    the edit updates the stored reply, once, and re-reading it stores nothing else."""
    parent = slack_emulator.post("C0GENERAL", "U0ANN", "printer jammed")["ts"]
    reply = slack_emulator.post("C0GENERAL", "U0ANN", "tray 2", thread_ts=parent)["ts"]
    slack_emulator.post("C0GENERAL", "U0BO", "mine too", thread_ts=parent)
    poll(slack_channel)
    slack_emulator.edit("C0GENERAL", reply, "tray 3, sorry")

    assert poll(slack_channel).stored == 1
    edited = Message.objects.get(body="tray 3, sorry")
    assert edited.edited_at
    for _ in range(3):
        assert poll(slack_channel).stored == 0
    assert InboundMessage.objects.count() == 4
    assert Message.objects.count() == 3
    assert Message.objects.get(pk=edited.pk).edited_at == edited.edited_at


def test_thread_rereads_for_edits_are_bounded_per_poll(slack_channel, slack_emulator):
    """Each poll re-reads at most thread_rereads_per_poll threads for edits, the least recently read first,
    so every thread in the window is re-read in turn within Slack's rate limits."""
    slack_channel.config["thread_rereads_per_poll"] = 4
    slack_channel.save()
    parents = slack_emulator.post_many("C0GENERAL", [{"user": "U0ANN", "text": f"issue {n}"} for n in range(10)])
    replies = slack_emulator.post_many(
        "C0GENERAL", [{"user": "U0ANN", "text": f"detail {n}", "thread_ts": ts} for n, ts in enumerate(parents)]
    )
    poll(slack_channel)
    for n, ts in enumerate(replies):
        slack_emulator.edit("C0GENERAL", ts, f"detail {n}, edited")

    stored = []
    for _ in range(3):
        before = replies_calls(slack_emulator)
        stored.append(poll(slack_channel).stored)
        assert replies_calls(slack_emulator) - before <= 4
    assert stored == [4, 4, 2]
    assert Message.objects.filter(body__endswith=", edited").count() == 10
    before = replies_calls(slack_emulator)
    assert poll(slack_channel).stored == 0
    assert replies_calls(slack_emulator) - before == 4


def test_a_thread_deleted_whole_is_no_longer_re_read(slack_channel, slack_emulator):
    """Slack answers thread_not_found for a thread whose parent and replies are all gone: polling forgets the
    thread and goes on, healthy."""
    parent = slack_emulator.post("C0GENERAL", "U0ANN", "printer jammed")["ts"]
    reply = slack_emulator.post("C0GENERAL", "U0ANN", "tray 2", thread_ts=parent)["ts"]
    poll(slack_channel)
    slack_emulator.delete("C0GENERAL", parent)
    slack_emulator.delete("C0GENERAL", reply)
    slack_emulator.post("C0GENERAL", "U0BO", "vpn down")

    outcome = poll(slack_channel)
    assert (outcome.stored, outcome.error) == (1, "")
    assert slack_channel.healthy
    before = replies_calls(slack_emulator)
    assert poll(slack_channel).error == ""
    assert replies_calls(slack_emulator) == before


def test_reply_lands_in_the_thread_of_the_parent(
    slack_channel, slack_emulator, agent, django_capture_on_commit_callbacks
):
    """The agent's reply is posted with thread_ts = the thread's parent ts, even after a thread reply."""
    parent = slack_emulator.post("C0GENERAL", "U0ANN", "need a new badge")["ts"]
    poll(slack_channel)
    slack_emulator.post("C0GENERAL", "U0ANN", "it's urgent <b>really</b>", thread_ts=parent)
    poll(slack_channel)

    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_to_ticket(
            ticket=Ticket.objects.get(), author=agent, body="Printed: pick it up at <desk 4> & sign"
        )
    reply.refresh_from_db()
    [posted] = slack_emulator.bot_messages("C0GENERAL")
    assert posted["thread_ts"] == parent
    assert posted["text"] == "Printed: pick it up at &lt;desk 4&gt; &amp; sign"
    assert reply.delivery_status == Message.DeliveryStatus.SENT
    assert reply.external_id == f"C0GENERAL:{posted['ts']}"


def test_our_own_replies_are_not_ingested_back(
    slack_channel, slack_emulator, agent, django_capture_on_commit_callbacks
):
    """The bot's message in the thread (the echo of our reply) never becomes an inbound message."""
    slack_emulator.post("C0GENERAL", "U0ANN", "help")
    poll(slack_channel)
    with django_capture_on_commit_callbacks(execute=True):
        reply_to_ticket(ticket=Ticket.objects.get(), author=agent, body="hi")
    poll(slack_channel)
    assert Message.objects.filter(direction=Message.Direction.INBOUND).count() == 1


def test_revoked_token_marks_channel_unhealthy_and_others_keep_working(slack_channel, slack_emulator):
    """invalid_auth marks only that channel unhealthy with Slack's error."""
    config, secrets = SlackAdapter.split_config(
        {"bot_token": "xoxb-wrong", "conversations": ["C0GENERAL"], "base_url": slack_emulator.base_url}
    )
    broken = Channel.objects.create(kind="slack", name="broken", config=config, secrets=secrets)
    slack_emulator.post("C0GENERAL", "U0ANN", "hello")

    poll(broken)
    poll(slack_channel)
    assert not broken.healthy
    assert "invalid_auth" in broken.last_error
    assert slack_channel.healthy
    assert slack_channel.last_poll_stored == 1


def test_rate_limit_reschedules_the_poll_and_keeps_stored_pages(slack_channel, slack_emulator):
    """A 429 mid-poll keeps what was stored and waits Retry-After before the next poll."""
    slack_channel.config["page_size"] = 2
    slack_channel.save()
    polling.poll_channel(slack_channel.pk)  # learn the bot's identity first
    slack_emulator.post_many("C0GENERAL", [{"user": "U0ANN", "text": f"m{i}"} for i in range(4)])
    slack_emulator.fault("conversations.history", count=1, status=429, retry_after=42)

    outcome = poll(slack_channel)
    assert "rate limit" in outcome.error.lower()
    assert slack_channel.healthy
    assert (slack_channel.next_poll_at - slack_channel.last_poll_at).total_seconds() == pytest.approx(42)
    assert poll(slack_channel).stored == 4


def test_delivery_honours_retry_after_then_sends(
    slack_channel, slack_emulator, agent, django_capture_on_commit_callbacks
):
    """chat.postMessage 429 → the reply stays queued with the error and a retry no sooner than Retry-After."""
    slack_emulator.post("C0GENERAL", "U0ANN", "help")
    poll(slack_channel)
    slack_emulator.fault("chat.postMessage", count=1, status=429, retry_after=7)

    app.conf.task_always_eager = False
    reply = reply_to_ticket(ticket=Ticket.objects.get(), author=agent, body="hi")
    outcome = delivery.deliver_message(reply.pk)
    assert outcome.status == "retry"
    assert outcome.retry_in >= 7
    reply.refresh_from_db()
    assert reply.delivery_status == Message.DeliveryStatus.QUEUED
    assert "rate limit" in reply.delivery_error
    assert delivery.deliver_message(reply.pk).status == "sent"
    assert len(slack_emulator.bot_messages("C0GENERAL")) == 1


def test_permanent_slack_error_fails_the_reply_visibly(slack_channel, slack_emulator, agent):
    """channel_not_found is not retried: the reply is failed with Slack's error."""
    slack_emulator.post("C0GENERAL", "U0ANN", "help")
    poll(slack_channel)
    slack_emulator.fault("chat.postMessage", count=1, error="channel_not_found")

    app.conf.task_always_eager = False
    reply = reply_to_ticket(ticket=Ticket.objects.get(), author=agent, body="hi")
    assert delivery.deliver_message(reply.pk).status == "failed"
    reply.refresh_from_db()
    assert reply.delivery_error == "Slack error: channel_not_found"


def slack_adapter(channel, **config):
    adapter = SlackAdapter(config={**channel.config, **config}, secrets=channel.secrets)
    adapter.state = adapter.check_credentials()
    return adapter


def test_a_reply_carries_its_delivery_key_in_message_metadata(slack_channel, slack_emulator):
    parent = slack_emulator.post("C0GENERAL", "U0ANN", "help")["ts"]
    target = ReplyTarget(thread_key=f"C0GENERAL:{parent}")

    slack_adapter(slack_channel).send(target=target, text="on it", key="42-1")

    [posted] = slack_emulator.web_api.call(
        "conversations.replies", {"channel": "C0GENERAL", "ts": parent, "include_all_metadata": "true"}
    )["messages"][1:]
    assert posted["metadata"] == {"event_type": "helpdesk_reply", "event_payload": {"delivery_key": "42-1"}}


def test_a_post_without_an_answer_is_not_posted_again_by_the_client(slack_channel, slack_emulator):
    """slack_sdk re-posts on a connection reset by default; the adapter reports the unknown outcome instead."""
    parent = slack_emulator.post("C0GENERAL", "U0ANN", "help")["ts"]
    target = ReplyTarget(thread_key=f"C0GENERAL:{parent}")
    adapter = slack_adapter(slack_channel, timeout=0.3)
    since = datetime.now(UTC)

    slack_emulator.fault_after_write("chat.postMessage", reset=True)
    with pytest.raises(OutcomeUnknown, match="did not answer"):
        adapter.send(target=target, text="on it", key="42-1")
    slack_emulator.fault_after_write("chat.postMessage", delay=1)
    with pytest.raises(OutcomeUnknown, match="did not answer"):
        adapter.send(target=target, text="on it", key="42-2")

    assert len(slack_emulator.bot_messages("C0GENERAL")) == 2
    found = adapter.find_sent(target=target, text="on it", key="42-1", since=since)
    assert found.external_id == f"C0GENERAL:{slack_emulator.bot_messages('C0GENERAL')[0]['ts']}"


def test_a_post_that_never_reached_slack_is_a_plain_transient_error(slack_channel):
    adapter = slack_adapter(slack_channel)
    adapter.config["base_url"] = "http://127.0.0.1:9/api/"  # nothing listens: connection refused
    with pytest.raises(TransientError) as raised:
        adapter.send(target=ReplyTarget(thread_key="C0GENERAL:1.000001"), text="on it", key="42-1")
    assert not isinstance(raised.value, OutcomeUnknown)


@pytest.mark.parametrize("timeout", [0, -1, "15", True])
def test_a_timeout_must_be_a_positive_number(timeout):
    with pytest.raises(ConfigError, match="timeout"):
        SlackAdapter.split_config({"bot_token": "xoxb-1", "timeout": timeout})


def test_slack_server_errors_are_transient(slack_channel, slack_emulator, agent):
    """HTTP 503 from Slack is retried, not failed."""
    slack_emulator.post("C0GENERAL", "U0ANN", "help")
    poll(slack_channel)
    slack_emulator.fault("chat.postMessage", count=1, status=503)

    app.conf.task_always_eager = False
    reply = reply_to_ticket(ticket=Ticket.objects.get(), author=agent, body="hi")
    assert delivery.deliver_message(reply.pk).status == "retry"


def test_malformed_polled_messages_are_stored_failed_and_the_poll_goes_on(canned_platform):
    """Issue 9 defect 6 by polling: each odd message becomes a failed row keeping what Slack sent and why;
    the good one beside them opens its ticket, and the next poll stores nothing twice."""
    channel = canned_slack_channel(canned_platform)
    ts = f"{time.time() - 60:.6f}"
    good = {"type": "message", "user": "U0ANN", "text": "printer on fire", "ts": ts}
    odd = [
        {**good, "ts": "inf"},
        {**good, "ts": "1e300"},
        {**good, "ts": float("-inf")},  # JSON's -Infinity, which PostgreSQL cannot hold: kept as text
        {**good, "ts": "99999999999.000000"},
        {**good, "ts": f"{time.time() - 50:.6f}", "edited": "yesterday"},
        {**good, "ts": f"{time.time() - 40:.6f}", "latest_reply": ["1764000000.000100"]},
        {**good, "ts": f"{time.time() - 30:.6f}", "text": {"not": "text"}},
        "not a message",
    ]
    canned_platform.answer("conversations.history", {"ok": True, "messages": [*odd, good], "has_more": False})

    outcome = poll(channel)
    assert not outcome.error
    assert Ticket.objects.get().subject == "printer on fire"
    failed = InboundMessage.objects.filter(status=InboundMessage.Status.FAILED)
    assert failed.count() == len(odd)
    assert {json.dumps(row.payload["raw"], sort_keys=True) for row in failed} == {
        json.dumps(item if item is not odd[2] else {**good, "ts": "-inf"}, sort_keys=True) for item in odd
    }
    assert all(row.error.startswith("Rejected by the slack adapter: ") for row in failed)
    assert poll(channel).stored == 0
    assert InboundMessage.objects.count() == len(odd) + 1


def test_a_page_nested_too_deeply_to_read_fails_the_poll_visibly_not_the_worker(canned_platform):
    """No item of such a page can be read, so none can be kept: the poll records a transient error and is
    retried later, and the channel stays healthy."""
    channel = canned_slack_channel(canned_platform)
    canned_platform.answer(
        "conversations.history", b'{"ok": true, "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    )

    outcome = poll(channel)
    assert "nested too deeply" in outcome.error
    assert channel.healthy
    assert not InboundMessage.objects.exists()


class TestSlackEvents(SlackWebhookCase):
    def test_top_level_message_opens_a_ticket_named_after_the_user(self):
        """A top-level message opens a ticket; the requester's name comes from users.info."""
        self.send("message__top_level")
        ticket = Ticket.objects.get()
        assert ticket.subject == "My laptop won't connect to the VPN & Outlook is frozen"
        assert ticket.requester.display_name == "Ann Employee"
        assert ticket.requester.identities.get().handle == "ann"
        assert ticket.messages.get().external_id == "C0GENERAL:1764000000.000100"

    def test_thread_reply_joins_the_ticket_of_its_thread(self):
        """A reply in the thread lands on the same ticket."""
        self.send("message__top_level")
        self.send("message__thread_reply")
        ticket = Ticket.objects.get()
        assert [m.body for m in ticket.messages.timeline()][1] == "Restarted it, still broken"

    def test_edit_and_delete_update_the_stored_messages(self):
        """message_changed rewrites the text; message_deleted marks the message deleted; no new tickets."""
        for name in ["message__top_level", "message__thread_reply", "message__changed", "message__deleted"]:
            self.send(name)
        first, reply = Ticket.objects.get().messages.timeline()
        assert first.body == "My laptop won't connect to the VPN (Outlook is fine now)"
        assert first.edited_at
        assert reply.deleted_at is not None

    def test_redelivered_event_is_stored_once(self):
        """Slack's retry of the same event (same event_id) is acknowledged and ignored."""
        self.send("message__top_level")
        self.send("message__top_level")
        assert InboundMessage.objects.count() == 1
        assert Message.objects.count() == 1

    @pytest.mark.parametrize("name", ["message__bot_echo", "message__channel_join", "reaction_added__ignored"])
    def test_known_noise_is_acknowledged_and_skipped(self, name):
        """Our own echo, joins and reactions get 200 and create nothing."""
        response = self.send(name)
        assert response.json()["ignored"]
        assert not InboundMessage.objects.exists()
        assert not Ticket.objects.exists()

    def test_markup_is_turned_into_plain_text(self):
        """Slack's entities, links and mentions become what the person saw; script stays inert text."""
        self.send("message__markup")
        body = Message.objects.get().body
        assert body == "<script>alert(1)</script> see the status page (https://status.example.com) cc @ann @here"

    def test_url_verification_answers_the_challenge(self):
        """The Events API handshake echoes the challenge."""
        response = self.send("url_verification__challenge")
        assert response.json() == {"challenge": json.loads(fixture("url_verification__challenge"))["challenge"]}


class TestSlackBadInput(SlackWebhookCase):
    @pytest.mark.parametrize("name", ["reaction_added__ignored", "emoji_changed__unknown"])
    def test_known_but_ignored_and_unknown_event_types_are_acknowledged_and_logged(self, name, caplog):
        """Both answer 200 with why they were ignored and leave a log line, store nothing, and the channel
        keeps taking messages. An unknown type is not refused: Slack turns off an app's event subscriptions
        when too many deliveries fail, which would stop this channel's messages too."""
        event_type = json.loads(fixture(name))["event"]["type"]
        with caplog.at_level("INFO"):
            response = self.send(name)
        assert response.json()["ignored"]
        assert any(event_type in record.getMessage() for record in caplog.records)
        assert not InboundMessage.objects.exists()
        self.send("message__top_level")
        assert Ticket.objects.count() == 1
        config, secrets = SlackAdapter.split_config({**self.channel.config, **self.channel.secrets})
        other = Channel.objects.create(kind="slack", name="other", config=config, secrets=secrets)
        body = fixture("message__thread_reply")
        with self.capture(execute=True):
            response = self.client.post(self.url(other), data=body, content_type="application/json", **sign(body))
        assert response.status_code == 200
        assert InboundMessage.objects.filter(channel=other).count() == 1

    def test_message_without_user_is_refused(self):
        """A message event that cannot be interpreted is a 400, not a 500."""
        response = self.send("message__no_user", expected_status=400)
        assert "ts or user" in response.json()["error"]

    def test_forged_signature_is_refused(self):
        """A body signed with the wrong secret gets 401 and stores nothing."""
        body = fixture("message__top_level")
        response = self.post(body, headers=sign(body, secret="not-the-secret"))
        assert response.status_code == 401
        assert not InboundMessage.objects.exists()

    def test_tampered_body_is_refused(self):
        """A valid signature over a different body gets 401."""
        headers = sign(fixture("message__top_level"))
        response = self.post(fixture("message__thread_reply"), headers=headers)
        assert response.status_code == 401

    def test_stale_timestamp_is_refused(self):
        """A correctly signed request older than five minutes is a replay: 401."""
        body = fixture("message__top_level")
        response = self.post(body, headers=sign(body, timestamp=int(time.time()) - 301))
        assert response.status_code == 401
        assert "Stale" in response.json()["error"]

    def test_missing_signature_is_refused(self):
        response = self.post(fixture("message__top_level"), headers={})
        assert response.status_code == 401

    @pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"[1, 2]"])
    def test_malformed_body_is_refused(self, body):
        """Malformed JSON gets 400 with a clear error, never a 500."""
        response = self.post(body)
        assert response.status_code == 400
        assert response["X-Slack-No-Retry"] == "1"

    def test_unknown_channel_is_404(self):
        """A webhook for a channel that does not exist is a 404."""
        body = fixture("message__top_level")
        response = self.client.post(
            f"/webhooks/{uuid.uuid4()}/", data=body, content_type="application/json", **sign(body)
        )
        assert response.status_code == 404

    def test_get_is_not_allowed(self):
        assert self.client.get(self.url()).status_code == 405

    @pytest.mark.parametrize(
        ("fixture_name", "path", "value"),
        [
            ("message__top_level", ("ts",), "inf"),
            ("message__top_level", ("ts",), "1e300"),
            ("message__top_level", ("ts",), "nan"),
            ("message__top_level", ("ts",), "99999999999.000000"),  # the year 5138
            ("message__top_level", ("ts",), "1.000000"),  # 1970, before Slack existed
            ("message__thread_reply", ("thread_ts",), "inf"),
            ("message__top_level", ("subtype",), ["file_share"]),
            ("message__top_level", ("channel",), {"id": "C0GENERAL"}),
            ("message__changed", ("message", "edited"), "yesterday"),
            ("message__changed", ("message", "edited"), {"ts": "inf"}),
            ("message__changed", ("message", "text"), ["not", "text"]),
            ("message__changed", ("message", "ts"), "1e300"),
            ("message__deleted", ("previous_message",), "gone"),
            ("message__deleted", ("previous_message",), {"thread_ts": ["1764000000.000100"]}),
            ("message__deleted", ("event_ts",), "inf"),
            ("reaction_added__ignored", ("type",), ["reaction_added"]),
        ],
    )
    def test_validly_signed_malformed_event_is_a_400(self, fixture_name, path, value):
        """Issue 9 defect 6: odd numbers, odd types or absurd times in a signed event are refused (400, no
        retries, a reason), never a 500, and nothing is stored."""
        payload = json.loads(fixture(fixture_name))
        target = payload["event"]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

        response = self.post(payload)
        assert response.status_code == 400, response.content
        assert response["X-Slack-No-Retry"] == "1"
        assert response.json()["error"]
        assert not InboundMessage.objects.exists()
        assert not Ticket.objects.exists()

    def test_a_file_with_odd_fields_does_not_cost_the_message(self):
        """A file whose mode is not a string is still offered for download; the text arrives either way."""
        payload = json.loads(fixture("message__top_level"))
        payload["event"]["files"] = [{"mode": ["hidden"], "url_private": "https://files.slack.com/a", "size": "big"}]
        assert self.post(payload).status_code == 200
        assert Message.objects.get().body.startswith("My laptop")

    def test_a_body_over_the_upload_limit_is_a_413_with_a_reason(self, settings):
        """Larger than Django reads (Slack caps a message at 40,000 characters, far below): refused with the
        limit named, as JSON, not Django's bare HTML 400."""
        payload = json.loads(fixture("message__top_level"))
        payload["event"]["text"] = "a" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        response = self.post(payload)
        assert response.status_code == 413
        assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in response.json()["error"]

    def test_deeply_nested_json_is_a_400(self):
        """JSON nested deeper than the parser goes is malformed input, not a server error."""
        body = b'{"type": "event_callback", "event": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        response = self.post(body)
        assert response.status_code == 400
        assert "nested" in response.json()["error"]

    def test_a_message_from_the_future_is_refused_not_pinned_to_the_queue_top(self):
        """A ts beyond our clock (more than the allowed skew) would sort its ticket above every other one."""
        payload = json.loads(fixture("message__top_level"))
        payload["event"]["ts"] = f"{time.time() + 3600:.6f}"
        response = self.post(payload)
        assert response.status_code == 400
        assert "time" in response.json()["error"]

    def test_a_message_within_the_clock_skew_is_kept(self):
        """A platform clock a minute ahead of ours is normal: the message is kept with its own time."""
        payload = json.loads(fixture("message__top_level"))
        payload["event"]["ts"] = f"{time.time() + 60:.6f}"
        assert self.post(payload).status_code == 200
        assert Ticket.objects.count() == 1

    def test_huge_text_is_stored_truncated_not_refused(self):
        """Text over 40,000 characters is kept (truncated with a note), the message is not lost."""
        payload = json.loads(fixture("message__top_level"))
        payload["event"]["text"] = "🙂" * 45_000
        assert self.post(payload).status_code == 200
        body = Message.objects.get().body
        assert body.startswith("🙂" * 40_000)
        assert "truncated 5000 characters" in body
