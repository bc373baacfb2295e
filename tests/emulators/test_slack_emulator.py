"""The Slack emulator, driven through the real slack_sdk client (no Django needed)."""

import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier

from emulators.slack import EmulatorControlError, SlackEmulator

BOT_TOKEN = "xoxb-test"
SIGNING_SECRET = "test-secret"
CHANNEL = "C0GENERAL"
FAST_RETRIES = [0.05, 0.05, 0.05]
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def emulator():
    with SlackEmulator(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET) as emu:
        yield emu


@pytest.fixture
def slack(emu):
    return WebClient(token=BOT_TOKEN, base_url=emu.base_url)


class EventReceiver:
    """A stand-in for the app's Request URL: records requests, answers as scripted."""

    def __init__(self):
        self.requests = []  # (headers, raw body)
        self.script = []  # per request, in order: (status, headers, delay); then 200
        self._arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._arrived:
                    status, headers, delay = receiver.script.pop(0) if receiver.script else (200, {}, 0)
                    receiver.requests.append((dict(self.headers), body))
                    receiver._arrived.notify_all()
                time.sleep(delay)
                payload = json.loads(body)
                answer = json.dumps({"challenge": payload["challenge"]} if "challenge" in payload else {}).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/slack/events"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def wait_for(self, count, timeout=5.0):
        with self._arrived:
            assert self._arrived.wait_for(lambda: len(self.requests) >= count, timeout), self.requests
        return [json.loads(body) for _, body in self.requests]

    def close(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver(emu):
    app = EventReceiver()
    emu.configure(events_url=app.url, event_retry_delays=FAST_RETRIES)
    yield app
    emu.configure(events_url="")
    app.close()


def add_alice(emu):
    return emu.add_user("U0ALICE", name="alice", real_name="Alice Anders", email="alice@example.com")


# -- Web API basics ----------------------------------------------------------


def test_auth_test_identifies_the_bot(slack):
    response = slack.auth_test()
    assert response["ok"] is True
    assert (response["user_id"], response["bot_id"], response["team_id"]) == ("U0BOT", "B0BOT", "T0EMU")
    assert response["url"] == "https://emulator.slack.com/"


def test_users_info_returns_the_fixture_shape(emu, slack):
    add_alice(emu)
    user = slack.users_info(user="U0ALICE")["user"]
    assert user["id"] == "U0ALICE"
    assert user["name"] == "alice"
    assert user["real_name"] == "Alice Anders"
    assert user["is_bot"] is False
    assert user["deleted"] is False
    assert user["team_id"] == "T0EMU"
    assert user["profile"]["email"] == "alice@example.com"
    assert user["profile"]["display_name"] == "alice"
    assert user["profile"]["image_48"].startswith("https://")


def test_unknown_posters_are_created_and_unknown_users_are_not_found(emu, slack):
    emu.post(CHANNEL, "U0NEWBIE", "hello")
    assert slack.users_info(user="U0NEWBIE")["user"]["name"] == "u0newbie"
    with pytest.raises(SlackApiError) as raised:
        slack.users_info(user="U0NOBODY")
    assert raised.value.response["error"] == "user_not_found"


def test_tokens_missing_wrong_revoked_and_added(emu, slack):
    for token, error in ((None, "not_authed"), ("xoxb-wrong", "invalid_auth")):
        with pytest.raises(SlackApiError) as raised:
            WebClient(token=token, base_url=emu.base_url).auth_test()
        assert raised.value.response.status_code == 200
        assert raised.value.response["error"] == error

    emu.set_token("xoxb-second")
    assert WebClient(token="xoxb-second", base_url=emu.base_url).auth_test()["ok"]
    emu.set_token(BOT_TOKEN, revoked=True)
    with pytest.raises(SlackApiError) as raised:
        slack.auth_test()
    assert raised.value.response["error"] == "token_revoked"


def test_unknown_method(slack):
    with pytest.raises(SlackApiError) as raised:
        slack.api_call("conversations.nonsense")
    assert raised.value.response.status_code == 200
    assert raised.value.response["error"] == "unknown_method"


def test_accepts_get_query_form_and_json_bodies(emu):
    ts = emu.post(CHANNEL, "U0ALICE", "hi")["ts"]
    url = emu.base_url + "conversations.history"
    by_get = requests.get(url, params={"token": BOT_TOKEN, "channel": CHANNEL}).json()
    by_form = requests.post(url, data={"channel": CHANNEL}, headers={"Authorization": f"Bearer {BOT_TOKEN}"}).json()
    by_json = requests.post(url, json={"channel": CHANNEL}, headers={"Authorization": f"Bearer {BOT_TOKEN}"}).json()
    for response in (by_get, by_form, by_json):
        assert [message["ts"] for message in response["messages"]] == [ts]


# -- conversations.history ---------------------------------------------------


def test_history_pages_newest_first_through_cursors(emu, slack):
    sent = emu.post_many(CHANNEL, [{"user": "U0ALICE", "text": f"m{n}"} for n in range(25)])

    pages, cursor = [], None
    while True:
        response = slack.conversations_history(channel=CHANNEL, limit=10, cursor=cursor)
        pages.append([message["ts"] for message in response["messages"]])
        if not response["has_more"]:
            assert "response_metadata" not in response
            break
        cursor = response["response_metadata"]["next_cursor"]
        assert cursor

    assert [len(page) for page in pages] == [10, 10, 5]
    assert [ts for page in pages for ts in page] == list(reversed(sent))
    assert response["pin_count"] == 0


def test_history_oldest_and_latest_are_exclusive_unless_inclusive(emu, slack):
    sent = emu.post_many(CHANNEL, [{"user": "U0ALICE", "text": f"m{n}"} for n in range(10)])

    def history(**kwargs):
        return [message["ts"] for message in slack.conversations_history(channel=CHANNEL, **kwargs)["messages"]]

    assert history(oldest=sent[6]) == list(reversed(sent[7:]))
    assert history(oldest=sent[6], inclusive=True) == list(reversed(sent[6:]))
    assert history(oldest=sent[2], latest=sent[5]) == [sent[4], sent[3]]
    assert history(oldest=sent[2], latest=sent[5], inclusive=True) == list(reversed(sent[2:6]))
    assert history(oldest=sent[-1]) == []


def test_history_pages_within_oldest_and_a_poll_watermark_catches_everything(emu, slack):
    first = emu.post_many(CHANNEL, [{"user": "U0ALICE", "text": f"old{n}"} for n in range(5)])
    later = emu.post_many(CHANNEL, [{"user": "U0ALICE", "text": f"new{n}"} for n in range(7)])

    seen, cursor = [], None
    while True:
        response = slack.conversations_history(channel=CHANNEL, oldest=first[-1], limit=3, cursor=cursor)
        seen += [message["ts"] for message in response["messages"]]
        if not response["has_more"]:
            break
        cursor = response["response_metadata"]["next_cursor"]
    assert sorted(seen) == later


def test_history_limit_is_clamped_and_bad_arguments_fail(emu, slack):
    emu.post_many(CHANNEL, [{"user": "U0ALICE", "text": f"m{n}"} for n in range(1005)])
    assert len(slack.conversations_history(channel=CHANNEL, limit=5000)["messages"]) == 999
    assert len(slack.conversations_history(channel=CHANNEL)["messages"]) == 100
    for kwargs, error in (
        ({"channel": "C0MISSING"}, "channel_not_found"),
        ({"channel": CHANNEL, "cursor": "bm9wZQ=="}, "invalid_cursor"),
        ({"channel": CHANNEL, "oldest": "yesterday"}, "invalid_ts_oldest"),
    ):
        with pytest.raises(SlackApiError) as raised:
            slack.conversations_history(**kwargs)
        assert raised.value.response["error"] == error


def test_history_hides_thread_replies_except_broadcasts_and_annotates_parents(emu, slack):
    add_alice(emu)
    parent = emu.post(CHANNEL, "U0ALICE", "printer is on fire")["ts"]
    first = emu.post(CHANNEL, "U0BOB", "have you tried water", thread_ts=parent)["ts"]
    broadcast = emu.post(CHANNEL, "U0ALICE", "it worked", thread_ts=parent, reply_broadcast=True)["ts"]

    messages = slack.conversations_history(channel=CHANNEL)["messages"]
    assert [message["ts"] for message in messages] == [broadcast, parent]
    assert messages[0]["subtype"] == "thread_broadcast"
    head = messages[1]
    assert head["thread_ts"] == parent
    assert head["reply_count"] == 2
    assert head["latest_reply"] == broadcast
    assert head["reply_users"] == ["U0BOB", "U0ALICE"]
    assert head["reply_users_count"] == 2
    assert first not in [message["ts"] for message in messages]


def test_edits_are_marked_and_deleted_parents_leave_tombstones(emu, slack):
    plain = emu.post(CHANNEL, "U0ALICE", "typo")["ts"]
    parent = emu.post(CHANNEL, "U0ALICE", "question")["ts"]
    reply = emu.post(CHANNEL, "U0BOB", "answer", thread_ts=parent)["ts"]
    emu.edit(CHANNEL, plain, "fixed")
    by_ts = {message["ts"]: message for message in slack.conversations_history(channel=CHANNEL)["messages"]}
    assert by_ts[plain]["text"] == "fixed"
    assert by_ts[plain]["edited"]["user"] == "U0ALICE"

    emu.delete(CHANNEL, plain)
    emu.delete(CHANNEL, parent)
    messages = slack.conversations_history(channel=CHANNEL)["messages"]
    assert len(messages) == 1
    tombstone = messages[0]
    assert tombstone["subtype"] == "tombstone"
    assert tombstone["text"] == "This message was deleted."
    assert tombstone["reply_count"] == 1

    emu.delete(CHANNEL, reply)
    assert slack.conversations_history(channel=CHANNEL)["messages"] == []
    with pytest.raises(EmulatorControlError) as raised:
        emu.delete(CHANNEL, reply)
    assert raised.value.error == "message_not_found"


# -- conversations.replies ---------------------------------------------------


def test_replies_parent_first_then_oldest_first_even_when_oldest_excludes_parent(emu, slack):
    parent = emu.post(CHANNEL, "U0ALICE", "vpn down")["ts"]
    replies = emu.post_many(CHANNEL, [{"user": "U0BOB", "text": f"r{n}", "thread_ts": parent} for n in range(4)])

    messages = slack.conversations_replies(channel=CHANNEL, ts=parent)["messages"]
    assert [message["ts"] for message in messages] == [parent, *replies]
    assert messages[0]["reply_count"] == 4
    assert messages[0]["thread_ts"] == parent
    assert all(message["thread_ts"] == parent and message["parent_user_id"] == "U0ALICE" for message in messages[1:])

    newer = slack.conversations_replies(channel=CHANNEL, ts=parent, oldest=replies[1])["messages"]
    assert [message["ts"] for message in newer] == [parent, *replies[2:]]


def test_replies_paginate_with_the_parent_on_every_page(emu, slack):
    parent = emu.post(CHANNEL, "U0ALICE", "laptop")["ts"]
    replies = emu.post_many(CHANNEL, [{"user": "U0BOB", "text": f"r{n}", "thread_ts": parent} for n in range(5)])

    collected, cursor = [], None
    while True:
        response = slack.conversations_replies(channel=CHANNEL, ts=parent, limit=2, cursor=cursor)
        assert response["messages"][0]["ts"] == parent
        collected += [message["ts"] for message in response["messages"][1:]]
        if not response["has_more"]:
            break
        cursor = response["response_metadata"]["next_cursor"]
    assert collected == replies


def test_replies_of_unknown_thread(emu, slack):
    with pytest.raises(SlackApiError) as raised:
        slack.conversations_replies(channel=CHANNEL, ts="1.000001")
    assert raised.value.response["error"] == "thread_not_found"


# -- chat.postMessage --------------------------------------------------------


def test_post_message_into_a_thread(emu, slack):
    parent = emu.post(CHANNEL, "U0ALICE", "need a new mouse")["ts"]

    response = slack.chat_postMessage(channel=CHANNEL, thread_ts=parent, text="Ticket #42 created")
    message = response["message"]
    assert response["ok"]
    assert response["channel"] == CHANNEL
    assert response["ts"] == message["ts"]
    assert message["subtype"] == "bot_message"
    assert message["bot_id"] == "B0BOT"
    assert message["user"] == "U0BOT"
    assert message["thread_ts"] == parent
    assert message["text"] == "Ticket #42 created"

    history = slack.conversations_history(channel=CHANNEL)["messages"]
    assert [m["ts"] for m in history] == [parent]
    assert history[0]["latest_reply"] == message["ts"]
    thread = slack.conversations_replies(channel=CHANNEL, ts=parent)["messages"]
    assert [m["ts"] for m in thread] == [parent, message["ts"]]

    bot_messages = emu.bot_messages(CHANNEL)
    assert [(m["text"], m["thread_ts"]) for m in bot_messages] == [("Ticket #42 created", parent)]


def test_post_message_to_a_reply_lands_in_its_thread_and_channels_appear_on_demand(emu, slack):
    parent = emu.post(CHANNEL, "U0ALICE", "q")["ts"]
    reply = emu.post(CHANNEL, "U0BOB", "a", thread_ts=parent)["ts"]
    assert slack.chat_postMessage(channel=CHANNEL, thread_ts=reply, text="x")["message"]["thread_ts"] == parent

    slack.chat_postMessage(channel="C0NEW", text="first words")
    assert [m["text"] for m in slack.conversations_history(channel="C0NEW")["messages"]] == ["first words"]


def test_message_metadata_is_kept_and_shown_only_when_asked_for(emu, slack):
    parent = emu.post(CHANNEL, "U0ALICE", "need a new mouse")["ts"]
    metadata = {"event_type": "helpdesk_reply", "event_payload": {"delivery_key": "42-1"}}
    reply = slack.chat_postMessage(channel=CHANNEL, thread_ts=parent, text="on it", metadata=metadata)["ts"]
    top = slack.chat_postMessage(channel=CHANNEL, text="outage", metadata=metadata)["ts"]

    thread = slack.conversations_replies(channel=CHANNEL, ts=parent, include_all_metadata=True)["messages"]
    assert [m.get("metadata") for m in thread] == [None, metadata]
    assert thread[1]["ts"] == reply
    assert "metadata" not in slack.conversations_replies(channel=CHANNEL, ts=parent)["messages"][1]
    history = slack.conversations_history(channel=CHANNEL, include_all_metadata=True)["messages"]
    assert history[0]["ts"] == top
    assert history[0]["metadata"] == metadata
    assert "metadata" not in slack.conversations_history(channel=CHANNEL)["messages"][0]
    with pytest.raises(SlackApiError) as refused:
        slack.chat_postMessage(channel=CHANNEL, text="x", metadata={"event_type": "x"})
    assert refused.value.response["error"] == "invalid_metadata_schema"


def test_a_post_can_be_applied_then_answered_late_or_not_at_all(emu):
    """Unlike ``latency`` (before the call), these faults come after it: the message is stored either way."""
    parent = emu.post(CHANNEL, "U0ALICE", "q")["ts"]
    impatient = WebClient(token=BOT_TOKEN, base_url=emu.base_url, timeout=0.3, retry_handlers=[])
    emu.fault_after_write("chat.postMessage", delay=1)
    with pytest.raises(TimeoutError):
        impatient.chat_postMessage(channel=CHANNEL, thread_ts=parent, text="late")
    emu.fault_after_write("chat.postMessage", reset=True)
    with pytest.raises(ConnectionResetError):
        impatient.chat_postMessage(channel=CHANNEL, thread_ts=parent, text="lost")
    assert [m["text"] for m in emu.bot_messages(CHANNEL)] == ["late", "lost"]
    impatient.chat_postMessage(channel=CHANNEL, thread_ts=parent, text="normal")  # each fault was used up
    with pytest.raises(EmulatorControlError):
        emu.fault_after_write("chat.postMessage")


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"text": ""}, "no_text"),
        ({"text": "x" * 40_001}, "msg_too_long"),
        ({"text": "x", "thread_ts": "1.000001"}, "thread_not_found"),
    ],
)
def test_post_message_errors(slack, kwargs, error):
    with pytest.raises(SlackApiError) as raised:
        slack.chat_postMessage(channel=CHANNEL, **kwargs)
    assert raised.value.response["error"] == error


def test_timestamps_strictly_increase_under_bulk_load(emu):
    started = time.perf_counter()
    sent = emu.post_many(CHANNEL, [{"user": "U0ALICE", "text": f"m{n}"} for n in range(10_000)])
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"10,000 messages took {elapsed:.2f}s"
    keys = [tuple(int(part) for part in ts.split(".")) for ts in sent]
    assert keys == sorted(set(keys))
    assert len(keys) == 10_000
    assert all(len(ts.split(".")[1]) == 6 for ts in sent)


# -- faults and stats --------------------------------------------------------


def test_rate_limit_surfaces_as_429_with_retry_after(emu, slack):
    emu.fault("chat.postMessage", count=2, status=429, retry_after=7)
    for _ in range(2):
        with pytest.raises(SlackApiError) as raised:
            slack.chat_postMessage(channel=CHANNEL, text="hi")
        assert raised.value.response.status_code == 429
        assert raised.value.response.headers["Retry-After"] == "7"
        assert raised.value.response["error"] == "ratelimited"
    assert slack.chat_postMessage(channel=CHANNEL, text="hi")["ok"]


def test_slack_sdk_rate_limit_handler_retries_through_a_429(emu):
    emu.fault("auth.test", count=1, status=429, retry_after=0)
    patient = WebClient(token=BOT_TOKEN, base_url=emu.base_url, retry_handlers=[RateLimitErrorRetryHandler(1)])
    assert patient.auth_test()["ok"]
    assert emu.stats()["calls"]["auth.test"] == 2


def test_armed_errors_and_server_errors(emu, slack):
    emu.fault("conversations.history", count=1, error="channel_not_found")
    emu.fault("conversations.history", count=1, status=503)
    with pytest.raises(SlackApiError) as raised:
        slack.conversations_history(channel=CHANNEL)
    assert (raised.value.response.status_code, raised.value.response["error"]) == (200, "channel_not_found")
    with pytest.raises(SlackApiError) as raised:
        slack.conversations_history(channel=CHANNEL)
    assert raised.value.response.status_code == 503
    assert slack.conversations_history(channel=CHANNEL)["ok"]

    emu.fault("auth.test", count=3, error="invalid_auth")
    emu.clear_faults()
    assert slack.auth_test()["ok"]


def test_bad_control_requests_are_rejected(emu):
    with pytest.raises(EmulatorControlError) as raised:
        emu.fault("auth.test", count=1, status=200)
    assert raised.value.status == 400
    with pytest.raises(EmulatorControlError) as raised:
        emu.post(CHANNEL, "U0ALICE", "reply", thread_ts="1.000001")
    assert (raised.value.status, raised.value.error) == (400, "thread_not_found")
    assert requests.post(f"{emu.url}/_emulator/nonsense", json={}).status_code == 404


def test_stats_count_calls_and_max_inflight_per_channel(emu, slack):
    emu.add_conversation("C0OTHER")
    emu.fault("conversations.history", latency=0.3)
    for _ in range(2):
        slack.conversations_history(channel=CHANNEL)
    assert emu.stats()["max_inflight"]["conversations.history:C0GENERAL"] == 1

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda channel: slack.conversations_history(channel=channel), [CHANNEL, CHANNEL, "C0OTHER"]))
    stats = emu.stats()
    assert stats["calls"]["conversations.history"] == 5
    assert stats["max_inflight"]["conversations.history:C0GENERAL"] == 2
    assert stats["max_inflight"]["conversations.history:C0OTHER"] == 1


def test_reset_restores_the_seeds(emu, slack):
    emu.post(CHANNEL, "U0ALICE", "hello")
    emu.fault("auth.test", count=5, error="invalid_auth")
    emu.reset()
    assert slack.auth_test()["ok"]
    assert slack.conversations_history(channel=CHANNEL)["messages"] == []
    assert slack.conversations_info(channel=CHANNEL)["channel"]["name"] == "it-help"
    assert emu.stats()["calls"] == {"auth.test": 1, "conversations.history": 1, "conversations.info": 1}


# -- Events API ----------------------------------------------------------------


def test_user_message_event_is_signed_and_shaped_like_slack(emu, receiver):
    parent = emu.post(CHANNEL, "U0ALICE", "email is broken")
    reply = emu.post(CHANNEL, "U0BOB", "same here", thread_ts=parent["ts"])

    envelopes = receiver.wait_for(2)
    verifier = SignatureVerifier(SIGNING_SECRET)
    for headers, body in receiver.requests:
        assert verifier.is_valid_request(body, headers)
        assert headers["Content-Type"] == "application/json"
    first, second = envelopes
    assert first["type"] == "event_callback"
    assert first["event_id"] == parent["event_id"]
    assert first["team_id"] == "T0EMU"
    assert first["api_app_id"] == "A0EMU"
    assert first["authorizations"][0]["user_id"] == "U0BOT"
    assert first["authed_users"] == ["U0BOT"]
    assert isinstance(first["event_time"], int)
    event = first["event"]
    assert event["type"] == "message"
    assert event["channel"] == CHANNEL
    assert event["user"] == "U0ALICE"
    assert event["text"] == "email is broken"
    assert event["ts"] == event["event_ts"] == parent["ts"]
    assert event["channel_type"] == "channel"
    assert "thread_ts" not in event
    assert second["event"]["thread_ts"] == parent["ts"]
    assert second["event"]["parent_user_id"] == "U0ALICE"
    assert second["event_id"] == reply["event_id"] != first["event_id"]


def test_bot_posts_edits_and_deletes_are_dispatched(emu, receiver, slack):
    posted = slack.chat_postMessage(channel=CHANNEL, text="on it")
    ts = emu.post(CHANNEL, "U0ALICE", "draft")["ts"]
    emu.edit(CHANNEL, ts, "final")
    emu.delete(CHANNEL, ts)

    bot, _, changed, deleted = [envelope["event"] for envelope in receiver.wait_for(4)]
    assert bot["bot_id"] == "B0BOT"
    assert bot["subtype"] == "bot_message"
    assert bot["ts"] == posted["ts"]
    assert changed["subtype"] == "message_changed"
    assert changed["hidden"] is True
    assert changed["message"]["text"] == "final"
    assert changed["previous_message"]["text"] == "draft"
    assert changed["message"]["edited"]["ts"] == changed["event_ts"]
    assert deleted["subtype"] == "message_deleted"
    assert deleted["deleted_ts"] == ts
    assert deleted["previous_message"]["text"] == "final"


def test_events_arrive_in_order(emu, receiver):
    sent = emu.post_many(CHANNEL, [{"user": "U0ALICE", "text": f"m{n}"} for n in range(30)], dispatch_events=True)
    assert emu.wait_for_events(timeout=10)
    assert [envelope["event"]["ts"] for envelope in receiver.wait_for(30)] == sent


def test_failed_deliveries_are_retried_with_retry_headers(emu, receiver):
    receiver.script = [(500, {}, 0), (503, {}, 0)]
    event_id = emu.post(CHANNEL, "U0ALICE", "hello")["event_id"]
    assert emu.wait_for_events(timeout=5)

    assert [json.loads(body)["event_id"] for _, body in receiver.requests] == [event_id] * 3
    retry_headers = [(h.get("X-Slack-Retry-Num"), h.get("X-Slack-Retry-Reason")) for h, _ in receiver.requests]
    assert retry_headers == [(None, None), ("1", "http_error"), ("2", "http_error")]
    deliveries = emu.stats()["event_deliveries"]
    assert [(d["event_id"], d["status"], d["retry_num"]) for d in deliveries] == [
        (event_id, 500, 0),
        (event_id, 503, 1),
        (event_id, 200, 2),
    ]


def test_delivery_gives_up_after_three_retries_or_when_told_not_to_retry(emu, receiver):
    receiver.script = [(500, {}, 0)] * 4 + [(500, {"X-Slack-No-Retry": "1"}, 0)]
    emu.post(CHANNEL, "U0ALICE", "one")
    emu.post(CHANNEL, "U0ALICE", "two")
    assert emu.wait_for_events(timeout=5)
    assert [d["retry_num"] for d in emu.stats()["event_deliveries"]] == [0, 1, 2, 3, 0]


def test_slow_app_times_out_and_is_retried(emu, receiver):
    emu.configure(event_timeout=0.2)
    receiver.script = [(200, {}, 0.5)]
    emu.post(CHANNEL, "U0ALICE", "hello")
    assert emu.wait_for_events(timeout=5)
    deliveries = emu.stats()["event_deliveries"]
    assert [(d["status"], d.get("error")) for d in deliveries] == [(None, "timeout"), (200, None)]
    assert receiver.requests[1][0]["X-Slack-Retry-Reason"] == "http_timeout"


def test_unreachable_app_is_retried_then_given_up(emu):
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    emu.configure(events_url=f"http://127.0.0.1:{closed_port}/events", event_retry_delays=FAST_RETRIES)
    emu.post(CHANNEL, "U0ALICE", "anyone there?")
    assert emu.wait_for_events(timeout=5)
    deliveries = emu.stats()["event_deliveries"]
    assert [(d["retry_num"], d["status"], d["error"]) for d in deliveries] == [
        (n, None, "connection_failed") for n in range(4)
    ]


def test_redeliver_resends_the_same_event_freshly_signed(emu, receiver):
    event_id = emu.post(CHANNEL, "U0ALICE", "hello")["event_id"]
    receiver.wait_for(1)
    assert emu.redeliver(event_id) == {"event_id": event_id, "status": 200}
    (_, original), (headers, again) = receiver.requests
    assert json.loads(again) == json.loads(original)
    assert headers["X-Slack-Retry-Num"] == "1"
    assert SignatureVerifier(SIGNING_SECRET).is_valid_request(again, headers)


def test_url_verification_handshake(emu, receiver):
    answer = emu.url_verification()
    assert answer["status"] == 200
    assert json.loads(answer["body"]) == {"challenge": answer["challenge"]}
    payload = receiver.wait_for(1)[0]
    assert payload["type"] == "url_verification"
    assert payload["token"] == "verification-token"


def test_no_events_without_a_request_url(emu):
    assert emu.post(CHANNEL, "U0ALICE", "hello")["event_id"] is None
    with pytest.raises(EmulatorControlError):
        emu.url_verification()


# -- CLI -------------------------------------------------------------------------


def test_cli_serves_until_terminated():
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.slack", "--port", "0", "--bot-token", "xoxb-cli"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = process.stdout.readline()
        base_url = banner.split("base_url=")[1].split()[0]
        assert WebClient(token="xoxb-cli", base_url=base_url).auth_test()["ok"]
    finally:
        process.terminate()
    assert process.wait(timeout=5) == 0
