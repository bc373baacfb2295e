"""Storms (emulators/common.py StormPlan, /_emulator/storm): probabilistic, seeded faults on the emulators, seen
through the real clients (slack_sdk, tweepy, imapclient, smtplib)."""

import smtplib
import time
from email.message import EmailMessage

import pytest
import requests
import tweepy
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from emulators.common import StormPlan
from emulators.mail import DEFAULT_PASSWORD, DEFAULT_USER, MailEmulator
from emulators.slack import EmulatorControlError, SlackEmulator
from emulators.x import XEmulator
from tests.emulators.test_x_emulator import BEARER, redirect

CHANNEL = "C0GENERAL"


@pytest.fixture(scope="module")
def slack_server():
    with SlackEmulator() as emu:
        yield emu


@pytest.fixture
def slack_emu(slack_server):
    slack_server.reset()
    yield slack_server
    slack_server.reset()


@pytest.fixture(scope="module")
def x_server():
    with XEmulator(bearer_token=BEARER) as emu:
        yield emu


@pytest.fixture
def x_emu(x_server):
    x_server.reset()
    yield x_server
    x_server.reset()


def client(emu, timeout=5):
    return WebClient(token="xoxb-emulator", base_url=emu.base_url, timeout=timeout, retry_handlers=[])


def test_a_seed_repeats_the_same_strikes_in_call_order():
    def strikes(seed):
        plan = StormPlan()
        plan.start(rate=0.3, kinds=["5xx", "429", "reset"], seed=seed)
        return [plan.draw("chat.postMessage") for _ in range(200)]

    first = strikes(7)
    assert first == strikes(7)
    assert first != strikes(8)
    struck = [kind for kind in first if kind]
    assert 40 <= len(struck) <= 80  # about 30 % of 200
    assert set(struck) == {"5xx", "429", "reset"}


def test_a_storm_strikes_only_the_keys_in_scope_and_stops(slack_emu):
    slack = client(slack_emu)
    slack_emu.start_storm(rate=1.0, kinds=["5xx"], keys=["chat.postMessage"])
    assert slack.auth_test()["ok"]
    with pytest.raises(SlackApiError) as raised:
        slack.chat_postMessage(channel=CHANNEL, text="hi")
    assert raised.value.response.status_code in (500, 502, 503, 504)
    assert slack_emu.bot_messages(CHANNEL) == []  # an outage applies nothing
    stats = slack_emu.stop_storm()
    assert stats["hits"] == {"5xx": 1}
    assert stats["calls"] == 1
    assert not stats["active"]
    assert slack.chat_postMessage(channel=CHANNEL, text="hi")["ok"]


def test_slack_429_storm_answers_ratelimited_with_retry_after(slack_emu):
    slack_emu.start_storm(rate=1.0, kinds=["429"], retry_after=7)
    with pytest.raises(SlackApiError) as raised:
        client(slack_emu).conversations_history(channel=CHANNEL)
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "7"
    assert raised.value.response["error"] == "ratelimited"


def test_slack_slow_answer_comes_after_the_client_gave_up_but_is_applied(slack_emu):
    slack_emu.start_storm(rate=1.0, kinds=["slow"], slow_seconds=1.0, keys=["chat.postMessage"])
    with pytest.raises(TimeoutError):
        client(slack_emu, timeout=0.3).chat_postMessage(channel=CHANNEL, text="late")
    deadline = time.monotonic() + 5
    while not slack_emu.bot_messages(CHANNEL) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [message["text"] for message in slack_emu.bot_messages(CHANNEL)] == ["late"]


def test_slack_reset_drops_the_connection_and_applies_nothing(slack_emu):
    slack_emu.start_storm(rate=1.0, kinds=["reset"], keys=["chat.postMessage"])
    with pytest.raises(OSError, match=r"reset|aborted|closed"):
        client(slack_emu).chat_postMessage(channel=CHANNEL, text="never")
    slack_emu.stop_storm()
    assert slack_emu.bot_messages(CHANNEL) == []


def test_storm_arguments_are_checked(slack_emu):
    with pytest.raises(EmulatorControlError, match="kinds"):
        slack_emu.start_storm(rate=0.2, kinds=["hail"])
    with pytest.raises(EmulatorControlError, match="rate"):
        slack_emu.start_storm(rate=2)
    assert not slack_emu.storm_stats()["active"]


def test_a_reset_of_the_emulator_ends_the_storm(slack_emu):
    slack_emu.start_storm(rate=1.0)
    slack_emu.reset()
    assert not slack_emu.storm_stats()["active"]


def test_x_storm_answers_problem_json_429_with_a_near_reset(x_emu):
    x_emu.start_storm(rate=1.0, kinds=["429"], retry_after=3, keys=["create_tweet"])
    bearer = redirect(tweepy.Client(bearer_token=BEARER), x_emu.url)
    assert bearer.get_me(user_auth=False).data  # out of scope
    with pytest.raises(tweepy.TooManyRequests) as raised:
        bearer.create_tweet(text="hi", user_auth=False)
    headers = raised.value.response.headers
    assert headers["x-rate-limit-remaining"] == "0"
    assert 0 <= int(headers["x-rate-limit-reset"]) - time.time() <= 4
    assert raised.value.response.json()["status"] == 429


def test_x_storm_5xx_and_resets_reach_tweepy_as_server_and_connection_errors(x_emu):
    bearer = redirect(tweepy.Client(bearer_token=BEARER), x_emu.url)
    x_emu.start_storm(rate=1.0, kinds=["5xx"])
    with pytest.raises(tweepy.TwitterServerError):
        bearer.get_me(user_auth=False)
    x_emu.start_storm(rate=1.0, kinds=["reset"])
    with pytest.raises(requests.ConnectionError):
        bearer.get_me(user_auth=False)
    assert x_emu.account_posts() == []


# The mail emulator: IMAP commands and SMTP stages, seen through imapclient and smtplib -------------------------


@pytest.fixture(scope="module")
def mail_server():
    with MailEmulator() as emu:
        yield emu


@pytest.fixture
def mail_emu(mail_server):
    mail_server.reset()
    yield mail_server
    mail_server.reset()


def imap(emu, timeout=5) -> IMAPClient:
    client = IMAPClient(emu.imap_host, port=emu.imap_port, ssl=False, timeout=timeout)
    client.login(DEFAULT_USER, DEFAULT_PASSWORD)
    return client


def mail(subject="VPN down") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = DEFAULT_USER, "ann@example.com", subject
    message.set_content("Fixed.")
    return message


def test_mail_5xx_storm_answers_imap_unavailable_or_bye(mail_emu):
    mail_emu.deliver(sender="ann@example.com", to=DEFAULT_USER, subject="one", text="x")
    client = imap(mail_emu)
    mail_emu.start_storm(rate=1.0, kinds=["5xx"], keys=["imap:SELECT"], seed=3)
    answers = []
    for _ in range(6):
        try:
            client.select_folder("INBOX")
        except IMAPClientAbortError as exc:  # * BYE: the connection ended
            answers.append(f"BYE {exc}")
            client = imap(mail_emu)
        except IMAPClientError as exc:
            answers.append(f"NO {exc}")
    assert mail_emu.stop_storm()["hits"] == {"5xx": 6}
    assert {answer.split()[0] for answer in answers} == {"NO", "BYE"}
    assert all("[UNAVAILABLE]" in answer for answer in answers)
    assert client.select_folder("INBOX")[b"EXISTS"] == 1


def test_mail_429_storm_answers_imap_limit_and_smtp_try_again_later(mail_emu):
    mail_emu.start_storm(rate=1.0, kinds=["429"], keys=["imap:UID SEARCH", "smtp:MAIL"], seed=1)
    client = imap(mail_emu)
    client.select_folder("INBOX")
    with pytest.raises(IMAPClientError, match=r"\[LIMIT\]"):
        client.search(["ALL"])
    codes = set()
    for _ in range(8):
        with smtplib.SMTP(mail_emu.smtp_host, mail_emu.smtp_port, timeout=5) as sender:
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                sender.send_message(mail())
            codes.add(refused.value.smtp_code)
    assert codes == {421, 452}  # 421 also ends the connection
    mail_emu.stop_storm()
    assert mail_emu.sent() == []


def test_mail_slow_storm_keeps_the_message_though_the_sender_gave_up(mail_emu):
    mail_emu.file_sent_mail("Sent")
    mail_emu.start_storm(rate=1.0, kinds=["slow"], keys=["smtp:DATA"], slow_seconds=1.5)
    sender = smtplib.SMTP(mail_emu.smtp_host, mail_emu.smtp_port, timeout=0.5)
    with pytest.raises((smtplib.SMTPServerDisconnected, TimeoutError)):
        sender.send_message(mail("late"))
    sender.close()
    assert mail_emu.wait_for_sent(count=1, timeout=5)
    assert [m["subject"] for m in mail_emu.messages(folder="Sent")] == ["late"]  # findable, as on Gmail


def test_mail_reset_storm_drops_the_connection_before_applying(mail_emu):
    mail_emu.start_storm(rate=1.0, kinds=["reset"], keys=["smtp:DATA", "imap:LOGIN"])
    sender = smtplib.SMTP(mail_emu.smtp_host, mail_emu.smtp_port, timeout=5)
    with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionResetError)):
        sender.send_message(mail())
    sender.close()
    with pytest.raises(ConnectionResetError):
        imap(mail_emu)
    assert mail_emu.stop_storm()["hits"] == {"reset": 2}
    assert mail_emu.sent() == []


def test_mail_storm_strikes_the_greeting_and_ends_with_a_reset_of_the_emulator(mail_emu):
    mail_emu.start_storm(rate=1.0, kinds=["5xx"], keys=["imap:CONNECT", "smtp:CONNECT"])
    with pytest.raises(IMAPClientError, match=r"BYE \[UNAVAILABLE\]"):
        IMAPClient(mail_emu.imap_host, port=mail_emu.imap_port, ssl=False, timeout=5)
    with pytest.raises(smtplib.SMTPConnectError, match="421"):
        smtplib.SMTP(mail_emu.smtp_host, mail_emu.smtp_port, timeout=5)
    mail_emu.reset()
    assert not mail_emu.storm_stats()["active"]
    imap(mail_emu).logout()
