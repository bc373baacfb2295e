"""A channel's failures in a row, and the alerts when it breaks and recovers: once per change, by email to the
admins and in the console, whatever the number of workers noticing it."""

import threading

import pytest
from django.contrib.auth.models import Group, User
from django.db import connections

from channel_adapters import locmem
from channel_adapters.base import CredentialsError, PermanentError, RateLimited, TransientError
from channels_ingest import polling
from channels_ingest.health import BROKEN_AFTER_FAILURES
from channels_ingest.models import Channel, ChannelAlert, ErrorKind
from tests.factories import message
from tickets.roles import ADMINS_GROUP, AGENTS_GROUP

pytestmark = pytest.mark.django_db


@pytest.fixture
def admins(db, settings):
    """Who is told: ``settings.ADMINS``, and the admins group's members with an address (not twice, not agents,
    not a deactivated admin)."""
    settings.ADMINS = [("Ops", "ops@example.com"), ("Boss again", "BOSS@example.com")]
    admins_group = Group.objects.get_or_create(name=ADMINS_GROUP)[0]
    for username, email, active in [
        ("boss", "boss@example.com", True),
        ("noaddr", "", True),
        ("gone", "gone@example.com", False),
    ]:
        User.objects.create_user(username, email=email, is_active=active).groups.add(admins_group)
    User.objects.create_user("agent", email="agent@example.com").groups.add(
        Group.objects.get_or_create(name=AGENTS_GROUP)[0]
    )
    return ["ops@example.com", "BOSS@example.com"]


def poll(channel, django_capture_on_commit_callbacks):
    """One poll, as the worker runs it (the alert's email is sent once its transaction commits)."""
    with django_capture_on_commit_callbacks(execute=True):
        outcome = polling.poll_channel(channel.pk)
    channel.refresh_from_db()
    return outcome


def alerts():
    return list(ChannelAlert.objects.order_by("pk").values_list("kind", "message"))


def test_failures_in_a_row_are_counted_and_a_success_resets_them(locmem_channel, django_capture_on_commit_callbacks):
    locmem.inbox["lm"] = [TransientError("Slack unreachable: [Errno 111] Connection refused")]
    poll(locmem_channel, django_capture_on_commit_callbacks)
    poll(locmem_channel, django_capture_on_commit_callbacks)
    assert (locmem_channel.consecutive_failures, locmem_channel.last_error_kind) == (2, ErrorKind.TRANSIENT)
    assert locmem_channel.healthy  # an outage of the platform is no fault of the channel's configuration

    locmem.inbox["lm"] = [message("a")]
    poll(locmem_channel, django_capture_on_commit_callbacks)
    assert (locmem_channel.consecutive_failures, locmem_channel.last_error, locmem_channel.last_error_kind) == (
        0,
        "",
        "",
    )


def test_a_rate_limit_is_not_a_failure(locmem_channel, django_capture_on_commit_callbacks):
    locmem.inbox["lm"] = [RateLimited("slow down", retry_after=30)]
    for _ in range(BROKEN_AFTER_FAILURES + 1):
        Channel.objects.filter(pk=locmem_channel.pk).update(next_poll_at=None)
        poll(locmem_channel, django_capture_on_commit_callbacks)
    assert (locmem_channel.consecutive_failures, locmem_channel.last_error_kind) == (0, ErrorKind.RATE_LIMITED)
    assert alerts() == []


def test_admins_are_emailed_once_when_a_channel_breaks_and_once_when_it_recovers(
    locmem_channel, admins, mailoutbox, django_capture_on_commit_callbacks
):
    locmem.inbox["lm"] = [TransientError("Slack unreachable: [Errno 111] Connection refused")]
    for _ in range(BROKEN_AFTER_FAILURES - 1):
        poll(locmem_channel, django_capture_on_commit_callbacks)
    assert mailoutbox == []  # a blip or two is not an outage
    assert locmem_channel.broken_since is None

    for _ in range(3):  # the third failure breaks it; the ones after it change nothing
        poll(locmem_channel, django_capture_on_commit_callbacks)
    assert locmem_channel.broken_since is not None
    assert alerts() == [("broke", "Slack unreachable: [Errno 111] Connection refused")]
    assert len(mailoutbox) == 1
    broke = mailoutbox[0]
    assert broke.subject.endswith("Channel lm is broken")
    assert "Slack unreachable: [Errno 111] Connection refused" in broke.body
    assert broke.to == admins

    locmem.inbox["lm"] = [message("a")]
    poll(locmem_channel, django_capture_on_commit_callbacks)
    poll(locmem_channel, django_capture_on_commit_callbacks)
    assert locmem_channel.broken_since is None
    assert [kind for kind, _ in alerts()] == ["broke", "recovered"]
    assert [mail.subject.split("] ")[-1] for mail in mailoutbox] == ["Channel lm is broken", "Channel lm recovered"]
    assert mailoutbox[1].to == admins


def test_refused_credentials_break_the_channel_at_once(
    locmem_channel, admins, mailoutbox, django_capture_on_commit_callbacks
):
    locmem.inbox["lm"] = [CredentialsError("Slack error: token_revoked")]
    poll(locmem_channel, django_capture_on_commit_callbacks)
    assert (locmem_channel.healthy, locmem_channel.last_error_kind) == (False, ErrorKind.CREDENTIALS)
    assert locmem_channel.last_error == "Credentials rejected: Slack error: token_revoked"
    assert alerts() == [("broke", "Credentials rejected: Slack error: token_revoked")]
    assert len(mailoutbox) == 1


def test_a_delivery_refused_for_its_credentials_breaks_the_channel_and_a_credentials_check_mends_it(
    locmem_channel, admins, mailoutbox, django_capture_on_commit_callbacks
):
    """Outside a poll (a delivery, a download) the platform may refuse the token; the periodic credentials check
    that passes again (the admin re-authorized) clears that rejection."""
    with django_capture_on_commit_callbacks(execute=True):
        locmem_channel.record_credentials_rejected("Slack error: invalid_auth")
    assert locmem_channel.broken_since is not None
    with django_capture_on_commit_callbacks(execute=True):
        polling.refresh_state(locmem_channel.pk)
    locmem_channel.refresh_from_db()
    assert (locmem_channel.healthy, locmem_channel.broken_since, locmem_channel.consecutive_failures) == (True, None, 0)
    assert [kind for kind, _ in alerts()] == ["broke", "recovered"]
    assert len(mailoutbox) == 2


def test_a_credentials_check_does_not_mend_a_refused_configuration(locmem_channel, django_capture_on_commit_callbacks):
    locmem.inbox["lm"] = [PermanentError("Slack error: channel_not_found")]
    poll(locmem_channel, django_capture_on_commit_callbacks)
    polling.refresh_state(locmem_channel.pk)
    locmem_channel.refresh_from_db()
    assert (locmem_channel.healthy, locmem_channel.last_error_kind) == (False, ErrorKind.PERMANENT)
    assert [kind for kind, _ in alerts()] == ["broke"]


def test_a_mail_server_that_refuses_loses_only_the_email(
    locmem_channel, admins, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens there
    locmem.inbox["lm"] = [CredentialsError("token_revoked")]
    poll(locmem_channel, django_capture_on_commit_callbacks)
    assert [kind for kind, _ in alerts()] == ["broke"]


def test_two_stale_copies_of_a_channel_alert_once(
    locmem_channel, admins, mailoutbox, django_capture_on_commit_callbacks
):
    """Two workers each holding the row as it was before either failed: the conditional UPDATE decides on the
    row as it is, so only one of them alerts."""
    Channel.objects.filter(pk=locmem_channel.pk).update(consecutive_failures=BROKEN_AFTER_FAILURES - 1)
    first, second = Channel.objects.get(pk=locmem_channel.pk), Channel.objects.get(pk=locmem_channel.pk)
    with django_capture_on_commit_callbacks(execute=True):
        first.record_credentials_rejected("invalid_auth")
        second.record_error("Slack unreachable", kind=ErrorKind.TRANSIENT, unhealthy=False)
    assert Channel.objects.get(pk=locmem_channel.pk).consecutive_failures == BROKEN_AFTER_FAILURES + 1
    assert [kind for kind, _ in alerts()] == ["broke"]
    assert len(mailoutbox) == 1

    first.record_success(stored=0)
    second.record_success(stored=0)
    assert [kind for kind, _ in alerts()] == ["broke", "recovered"]


@pytest.mark.postgres  # rows locked across connections
@pytest.mark.django_db(transaction=True)
def test_workers_failing_at_the_same_moment_alert_once(locmem_channel):
    """Eight workers record the failure that breaks the channel at the same moment, each with its own copy of the
    row and its own connection: one alert."""
    Channel.objects.filter(pk=locmem_channel.pk).update(consecutive_failures=BROKEN_AFTER_FAILURES - 1)
    start = threading.Barrier(8)

    def fail():
        try:
            channel = Channel.objects.get(pk=locmem_channel.pk)
            start.wait()
            channel.record_error("Slack unreachable", kind=ErrorKind.TRANSIENT, unhealthy=False)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=fail) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert Channel.objects.get(pk=locmem_channel.pk).consecutive_failures == BROKEN_AFTER_FAILURES - 1 + 8
    assert ChannelAlert.objects.filter(kind="broke").count() == 1


@pytest.mark.parametrize(("unhealthy", "kind"), [(True, ErrorKind.PERMANENT), (False, ErrorKind.TRANSIENT)])
def test_an_error_without_a_kind_is_refused_if_unhealthy_else_transient(locmem_channel, unhealthy, kind):
    locmem_channel.record_error("Credentials check failed: boom", unhealthy=unhealthy)
    locmem_channel.refresh_from_db()
    assert (locmem_channel.last_error_kind, locmem_channel.consecutive_failures) == (kind, 1)


def test_superusers_are_told_too(locmem_channel, mailoutbox, settings, django_capture_on_commit_callbacks):
    settings.ADMINS = []
    User.objects.create_superuser("root", email="root@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        locmem_channel.record_credentials_rejected("invalid_auth")
    assert [mail.to for mail in mailoutbox] == [["root@example.com"]]
