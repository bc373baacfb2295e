"""Meta webhook ingest benchmark: signed POSTs to gunicorn → stored rows → ticket messages, through real
Celery workers on Redis and PostgreSQL. Half the messages are WhatsApp, half Messenger, from 200 people.

    python -m bench.ingest --platform meta [--messages 5000] [--per-post 1] [--senders 16] [--rate 0]

``--rate`` offers that many messages per second (0: as fast as the senders go, which measures throughput but
makes the latency that of a growing queue).

Prints, per round: signed POSTs accepted per second, messages per second into tickets (first POST to last
ticket message), and push → visible latency (a POST's start to its message's commit, which is when the
console's live page can show it) at p50 and p95.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.setup import empty_tables, percentile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEOPLE = 200
APP_SECRET = "bench-app-secret"
PAGE_ID = "1895382890692545"
PHONE_NUMBER_ID = "1122334455667"
WABA_ID = "102290129340398"
LOOK_BACK = 1000


def run(args, start_worker, wait_for_workers, wait_until_idle):
    from django.core.cache import cache

    from emulators.meta import MetaEmulator
    from helpdesk.celery import app

    # The Graph API the channels call after ingest (names of new senders) is the emulator, as in a test.
    emulator = MetaEmulator(port=0).start()
    workers = [start_worker(args.concurrency) for _ in range(args.workers)]
    web_port = _free_port()
    web = _start_web(web_port)
    try:
        wait_for_workers(app, len(workers))
        _wait_for_web(web_port)
        rounds = []
        for round_number in range(1, args.rounds + 1):
            empty_tables()
            cache.clear()
            emulator.reset()
            channels = _channels(emulator)
            result = _round(args, channels, f"http://127.0.0.1:{web_port}")
            wait_until_idle(app)
            rounds.append(result)
            print(
                f"round {round_number}: {args.messages} messages in {result['posts']} signed POSTs: "
                f"{result['posts_per_second']:.0f} POSTs/s accepted, {result['rate']:.0f} msgs/s into tickets, "
                f"push → visible p50 {result['p50'] * 1000:.0f} ms, p95 {result['p95'] * 1000:.0f} ms",
                flush=True,
            )
    finally:
        emulator.stop()
        web.terminate()
        for worker in workers:
            worker.terminate()
        for process in (web, *workers):
            process.wait()
    print(
        f"workers: {args.workers} x concurrency {args.concurrency}; gunicorn 3 workers; {args.senders} concurrent "
        f"senders, {args.per_post} message(s) per POST, offered {f'{args.rate} msgs/s' if args.rate else 'at once'}; "
        f"median of {args.rounds} rounds"
    )
    print(f"push → visible: p50 {statistics.median(r['p50'] for r in rounds) * 1000:.0f} ms, "
          f"p95 {statistics.median(r['p95'] for r in rounds) * 1000:.0f} ms")  # fmt: skip
    print(f"signed POSTs accepted: {statistics.median(r['posts_per_second'] for r in rounds):.0f}/s")
    print(f"ingest (meta webhooks): {statistics.median(r['rate'] for r in rounds):.0f} msgs/s")


def _channels(emulator):
    from channels_ingest.channel_config import clean_channel_config
    from channels_ingest.models import Channel

    page = emulator.add_page(PAGE_ID, token="bench-page-token", app_secret=APP_SECRET)
    number = emulator.add_whatsapp(PHONE_NUMBER_ID, waba_id=WABA_ID, token="bench-wa-token", app_secret=APP_SECRET)
    made = {}
    for kind, raw in (
        ("whatsapp", {"phone_number_id": PHONE_NUMBER_ID, "waba_id": WABA_ID, "access_token": number["token"]}),
        ("facebook", {"page_id": PAGE_ID, "page_access_token": page["token"]}),
    ):
        raw = {**raw, "app_secret": APP_SECRET, "verify_token": "v", "base_url": emulator.base_url}
        config, secrets = clean_channel_config(kind, raw)
        made[kind] = Channel.objects.create(
            kind=kind, name=f"bench-{kind}", config=config, secrets=secrets, poll_interval_seconds=0
        )
    return made


def _round(args, channels, web_url):
    from tickets.models import Message

    posts = _bodies(args.messages, args.per_post, channels)
    sent_at: dict[str, float] = {}
    arrived: dict[str, float] = {}
    done = threading.Event()
    expected = [external_id for _, _, ids in posts for external_id in ids]
    tracker = threading.Thread(target=_track, args=(arrived, expected, done), daemon=True)
    tracker.start()
    started = time.perf_counter()
    local = threading.local()

    post_interval = args.per_post / args.rate if args.rate else 0.0

    def post(item):
        index, (url, body, ids) = item
        if post_interval:  # an offered load, as a platform's pushes come: not all at once
            time.sleep(max(0.0, started + index * post_interval - time.perf_counter()))
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        session.trust_env = False
        at = time.perf_counter()
        for external_id in ids:
            sent_at[external_id] = at
        signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        response = session.post(
            url, data=body, headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature}, timeout=30
        )
        return response.status_code

    with ThreadPoolExecutor(args.senders) as pool:
        statuses = list(pool.map(post, enumerate((f"{web_url}{path}", body, ids) for path, body, ids in posts)))
    posted = time.perf_counter() - started
    refused = [status for status in statuses if status != 200]
    if refused:
        sys.exit(f"{len(refused)} POSTs refused (e.g. HTTP {refused[0]})")
    done.wait()
    elapsed = max(arrived.values()) - started
    assert Message.objects.values("external_id").distinct().count() == args.messages
    latencies = [arrived[key] - sent_at[key] for key in arrived]
    return {
        "posts": len(posts),
        "posts_per_second": len(posts) / posted,
        "rate": args.messages / elapsed,
        "p50": statistics.median(latencies),
        "p95": percentile(latencies, 95),
    }


def _track(arrived, expected_ids, done):
    """When each message became a ticket message (a committed row), read every 20 ms. Ids are handed out at
    INSERT and become visible at COMMIT, out of order, so each read looks back ``LOOK_BACK`` ids behind the
    newest seen (more than the inserts in flight at once), and the ids still missing are asked for by name
    now and then: the tracker must not load the database it measures."""
    from django.db import connection

    from tickets.models import Message

    missing, newest, reads = set(expected_ids), 0, 0
    try:
        while missing:
            reads += 1
            if reads % 50 == 0:
                rows = list(Message.objects.filter(external_id__in=missing).values_list("pk", "external_id"))
            else:
                rows = list(Message.objects.filter(pk__gt=newest - LOOK_BACK).values_list("pk", "external_id"))
            now = time.perf_counter()
            for pk, external_id in rows:
                if external_id in missing:
                    arrived[external_id] = now
                    missing.discard(external_id)
                newest = max(newest, pk)
            time.sleep(0.02)
    finally:
        connection.close()
        done.set()


def _bodies(messages, per_post, channels):
    """(webhook path, signed body, message ids) per POST: WhatsApp and Messenger, alternately."""
    from django.urls import reverse

    now = int(time.time())
    paths = {kind: reverse("channels_ingest:webhook", args=[channel.public_id]) for kind, channel in channels.items()}
    posts = []
    for start in range(0, messages, per_post):
        numbers = range(start, min(messages, start + per_post))
        if (start // per_post) % 2:
            ids = [f"m_bench{n}" for n in numbers]
            events = [
                {
                    "sender": {"id": f"{7000 + n % PEOPLE}"},
                    "recipient": {"id": PAGE_ID},
                    "timestamp": now * 1000,
                    "message": {"mid": f"m_bench{n}", "text": f"Issue {n}: VPN drops"},
                }
                for n in numbers
            ]
            body = {"object": "page", "entry": [{"id": PAGE_ID, "time": now * 1000, "messaging": events}]}
            posts.append((paths["facebook"], json.dumps(body).encode(), ids))
        else:
            ids = [f"wamid.bench{n}" for n in numbers]
            value = {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID},
                "contacts": [
                    {"profile": {"name": f"Employee {n % PEOPLE}"}, "wa_id": f"1555{n % PEOPLE:07d}"} for n in numbers
                ],
                "messages": [
                    {
                        "from": f"1555{n % PEOPLE:07d}",
                        "id": f"wamid.bench{n}",
                        "timestamp": str(now),
                        "type": "text",
                        "text": {"body": f"Issue {n}: VPN drops"},
                    }
                    for n in numbers
                ],
            }
            body = {
                "object": "whatsapp_business_account",
                "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}],
            }
            posts.append((paths["whatsapp"], json.dumps(body).encode(), ids))
    return posts


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_web(port):
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "helpdesk.wsgi", "-b", f"127.0.0.1:{port}", "--workers", "3"],
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for_web(port, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/login/", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)
    sys.exit("gunicorn did not start.")
