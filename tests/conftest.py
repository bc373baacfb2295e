"""Fixtures only (and the one hook that must run before collection). What tests share besides fixtures is in
``helpers.py`` and ``factories.py``."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from hypothesis.configuration import set_hypothesis_home_dir
from playwright.sync_api import expect, sync_playwright

from channel_adapters import locmem
from channels_ingest.channel_config import clean_channel_config
from channels_ingest.models import Channel
from emulators.mail import MailEmulator
from emulators.meta import MetaEmulator
from emulators.oidc import OIDCProvider
from emulators.slack import SlackEmulator
from emulators.x import XEmulator
from helpdesk.celery import app as celery_app
from helpdesk.oidc_discovery import provider_endpoints
from tests.factories import message
from tests.helpers import (
    BROWSER_TIMEOUT_MS,
    CHROMIUM,
    CHROMIUM_ARGS,
    OIDC_ANN,
    SLACK_HELP_CHANNEL,
    CannedPlatform,
    ThrowawayRedis,
    WorkerProcess,
    make_x_channel,
    open_tickets,
    poll_as_worker,
    receive,
    signed_in_page,
)
from tests.mail_servers import Dovecot, MailServerError, SmtpCatcher
from tickets.merging import merge_tickets
from tickets.models import Ticket
from tickets.replies import reply_to_ticket
from tickets.roles import ADMINS_GROUP, AGENTS_GROUP


def pytest_configure(config):
    """Hypothesis keeps its files (caches of constants and Unicode tables) in a temporary folder, not in the
    checkout. A hook, not a fixture: hypothesis writes them while the tests are being collected."""
    home = tempfile.mkdtemp(prefix="hypothesis-")
    set_hypothesis_home_dir(home)
    config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))


@pytest.fixture(autouse=True)
def eager_celery():
    """Tasks run inline unless a test starts a real worker (``celery_worker_process``)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def clean_locmem(settings):
    """The in-memory test channel, registered for tests only (the settings leave it out), and emptied."""
    settings.CHANNEL_ADAPTERS = {**settings.CHANNEL_ADAPTERS, "locmem": "channel_adapters.locmem.LocmemAdapter"}
    locmem.reset()
    yield
    locmem.reset()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def clean_cache():
    cache.clear()


@pytest.fixture
def dead_cache(settings):
    """The cache is a Redis that does not answer (nothing listens on port 1): every cache call fails at once, as
    in an outage. Changing ``CACHES`` makes Django drop its cache connections, so the change takes effect."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }


@pytest.fixture
def throwaway_redis(tmp_path):
    """A redis-server of this test's own (``helpers.ThrowawayRedis``), started; stopped at the end."""
    server = ThrowawayRedis(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Files the tests store (attachments) go to a temporary folder, never into the checkout."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


# People ---------------------------------------------------------------------------


@pytest.fixture
def agent(db):
    user = User.objects.create_user("agent", password="agent-pass-123", first_name="Alex", last_name="Agent")
    user.groups.add(Group.objects.get_or_create(name=AGENTS_GROUP)[0])
    return user


@pytest.fixture
def other_agent(db):
    """A second agent, for what two agents see of each other (presence, collisions)."""
    user = User.objects.create_user("dana", password="dana-pass-123", first_name="Dana", last_name="Desk")
    user.groups.add(Group.objects.get_or_create(name=AGENTS_GROUP)[0])
    return user


@pytest.fixture
def admin_user(db):
    user = User.objects.create_user("boss", password="boss-pass-123")
    user.groups.add(Group.objects.get_or_create(name=ADMINS_GROUP)[0])
    return user


@pytest.fixture
def employee(db):
    return User.objects.create_user("employee", password="employee-pass-123")


@pytest.fixture
def colleague(db):
    """An agent who never signs in."""
    user = User.objects.create_user("sam", first_name="Sam", last_name="Second")
    user.groups.add(Group.objects.get_or_create(name=AGENTS_GROUP)[0])
    return user


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


@pytest.fixture
def maya(db):
    """An employee with an email address (who signs in to the portal by a link); no password."""
    return User.objects.create_user("maya", email="maya@example.com", first_name="Maya", last_name="Patel")


@pytest.fixture
def maya_client(client, maya):
    client.force_login(maya)
    return client


# Single sign-on -------------------------------------------------------------------


@pytest.fixture(scope="session")
def oidc_provider_server():
    provider = OIDCProvider(client_id="helpdesk", client_secret="provider-secret").start()
    yield provider
    provider.stop()


@pytest.fixture
def oidc_provider(oidc_provider_server, settings):
    """SSO turned on against the local provider, as OIDC_RP_CLIENT_ID and OIDC_ISSUER would turn it on."""
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = "helpdesk"
    settings.OIDC_RP_CLIENT_SECRET = "provider-secret"
    settings.OIDC_PROVIDER_NAME = "Acme ID"
    for name, url in provider_endpoints({"OIDC_ISSUER": oidc_provider_server.issuer}).items():
        setattr(settings, name, url)
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, "accounts.oidc.EmailMatchingOIDCBackend"]
    settings.OIDC_PROXY = {"http": None, "https": None}  # loopback, never through a proxy from the environment
    oidc_provider_server.sign_in_as(OIDC_ANN)
    return oidc_provider_server


# Channels and tickets ---------------------------------------------------------------


@pytest.fixture
def portal_channel(db):
    """The employee portal's channel (``channel_adapters.portal``)."""
    return Channel.objects.create(kind="portal", name="portal", poll_interval_seconds=0)


@pytest.fixture
def locmem_channel(db):
    return Channel.objects.create(
        kind="locmem", name="lm", config={"inbox": "lm"}, secrets={"webhook_secret": "s3cret"}, state={"checked": True}
    )


@pytest.fixture
def ticket(locmem_channel):
    """One ticket: a locmem conversation with one message from Ann."""
    receive(locmem_channel, [message("m0", text="The printer is on fire")])
    return Ticket.objects.get()


@pytest.fixture
def tickets(locmem_channel):
    """Three open tickets ("Problem 0" to "Problem 2"), each from a different requester."""
    return open_tickets(locmem_channel, 3)


@pytest.fixture
def duplicates(locmem_channel):
    """Alice's ticket (2 messages, the oldest), then Bob's (1 message) and Carol's (1 message) about the same outage."""
    receive(
        locmem_channel,
        [
            message("a1", user="alice", name="Alice", text="VPN is down", minute=0),
            message("a2", thread="a1", user="alice", name="Alice", text="Still down", minute=5),
            message("b1", user="bob", name="Bob", text="VPN down for me too", minute=2),
            message("c1", user="carol", name="Carol", text="No VPN here", minute=3),
        ],
    )
    tickets = {t.requester.display_name: t for t in Ticket.objects.select_related("requester")}
    return tickets["Alice"], tickets["Bob"], tickets["Carol"]


@pytest.fixture
def merged(agent, locmem_channel):
    """Alice's ticket (a1, a2: she wrote last, at minute 5) with Bob's (b1) merged in."""
    receive(
        locmem_channel,
        [
            message("a1", user="alice", name="Alice", text="VPN is down", minute=0),
            message("a2", thread="a1", user="alice", name="Alice", text="Still down", minute=5),
            message("b1", user="bob", name="Bob", text="VPN down for me too", minute=2),
        ],
    )
    merge_tickets(ticket_ids=list(Ticket.objects.values_list("pk", flat=True)), actor=agent)
    return Ticket.objects.get(merged_into=None)


@pytest.fixture
def no_eager_tasks():
    """Queued tasks stay queued (in the broker) instead of running inline."""
    celery_app.conf.task_always_eager = False


@pytest.fixture
def queued_reply(ticket, agent, no_eager_tasks):
    """A reply stored as queued, with its delivery task not run yet."""
    return reply_to_ticket(ticket=ticket, author=agent, body="Have you tried turning it off and on?")


@pytest.fixture
def slack_ticket(slack_channel, slack_emulator):
    """Ann's ticket from #it-help (its Slack thread's ``parent_ts`` kept on it)."""
    parent = slack_emulator.post(SLACK_HELP_CHANNEL, "U0ANN", "my laptop won't boot")["ts"]
    poll_as_worker(slack_channel)
    ticket = Ticket.objects.get()
    ticket.parent_ts = parent
    return ticket


@pytest.fixture
def offline_x_channel(db):
    """An X channel that is never called: only asked for its reply modes and lengths."""
    return Channel.objects.create(
        kind="x",
        name="x-help",
        config={"base_url": "http://127.0.0.1:9"},
        secrets={"bearer_token": "t"},
        state={"account_id": "1", "username": "ithelp"},
    )


# Emulators ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def slack_emulator_server():
    emulator = SlackEmulator(port=0, event_retry_delays=(0.2, 0.4, 0.8)).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def slack_emulator(slack_emulator_server):
    """A local Slack workspace (the emulator), reset for each test."""
    slack_emulator_server.reset()
    slack_emulator_server.add_user("U0ANN", name="ann", real_name="Ann Employee", email="ann@example.com")
    slack_emulator_server.add_user("U0BO", name="bo", real_name="Bo Builder", email="bo@example.com")
    return slack_emulator_server


SLACK_CONFIG = {"bot_token": "xoxb-emulator", "signing_secret": "emulator-secret", "conversations": ["C0GENERAL"]}


@pytest.fixture
def slack_channel(db, slack_emulator):
    """A Slack channel wired to the emulator through its base URL, as an admin would add it."""
    config, secrets = clean_channel_config("slack", {**SLACK_CONFIG, "base_url": slack_emulator.base_url})
    return Channel.objects.create(kind="slack", name="it-help", config=config, secrets=secrets)


@pytest.fixture(scope="session")
def x_emulator_server():
    emulator = XEmulator(port=0).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def x_emulator(x_emulator_server):
    """A local X API v2 (the emulator), reset for each test, with two people."""
    x_emulator_server.reset()
    x_emulator_server.people = {
        "maya": x_emulator_server.add_user(username="maya_dev", name="Maya Patel")["id"],
        "leo": x_emulator_server.add_user(username="leo_ops", name="Leo Okafor")["id"],
    }
    return x_emulator_server


@pytest.fixture(scope="session")
def meta_emulator_server():
    emulator = MetaEmulator(port=0, webhook_retry_delays=(0.2, 0.4, 0.8)).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def meta_emulator(meta_emulator_server):
    """A local Meta Graph API (Pages, Instagram, WhatsApp; the emulator), reset for each test: no accounts yet."""
    meta_emulator_server.reset()
    return meta_emulator_server


@pytest.fixture(scope="session")
def mail_emulator_server():
    emulator = MailEmulator().start()
    yield emulator
    emulator.stop()


@pytest.fixture
def mail_emulator(mail_emulator_server):
    """A local mail server (IMAP, SMTP; the emulator), reset for each test: one account, ``DEFAULT_USER`` with
    ``DEFAULT_PASSWORD`` (and ``DEFAULT_TOKEN`` for XOAUTH2), an empty INBOX, nothing sent. Connect to
    ``imap_port`` and ``smtp_port`` on ``imap_host``/``smtp_host``."""
    mail_emulator_server.reset()
    return mail_emulator_server


@pytest.fixture
def x_channel(db, x_emulator):
    """An X channel wired to the emulator through its base URL (OAuth 2.0 user token)."""
    return make_x_channel(x_emulator)


@pytest.fixture(scope="session")
def canned_platform_server():
    server = CannedPlatform()
    yield server
    server.stop()


@pytest.fixture
def canned_platform(canned_platform_server):
    """A platform API that answers each path with what the test sets (``answer``), malformed or not."""
    canned_platform_server.reset()
    return canned_platform_server


# Mail servers (tests/mail_servers.py): a real Dovecot and an SMTP catcher ---------------------------------------


@pytest.fixture(scope="session")
def dovecot_server():
    # Under /tmp, not pytest's private tmp folders: as root, Dovecot reads and writes mail as an unprivileged user.
    folder = Path(tempfile.mkdtemp(prefix="helpdesk-dovecot-"))
    try:
        server = Dovecot(folder).start()
    except MailServerError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"Email tests need a real Dovecot: {exc}")
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def dovecot(dovecot_server):
    """A real Dovecot IMAP server on a loopback port, reset for each test: no users, no mail. Add accounts with
    ``add_user``, deliver with ``deliver`` (IMAP APPEND), log in with ``client(user)``."""
    dovecot_server.reset()
    return dovecot_server


@pytest.fixture(scope="session")
def smtp_catcher_server():
    catcher = SmtpCatcher().start()
    yield catcher
    catcher.stop()


@pytest.fixture
def smtp_catcher(smtp_catcher_server):
    """An SMTP server in this process that keeps what it is sent (``messages``), emptied for each test."""
    smtp_catcher_server.reset()
    return smtp_catcher_server


# A real worker, a real browser ---------------------------------------------------------


@pytest.fixture
def celery_worker_process(transactional_db):
    """Start a real Celery worker (a separate process) on PostgreSQL and Redis; yields a starter."""
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    workers = []

    def start(concurrency=2, **env):
        worker = WorkerProcess(concurrency, {key: str(value) for key, value in env.items()}).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (never `playwright install`)."""
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between page actions are still plain synchronous calls. Only for browser tests.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    # Live updates arrive by htmx polling (every 5 s for the queue): allow more than the 5 s default.
    expect.set_options(timeout=BROWSER_TIMEOUT_MS)
    if not os.path.exists(CHROMIUM):
        pytest.fail("Browser tests need Debian's chromium: run bin/ensure-browser (make test does).")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def console(browser, live_server, agent):
    """A signed-in agent's browser tab, on the queue."""
    page = signed_in_page(browser, live_server, "agent", "agent-pass-123")
    yield page
    page.context.close()
    assert page.csp_violations == [], "the Content-Security-Policy blocked something"


@pytest.fixture
def other_console(browser, live_server, other_agent):
    """A second agent (Dana) in a browser context of her own, on the queue."""
    page = signed_in_page(browser, live_server, "dana", "dana-pass-123")
    yield page
    page.context.close()
    assert page.csp_violations == [], "the Content-Security-Policy blocked something"
