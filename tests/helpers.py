"""What the tests share besides fixtures: URLs, builders that go through the real pipeline, page readers,
query counting, a real Celery worker, and a signed-in browser. Fixtures live in ``conftest.py``, which imports
these; tests import them from here, never from ``conftest.py``.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection, transaction
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from channel_adapters.base import InvalidWebhook
from channel_adapters.email.adapter import EmailAdapter
from channels_ingest import ingest, polling
from channels_ingest.channel_config import clean_channel_config
from channels_ingest.mail_transport import give_transport
from channels_ingest.models import Channel, InboundMessage
from emulators.mail import DEFAULT_PASSWORD, DEFAULT_USER
from helpdesk.celery import app as celery_app
from tests.factories import BASE_TIME, mention, message
from tickets.inbound import receive_batch
from tickets.merging import merge_tickets
from tickets.models import Attachment, Macro, Message, Ticket, TicketThread
from tickets.replies import reply_to_ticket

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Console URLs ------------------------------------------------------------------


def detail_url(ticket):
    return reverse("console:ticket-detail", args=[ticket.pk])


def reply_url(ticket):
    return reverse("console:ticket-reply", args=[ticket.pk])


def note_url(ticket):
    return reverse("console:ticket-note", args=[ticket.pk])


def download_url(attachment):
    return reverse("console:attachment", args=[attachment.pk])


def length_url(ticket):
    return reverse("console:reply-length", args=[ticket.pk])


# Building tickets ----------------------------------------------------------------


def receive(channel, envelopes):
    """Ingest envelopes directly, as the pipeline would after storing them."""
    with transaction.atomic():
        receive_batch(channel=channel, envelopes=envelopes)


def add_email(ticket, *, minute=0, body="The printer is on fire", files=(), original=None, **email):
    """An inbound email on ``ticket`` whose ``files`` ((name, bytes, type), stored in this order) are its
    attachments; ``original`` what ``meta["original"]`` names (None: no original); ``email`` overrides the
    meta's fields."""
    meta = {
        "subject": "Printer",
        "from": {"email": "ann@example.com", "name": "Ann Employee"},
        "to": [{"email": "help@desk.example", "name": "Help Desk"}],
        "cc": [],
        "reply_to": [],
        "message_id": f"m{minute}@example.com",
        "references": [],
        "html": "",
        "notes": [],
        **email,
    }
    message = Message.objects.create(
        ticket=ticket,
        direction=Message.Direction.INBOUND,
        body=body,
        created_at=BASE_TIME + timedelta(minutes=minute),
        meta={"email": meta, **({"original": original} if original is not None else {})},
    )
    for name, content, content_type in files:
        Attachment.objects.create(
            message=message,
            name=name,
            content_type=content_type,
            size=len(content),
            status=Attachment.Status.STORED,
            file=ContentFile(content, name="f"),
        )
    return message


def open_tickets(channel, count, *, first=0):
    """``count`` more tickets ("Problem <n>"), each opened by a different requester; every ticket, oldest first."""
    numbers = range(first, first + count)
    receive(
        channel,
        [message(f"m{n}", user=f"u{n}", name=f"Person {n}", text=f"Problem {n}", minute=n) for n in numbers],
    )
    return list(Ticket.objects.order_by("id"))


def poll_and_ingest(channel):
    """Poll a channel and ingest what it stored, in this process."""
    outcome = polling.poll_channel(channel.pk)
    ingest.ingest_channel(channel.pk)
    return outcome


def requester_writes(locmem_channel, external_id, text, minute=1):
    """Ann writes again in the conversation of the ``ticket`` fixture ("m0"); returns her stored message."""
    receive(locmem_channel, [message(external_id, thread="m0", text=text, minute=minute)])
    return Message.objects.get(external_id=external_id)


def ticket_by_email(channel, external_id, *, email, name="Maya Patel", text=None, minute=0):
    """A ticket opened on ``channel`` by someone whose identity there carries ``email`` (a Slack profile's)."""
    envelope = message(external_id, user=email.split("@")[0], name=name, text=text, minute=minute)
    receive(channel, [replace(envelope, sender=replace(envelope.sender, email=email))])
    return Ticket.objects.get(messages__external_id=external_id)


def portal_form(**fields):
    """What a portal form posts: its fields, and a fresh idempotency key unless one is given."""
    return {"key": uuid.uuid4().hex, **fields}


def x_ticket(channel, *, summoned):
    """A ticket opened by an X mention (summoned: it @mentioned the account itself)."""
    receive(channel, [mention(123, summoned=summoned)])
    return Ticket.objects.get()


#: The status of an inbound row held for an agent in the Triage list.
TRIAGE = InboundMessage.Status.TRIAGE


def awaiting_triage(channel, envelopes):
    """Triage rows as ingestion leaves them: the raw envelope, held for an agent."""
    return InboundMessage.objects.bulk_create(
        [
            InboundMessage(channel=channel, external_id=e.external_id, payload=e.to_json(), status=TRIAGE)
            for e in envelopes
        ]
    )


def failed_inbound(channel, envelopes, error="KeyError: 'text'"):
    """Inbound rows as ingestion leaves a payload it could not understand: failed, with the raw envelope kept."""
    return InboundMessage.objects.bulk_create(
        [
            InboundMessage(
                channel=channel, external_id=e.external_id, payload=e.to_json(), status="failed", error=error
            )
            for e in envelopes
        ]
    )


def merge(agent, *tickets, keep=None):
    return merge_tickets(ticket_ids=[t.pk for t in tickets], actor=agent, keep_id=keep.pk if keep else None)


def thread_with_key(key):
    return TicketThread.objects.get(key=key)


def outbound(ticket=None):
    """Replies (of ``ticket``, or of every ticket)."""
    messages = ticket.messages if ticket is not None else Message.objects
    return messages.filter(direction=Message.Direction.OUTBOUND)


def shared_macro(**fields):
    return Macro.objects.create(**{"name": "Ask for details", "body": "Hi {requester_first_name}", **fields})


# Files ------------------------------------------------------------------------------

#: A small PNG (its signature, then bytes): enough for a thumbnail's content type, and several download chunks.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
#: The emulator's #it-help, which the ``slack_channel`` fixture watches.
SLACK_HELP_CHANNEL = "C0GENERAL"


def share(slack_emulator, text, *files, thread_ts=None):
    """Ann posts in #it-help with files: (name, bytes, mime type)."""
    return slack_emulator.post(
        SLACK_HELP_CHANNEL,
        "U0ANN",
        text,
        thread_ts=thread_ts,
        files=[{"name": name, "content": content, "mimetype": mimetype} for name, content, mimetype in files],
    )


def x_photo(content=PNG, **extra):
    """A photo as the X emulator attaches it to a post or DM."""
    return {"type": "photo", "content": content, "content_type": "image/png", **extra}


class FullDiskStorage(FileSystemStorage):
    """A storage whose every write fails, as on a full disk or an unreachable file server."""

    def _save(self, name, content):
        raise OSError(28, "No space left on device")


def upload(name="boot.log", content=b"line 1\nline 2\n", content_type="text/plain"):
    """A file as an agent attaches it in the composer."""
    return SimpleUploadedFile(name, content, content_type=content_type)


def poll_as_worker(channel):
    """Poll and ingest as the worker would, running what both queue on commit (e.g. name lookups)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        outcome = polling.poll_channel(channel.pk)
    channel.refresh_from_db()
    return outcome


def make_x_channel(x_emulator, name="x-help", **config):
    raw = {"bearer_token": "x-emulator-bearer", "base_url": x_emulator.url, **config}
    clean, secrets = clean_channel_config("x", raw)
    return Channel.objects.create(kind="x", name=name, config=clean, secrets=secrets)


# Sending replies --------------------------------------------------------------------


def post_reply(client, ticket, seen, body="Have you tried turning it off?", **extra):
    """The composer's POST of a reply, with the place the agent had seen (``seen_of``)."""
    return client.post(reply_url(ticket), {"body": body, **seen, **extra})


def send_reply(agent_client, ticket, body, *files, capture):
    """The composer's POST of a reply with files, running its delivery (queued on commit)."""
    with capture(execute=True):
        return agent_client.post(reply_url(ticket), {"body": body, "files": list(files)})


def reply_and_deliver(ticket, agent, body, mode=None):
    """A reply stored and delivered at once (its on-commit delivery runs); returns it as delivered."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        message = reply_to_ticket(ticket=ticket, author=agent, body=body, mode=mode)
    message.refresh_from_db()
    return message


# Commands ---------------------------------------------------------------------------


def channels_command(*args):
    """What `manage.py channels <args>` prints."""
    out = StringIO()
    call_command("channels", *args, stdout=out)
    return out.getvalue()


def slack_config_json(emulator, **extra):
    """A Slack channel's --config for the emulator, as an admin would type it."""
    return json.dumps(
        {
            "bot_token": "xoxb-emulator",
            "signing_secret": "emulator-secret",
            "conversations": [SLACK_HELP_CHANNEL],
            "base_url": emulator.base_url,
            **extra,
        }
    )


# Reading pages ------------------------------------------------------------------


def text_of(html):
    """The page's text with tags dropped and whitespace collapsed, as a reader hears it."""
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


def seen_of(html):
    """The composer's hidden place (what the agent had seen), as the form would post it."""
    place = dict(re.findall(r'<input type="hidden" name="(seen_\w+)" value="([^"]*)"', html))
    assert place, "no composer place"
    return place


def flashes(response):
    """The messages a response shows the agent ("Ticket updated.")."""
    return [str(m) for m in response.context["messages"]] if response.context else []


def queries_for(client, url, *, cold_cache=False):
    """How many queries a successful GET of ``url`` takes; with ``cold_cache``, its worst case: nothing
    cached beforehand (e.g. the queue's shared view counts)."""
    if cold_cache:
        cache.clear()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@contextmanager
def database_refuses(table, error, *, times=None):
    """Statements that write ``table`` (INSERT INTO / UPDATE it) fail with ``error`` (``times`` times, or every
    time), as the database raises them in an outage. Django's own hook for wrapping what a connection executes;
    yields the list of statements refused."""
    refused = []

    def refuse(execute, sql, params, many, context):
        if (f'INSERT INTO "{table}"' in sql or f'UPDATE "{table}"' in sql) and (times is None or len(refused) < times):
            refused.append(sql)
            raise error
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse):
        yield refused


def wait_for(predicate, timeout=30, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout}s waiting for {message}")


# A real Celery worker -------------------------------------------------------------


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


# A Redis of a test's own ------------------------------------------------------------


class ThrowawayRedis:
    """A ``redis-server`` on a free port of its own, never the machine's, to stop and start mid-test."""

    def __init__(self, folder):
        self.folder = folder
        self.process = None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=10, message=f"redis-server on port {self.port}")
        return self

    def stop(self):
        """As an outage: the server goes away under its clients' open connections."""
        if self.process and self.process.poll() is None:
            self.thaw()
            self.process.kill()
            self.process.wait()

    def freeze(self):
        """As a hung server: connections are still accepted (by the kernel), nothing is answered."""
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self):
        self.process.send_signal(signal.SIGCONT)

    def _answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False


# A real browser -----------------------------------------------------------------------

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


def signed_in_page(browser, live_server, username, password):
    """A new browser context (its own cookies: its own session), signed in, on the queue.

    What the Content-Security-Policy blocked on the way is in ``page.csp_violations`` (the fixtures check it)."""
    context = browser.new_context()
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda entry: violations.append(entry.text) if "Content Security Policy" in entry.text else None)
    page.csp_violations = violations  # type: ignore[attr-defined]
    page.set_default_timeout(BROWSER_TIMEOUT_MS)
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/")
    return page


def open_ticket(page, live_server, ticket):
    page.goto(live_server.url + detail_url(ticket))


# A platform that answers what the test says ----------------------------------------


class CannedPlatform:
    """An HTTP server that answers each API path with the body a test gave it, byte for byte.

    The emulators are faithful, so they never serve a malformed page; this serves one (a recorded page,
    mutated) to the real client libraries (slack_sdk, tweepy) through the adapters' own ``_call``.
    """

    def __init__(self):
        self.bodies: dict[str, bytes] = {}
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                body = next((b for suffix, b in canned.bodies.items() if path.endswith(suffix)), None)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("x-rate-limit-reset", str(int(time.time()) + 900))
                body = body if body is not None else b'{"ok": false, "error": "unknown_method"}'
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path_suffix, body):
        """Answer requests whose path ends with ``path_suffix`` with ``body`` (JSON-encoded unless bytes)."""
        self.bodies[path_suffix] = body if isinstance(body, bytes) else json.dumps(body).encode()

    def reset(self):
        self.bodies.clear()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def canned_slack_channel(canned_platform, name="canned-slack"):
    """A Slack channel (identity known) whose API is the canned platform."""
    config, secrets = clean_channel_config(
        "slack",
        {
            "bot_token": "xoxb-canned",
            "signing_secret": "canned-secret",
            "conversations": ["C0GENERAL"],
            "base_url": canned_platform.url,
        },
    )
    return Channel.objects.create(
        kind="slack", name=name, config=config, secrets=secrets, state={"team_id": "T0EMU", "bot_user_id": "U0BOT"}
    )


def canned_x_channel(canned_platform, name="canned-x"):
    """An X channel (identity known) whose API is the canned platform."""
    clean, secrets = clean_channel_config("x", {"bearer_token": "x-canned", "base_url": canned_platform.url})
    return Channel.objects.create(
        kind="x", name=name, config=clean, secrets=secrets, state={"account_id": "1", "username": "ithelp"}
    )


class PushInbox:
    """A webhook endpoint for an adapter under test, without the helpdesk: it answers the platform's GET
    handshake through ``adapter.verify_subscription`` and keeps each POST (headers and raw bytes) until
    ``take`` hands the adapter what arrived, through ``handle_webhook``, signature check included."""

    def __init__(self, adapter):
        self.adapter = adapter
        self.pushes: list[tuple[dict, bytes]] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                try:
                    answer = inbox.adapter.verify_subscription(dict(parse_qsl(urlsplit(self.path).query)))
                    status, body = answer.status, str(answer.body).encode()
                except InvalidWebhook as exc:
                    status, body = exc.status, str(exc).encode()
                self._reply(status, body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                inbox.pushes.append((dict(self.headers), body))
                self._reply(200, b"{}")

            def _reply(self, status, body):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def raw(self, emulator) -> list[tuple[dict, bytes]]:
        """What was pushed since the last call (headers and bytes, in order), once the emulator pushed all it queued."""
        assert emulator.wait_for_webhooks(), "the emulator still had pushes queued"
        pushes, self.pushes = self.pushes, []
        return pushes

    def take(self, emulator) -> list:
        """The envelopes of everything pushed since the last call."""
        envelopes = []
        for headers, body in self.raw(emulator):
            result = self.adapter.handle_webhook(headers=headers, body=body)
            assert not result.rejected, result.rejected  # the platform's own pushes are all understood
            envelopes += result.envelopes
        return envelopes

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class JsonApi:
    """A local HTTP API a test scripts: each POST's raw body is kept in ``requests`` as (path, headers, body),
    and answered with the JSON that ``answer(path, body)`` returns as (status, body)."""

    def __init__(self, answer):
        self.requests: list[tuple[str, object, bytes]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                api.requests.append((self.path, self.headers, body))
                status, payload = answer(self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


#: Who the local OpenID Connect provider signs in, unless a test says otherwise.
OIDC_ANN = {
    "sub": "ann-1",
    "email": "Ann.Employee@example.com",
    "email_verified": True,
    "given_name": "Ann",
    "family_name": "Employee",
}


def emulated_mail_adapter(mail_emulator, *, timeout):
    """An email channel's adapter on the mail emulator's mailbox, in plain text, waiting ``timeout`` seconds."""
    raw = {
        "address": DEFAULT_USER,
        "imap_host": mail_emulator.imap_host,
        "imap_port": mail_emulator.imap_port,
        "imap_security": "none",
        "smtp_port": mail_emulator.smtp_port,
        "smtp_security": "none",
        "username": DEFAULT_USER,
        "password": DEFAULT_PASSWORD,
        "timeout": timeout,
    }
    config, secrets = EmailAdapter.split_config(raw)
    adapter = EmailAdapter(config=config, secrets=secrets)
    give_transport(adapter)
    return adapter
