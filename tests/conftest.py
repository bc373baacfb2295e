import os
import subprocess
import sys
import time
import uuid

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection

from channel_adapters import locmem
from helpdesk.celery import app as celery_app
from tickets.roles import ADMINS_GROUP, AGENTS_GROUP

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def eager_celery():
    """Tasks run inline unless a test starts a real worker (``celery_worker_process``)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def clean_locmem():
    locmem.reset()
    yield
    locmem.reset()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def clean_cache():
    from django.core.cache import cache

    cache.clear()


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
def locmem_channel(db):
    from channels_ingest.models import Channel

    return Channel.objects.create(
        kind="locmem", name="lm", config={"inbox": "lm"}, secrets={"webhook_secret": "s3cret"}, state={"checked": True}
    )


def worker_env():
    """The environment for a worker process that must see this test's database."""
    settings_dict = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.fail("Worker tests need PostgreSQL: set DATABASE_URL (see Makefile `test`).")
    url = (
        f"postgres://{settings_dict['USER'] or 'postgres'}@{settings_dict['HOST'] or '127.0.0.1'}:"
        f"{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
    )
    env = dict(os.environ, DATABASE_URL=url, DJANGO_DEBUG="1")
    if not env.get("CELERY_BROKER_URL", "").startswith("redis"):
        pytest.fail("Worker tests need Redis: set CELERY_BROKER_URL=redis://… (see Makefile `test`).")
    return env


class WorkerProcess:
    def __init__(self, concurrency=2, env=None):
        self.concurrency = concurrency
        self.env = env or {}
        self.process = None

    def start(self):
        name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "helpdesk",
                "worker",
                "-l",
                "WARNING",
                "-n",
                name,
                "-c",
                str(self.concurrency),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env={**worker_env(), **self.env},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            replies = celery_app.control.ping(timeout=0.5) or []
            if any(name.split("@")[0] in key for reply in replies for key in reply):
                return self
            if self.process.poll() is not None:
                pytest.fail("The Celery worker exited during start-up.")
        pytest.fail("The Celery worker did not answer a ping within 30 s.")

    def kill(self):
        """SIGKILL: the worker dies mid-task, as in a crash or an OOM kill."""
        self.process.kill()
        self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


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


def queries_for(client, url, *, cold_cache=False):
    """How many queries a successful GET of ``url`` takes; with ``cold_cache``, its worst case: nothing
    cached beforehand (e.g. the queue's shared view counts)."""
    from django.core.cache import cache
    from django.test.utils import CaptureQueriesContext

    if cold_cache:
        cache.clear()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def poll_as_worker(channel):
    """Poll and ingest as the worker would, running what both queue on commit (e.g. name lookups)."""
    from django.test import TestCase

    from channels_ingest import polling

    with TestCase.captureOnCommitCallbacks(execute=True):
        outcome = polling.poll_channel(channel.pk)
    channel.refresh_from_db()
    return outcome


def wait_for(predicate, timeout=30, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout}s waiting for {message}")


@pytest.fixture(scope="session")
def slack_emulator_server():
    from emulators.slack import SlackEmulator

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
    from channels_ingest.channel_config import clean_channel_config
    from channels_ingest.models import Channel

    config, secrets = clean_channel_config("slack", {**SLACK_CONFIG, "base_url": slack_emulator.base_url})
    return Channel.objects.create(kind="slack", name="it-help", config=config, secrets=secrets)


@pytest.fixture(scope="session")
def x_emulator_server():
    from emulators.x import XEmulator

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


def make_x_channel(x_emulator, name="x-help", **config):
    from channels_ingest.channel_config import clean_channel_config
    from channels_ingest.models import Channel

    raw = {"bearer_token": "x-emulator-bearer", "base_url": x_emulator.url, **config}
    clean, secrets = clean_channel_config("x", raw)
    return Channel.objects.create(kind="x", name=name, config=clean, secrets=secrets)


@pytest.fixture
def x_channel(db, x_emulator):
    """An X channel wired to the emulator through its base URL (OAuth 2.0 user token)."""
    return make_x_channel(x_emulator)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BROWSER_TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (never `playwright install`)."""
    from playwright.sync_api import expect, sync_playwright

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


def signed_in_page(browser, live_server, username, password):
    """A new browser context (its own cookies: its own session), signed in, on the queue."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(BROWSER_TIMEOUT_MS)
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/")
    return page


@pytest.fixture
def console(browser, live_server, agent):
    """A signed-in agent's browser tab, on the queue."""
    page = signed_in_page(browser, live_server, "agent", "agent-pass-123")
    yield page
    page.context.close()


@pytest.fixture
def other_console(browser, live_server, other_agent):
    """A second agent (Dana) in a browser context of her own, on the queue."""
    page = signed_in_page(browser, live_server, "dana", "dana-pass-123")
    yield page
    page.context.close()


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


def receive(channel, envelopes):
    """Ingest envelopes directly, as the pipeline would after storing them."""
    from django.db import transaction

    from tickets.inbound import receive_batch

    with transaction.atomic():
        receive_batch(channel=channel, envelopes=envelopes)
