"""Mail within seconds: IMAP IDLE on a real Dovecot wakes the watcher, which polls the channel."""

import threading
import time

import pytest

from channel_adapters.base import PermanentError
from channels_ingest.mail_watch import watch_channel, watched_channels
from tests.channel_adapters.email_mail import DESK, mail, make_email_channel
from tickets.models import Message


def deliver_soon(dovecot, raw, delay=0.5):
    timer = threading.Timer(delay, dovecot.deliver, args=(DESK, raw))
    timer.start()
    return timer


@pytest.mark.django_db
def test_idle_returns_as_soon_as_mail_arrives(dovecot, smtp_catcher):
    adapter = make_email_channel(dovecot, smtp_catcher, idle=True).adapter()
    deliver_soon(dovecot, mail())
    started = time.monotonic()
    assert adapter.wait_for_mail(timeout=20) is True
    assert time.monotonic() - started < 10


@pytest.mark.django_db
def test_idle_times_out_without_mail(dovecot, smtp_catcher):
    adapter = make_email_channel(dovecot, smtp_catcher).adapter()
    assert adapter.wait_for_mail(timeout=1) is False


@pytest.mark.django_db
def test_only_enabled_channels_with_idle_are_watched(dovecot, smtp_catcher):
    watched = make_email_channel(dovecot, smtp_catcher, name="watched", idle=True)
    make_email_channel(dovecot, smtp_catcher, name="polled-only")
    make_email_channel(dovecot, smtp_catcher, name="disabled", idle=True).__class__.objects.filter(
        name="disabled"
    ).update(enabled=False)
    assert list(watched_channels()) == [watched.pk]


@pytest.mark.django_db(transaction=True)
def test_the_watcher_polls_when_mail_arrives(dovecot, smtp_catcher, settings):
    channel = make_email_channel(dovecot, smtp_catcher, idle=True)
    stop = threading.Event()
    watcher = threading.Thread(target=watch_channel, args=(channel.pk, stop), daemon=True)
    watcher.start()
    try:
        time.sleep(0.5)  # the watcher is waiting in IDLE
        dovecot.deliver(DESK, mail("The projector in room 4 is dead."))
        deadline = time.monotonic() + 15
        while not Message.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert Message.objects.get().body == "The projector in room 4 is dead."
    finally:
        stop.set()


@pytest.mark.django_db
def test_a_server_without_idle_says_so(dovecot, smtp_catcher, monkeypatch):
    adapter = make_email_channel(dovecot, smtp_catcher, idle=True).adapter()
    monkeypatch.setattr("imapclient.IMAPClient.has_capability", lambda self, name: name != "IDLE")
    with pytest.raises(PermanentError, match="does not offer IDLE"):
        adapter.wait_for_mail(timeout=1)
