"""The in-memory adapter's reply rules, which stand in for a platform's in tests of the composer: a reply window
counted from the person's last message, approved templates, and the webhook verification handshake."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from channel_adapters import locmem
from channel_adapters.base import InvalidWebhook, ReplyTarget

LAST_WROTE = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
GREETING = {"name": "greeting", "language": "en", "body": "Hello {{1}}, about {{2}}"}


def adapter(**config):
    return locmem.LocmemAdapter(config={"inbox": "lm", **config}, secrets={"verify_token": "tok"})


def modes(target=None, **config):
    return {m.key: m for m in adapter(**config).reply_modes(target or ReplyTarget("t", last_inbound_at=LAST_WROTE))}


def test_without_a_window_the_reply_is_always_allowed_and_never_expires():
    reply = modes()[""]
    assert (reply.allowed, reply.expires_at, reply.template_body) == (True, None, "")


@pytest.mark.parametrize(
    ("elapsed", "allowed"),
    [(timedelta(hours=23, minutes=59), True), (timedelta(hours=24), False), (timedelta(hours=24, minutes=1), False)],
)
def test_the_window_closes_window_hours_after_the_person_last_wrote(elapsed, allowed):
    with time_machine.travel(LAST_WROTE + elapsed, tick=False):
        reply = modes(window_hours=24)[""]
    assert reply.allowed == allowed
    if allowed:
        assert reply.expires_at == LAST_WROTE + timedelta(hours=24)
    else:
        assert reply.reason == (
            "the 24-hour reply window closed at 2026-03-02 09:00 UTC; wait until the person writes again."
        )


def test_nobody_wrote_yet_means_no_window():
    reply = modes(ReplyTarget("t"), window_hours=24)[""]
    assert not reply.allowed
    assert reply.reason == "Nobody has written in this conversation yet."


def test_templates_are_extra_modes_always_allowed_and_the_reason_points_at_them():
    with time_machine.travel(LAST_WROTE + timedelta(days=3), tick=False):
        found = modes(window_hours=24, templates=[GREETING])
    assert found[""].reason.endswith("send a template instead.")
    template = found["template:greeting:en"]
    assert (template.label, template.allowed, template.template_body) == (
        'Template "greeting" (en)',
        True,
        GREETING["body"],
    )


def test_send_records_the_mode_unless_it_is_the_default():
    channel = adapter()
    channel.send(target=ReplyTarget("t"), text="plain", key="k1")
    channel.send(target=ReplyTarget("t", mode="template:greeting:en"), text="Ann\nthe VPN", key="k2")
    assert locmem.outbox == [
        {"thread_key": "t", "text": "plain"},
        {"thread_key": "t", "text": "Ann\nthe VPN", "mode": "template:greeting:en"},
    ]


def test_the_verify_token_is_a_secret():
    config, secrets = locmem.LocmemAdapter.split_config({"inbox": "lm", "verify_token": "tok", "window_hours": 24})
    assert (config, secrets) == ({"inbox": "lm", "window_hours": 24}, {"verify_token": "tok"})


def test_verification_answers_the_challenge_only_with_the_verify_token():
    channel = adapter()
    answer = channel.verify_subscription({"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "42"})
    assert (answer.status, answer.body) == (200, "42")
    with pytest.raises(InvalidWebhook) as refused:
        channel.verify_subscription({"hub.mode": "subscribe", "hub.verify_token": "töken", "hub.challenge": "42"})
    assert refused.value.status == 403
    without_token = locmem.LocmemAdapter(config={"inbox": "lm"}, secrets={})
    with pytest.raises(InvalidWebhook) as refused:
        without_token.verify_subscription({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "42"})
    assert refused.value.status == 405
