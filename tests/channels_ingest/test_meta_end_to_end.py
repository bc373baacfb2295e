"""Meta's channels end to end, with a real Celery worker on PostgreSQL and Redis: the Meta emulator pushes signed
webhooks to the live app's webhook URL (registered through Meta's GET hub.challenge handshake), the worker
ingests them into tickets, delivers the agent's reply to the emulator, and applies the receipts the emulator
pushes back; a poll run by the worker recovers the pushes the emulator lost on purpose.

The channels are connected as an admin does it (``manage.py channels add``, which checks the credentials against
the emulator), and the URL the command prints is the one given to "Meta".
"""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from channels_ingest import sweep
from channels_ingest.models import Channel, InboundMessage
from tests.helpers import channels_command, wait_for
from tickets.models import Message, Ticket
from tickets.replies import reply_to_ticket

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PAGE_ID = "1001"
NUMBER_ID, WABA_ID = "1122334455667", "1234567890987654321"
APP_SECRET, VERIFY_TOKEN = "e2e-app-secret", "e2e-verify-token"
ANA = "4915112345678"
#: The demo's polling interval for Pages (``make run``): beat's sweep starts a poll this long after the last.
POLL_INTERVAL = 300


@pytest.fixture
def connect(settings, live_server, meta_emulator):
    """``connect(account_id, kind, name, config)``: adds the channel with ``manage.py channels add``, then
    registers the webhook URL it printed for the emulator's account; the emulator pushes only once the helpdesk
    has answered its GET handshake, which the channel records."""
    settings.PUBLIC_BASE_URL = live_server.url

    def add(account_id, kind, name, config, poll_interval=0):
        raw = {"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "base_url": meta_emulator.base_url, **config}
        output = channels_command("add", kind, name, "--config", json.dumps(raw), "--poll-interval", str(poll_interval))
        url = re.search(r"Webhook URL: (\S+)", output).group(1)
        subscription = meta_emulator.set_webhook(account_id, url)
        assert subscription["handshake"]["passed"], subscription
        assert subscription["url"] == url
        channel = Channel.objects.get(name=name)
        assert channel.webhook_verified_at is not None
        return channel

    return add


@pytest.fixture
def whatsapp(connect, meta_emulator):
    account = meta_emulator.add_whatsapp(
        phone_number_id=NUMBER_ID, waba_id=WABA_ID, token="EAAG-e2e", app_secret=APP_SECRET, verify_token=VERIFY_TOKEN
    )
    config = {"phone_number_id": NUMBER_ID, "waba_id": WABA_ID, "access_token": account["token"]}
    return connect(NUMBER_ID, "whatsapp", "wa-help", config)


def page_config(page):
    return {"page_id": page["id"], "page_access_token": page["token"]}


@pytest.fixture
def page(meta_emulator):
    return meta_emulator.add_page(
        PAGE_ID, name="IT Help", token="page-e2e", app_secret=APP_SECRET, verify_token=VERIFY_TOKEN
    )


def status_of(message):
    return Message.objects.get(pk=message.pk).delivery_status


def test_whatsapp_message_to_ticket_to_a_quoting_reply_read_by_the_person(
    celery_worker_process, meta_emulator, whatsapp, agent
):
    celery_worker_process()
    wrote = meta_emulator.whatsapp(NUMBER_ID, "VPN drops every 5 minutes", wa_id=ANA, name="Ana Lima")
    ticket = wait_for(lambda: Ticket.objects.first(), message="the worker to open the ticket")
    assert (ticket.subject, ticket.requester.display_name) == ("VPN drops every 5 minutes", "Ana Lima")
    [question] = ticket.messages.all()
    assert question.external_id == wrote["wamid"]

    reply = reply_to_ticket(ticket=ticket, author=agent, body="Which office are you in?")
    wait_for(lambda: meta_emulator.sent(NUMBER_ID), message="the worker to deliver the reply")
    [sent] = meta_emulator.sent(NUMBER_ID)
    assert (sent["kind"], sent["to"], sent["type"], sent["text"]) == (
        "whatsapp",
        ANA,
        "text",
        "Which office are you in?",
    )
    assert sent["context_id"] == wrote["wamid"]  # the reply quotes the message it answers

    wait_for(lambda: status_of(reply) == Message.DeliveryStatus.READ, message="the reply to be reported read")
    reply.refresh_from_db()
    assert reply.external_id == sent["id"]
    assert reply.delivery_error == ""
    # Each report is stored once ("sent" too: it carries the reply's key, and could confirm an unanswered send).
    assert meta_emulator.wait_for_webhooks()
    assert sorted(InboundMessage.objects.values_list("external_id", flat=True)) == sorted(
        [wrote["wamid"], f"{sent['id']}:sent", f"{sent['id']}:delivered", f"{sent['id']}:read"]
    )
    pushes = meta_emulator.webhooks(NUMBER_ID)["pushes"]
    assert [p["outcome"] for p in pushes] == ["delivered"] * 4  # the message, then sent, delivered, read
    assert Message.objects.count() == 2


def test_a_whatsapp_reply_whose_answer_was_lost_is_confirmed_by_its_delivery_report(
    celery_worker_process, meta_emulator, whatsapp, agent
):
    """WhatsApp cannot be asked whether a reply arrived, but its reports carry the key the reply was sent with:
    the reply that failed with "it may or may not have arrived" becomes delivered, once, with its id."""
    celery_worker_process()
    meta_emulator.whatsapp(NUMBER_ID, "Printer offline", wa_id=ANA, name="Ana Lima")
    ticket = wait_for(lambda: Ticket.objects.first(), message="the worker to open the ticket")
    meta_emulator.fault_after_write("whatsapp_send", reset=True)

    reply = reply_to_ticket(ticket=ticket, author=agent, body="Restarting its spooler now")

    wait_for(lambda: status_of(reply) == Message.DeliveryStatus.READ, message="the reports to confirm the reply")
    reply.refresh_from_db()
    [sent] = meta_emulator.sent(NUMBER_ID)
    assert reply.external_id == sent["id"]
    assert (reply.delivery_error, reply.delivery_unconfirmed_since) == ("", None)
    assert reply.delivery_attempts == 1


def test_messenger_dm_to_ticket_to_a_reply_delivered_and_read(
    celery_worker_process, meta_emulator, connect, page, agent
):
    celery_worker_process()
    connect(PAGE_ID, "facebook", "fb-help", page_config(page))
    wrote = meta_emulator.dm(PAGE_ID, "My monitor flickers", name="Ann Employee")
    ticket = wait_for(lambda: Ticket.objects.first(), message="the worker to open the ticket")
    assert ticket.subject == "My monitor flickers"
    assert ticket.messages.get().external_id == wrote["mid"]

    reply = reply_to_ticket(ticket=ticket, author=agent, body="Which monitor is it?")
    wait_for(lambda: meta_emulator.sent(PAGE_ID), message="the worker to deliver the reply")
    [sent] = meta_emulator.sent(PAGE_ID)
    assert (sent["kind"], sent["recipient_id"], sent["messaging_type"], sent["text"]) == (
        "dm",
        wrote["sender_id"],
        "RESPONSE",
        "Which monitor is it?",
    )

    wait_for(lambda: status_of(reply) == Message.DeliveryStatus.READ, message="the reply to be reported read")
    reply.refresh_from_db()
    assert reply.external_id == sent["id"]
    assert meta_emulator.wait_for_webhooks()
    assert [p["outcome"] for p in meta_emulator.webhooks(PAGE_ID)["pushes"]] == ["delivered"] * 3  # DM, delivery, read
    assert InboundMessage.objects.filter(payload__kind="status").count() == 2
    assert Message.objects.count() == 2
    # The requester's name comes from a lookup the worker makes after the message.
    wait_for(lambda: Ticket.objects.get().requester.display_name == "Ann Employee", message="the requester's name")


def poll_by_the_worker(channel, now):
    """Beat's sweep at ``now`` finds the channel's poll due and queues it; returns the channel once the worker
    has finished that poll (it records the poll's time, which the worker takes from its own clock)."""
    before = Channel.objects.get(pk=channel.pk).last_poll_at
    assert sweep.sweep(now=now)["polls"] == 1
    polled = wait_for(
        lambda: Channel.objects.exclude(last_poll_at=before).filter(pk=channel.pk).first(),
        message="the worker's poll",
    )
    assert (polled.healthy, polled.last_error) == (True, "")
    return polled


def test_webhooks_lost_on_the_way_are_recovered_by_the_workers_poll_and_stored_once(
    celery_worker_process, meta_emulator, connect, page
):
    celery_worker_process()
    channel = connect(PAGE_ID, "facebook", "fb-backstop", page_config(page), poll_interval=POLL_INTERVAL)
    first_poll = timezone.now()
    assert poll_by_the_worker(channel, first_poll).last_poll_stored == 0  # a new channel is due at once

    meta_emulator.drop_webhooks(3)  # lost: Ann's first two messages and Ben's comment
    one = meta_emulator.dm(PAGE_ID, "one", name="Ann Employee")
    post = meta_emulator.add_post(PAGE_ID, "Maintenance tonight")["id"]
    comment = meta_emulator.comment(PAGE_ID, post, "will email be down?", name="Ben Builder")
    meta_emulator.dm(PAGE_ID, "two", sender_id=one["sender_id"])
    meta_emulator.dm(PAGE_ID, "three", sender_id=one["sender_id"])
    meta_emulator.dm(PAGE_ID, "four", sender_id=one["sender_id"])
    assert meta_emulator.wait_for_webhooks()
    outcomes = [p["outcome"] for p in meta_emulator.webhooks(PAGE_ID)["pushes"]]
    assert outcomes == ["dropped"] * 3 + ["delivered"] * 2
    wait_for(lambda: Message.objects.count() == 2, message="the pushed messages")
    assert [m.body for m in Ticket.objects.get().messages.timeline()] == ["three", "four"]

    second_poll = first_poll + timedelta(seconds=POLL_INTERVAL + 1)
    # The poll reads all four messages (and the comment): the two that came by webhook are the same rows.
    assert poll_by_the_worker(channel, second_poll).last_poll_stored == 3  # beat's next pass
    wait_for(lambda: Message.objects.count() == 4, message="the recovered messages ingested")
    ticket = Ticket.objects.get()
    assert [m.body for m in ticket.messages.timeline()] == ["one", "two", "three", "four"]
    assert InboundMessage.objects.count() == 5
    triage = InboundMessage.objects.filter(status=InboundMessage.Status.TRIAGE)
    wait_for(lambda: triage.exists(), message="the recovered comment in triage")  # ingested after the messages
    [triaged] = triage
    assert triaged.external_id == f"comment:{comment['comment_id']}"  # a comment waits for an agent, as pushed ones do

    third_poll = second_poll + timedelta(seconds=POLL_INTERVAL + 1)
    assert poll_by_the_worker(channel, third_poll).last_poll_stored == 0
    assert InboundMessage.objects.count() == 5
    assert Message.objects.values("external_id").distinct().count() == Message.objects.count() == 4
