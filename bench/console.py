"""Agent console and API benchmark: server time and query count of the pages agents open most.

Seeds 100,000 tickets into the PostgreSQL database named by DATABASE_URL, then requests each
page in-process with Django's test Client. The seed is kept for reruns: the database is dropped
and seeded again only with ``--reseed``, or when this file or a migration changed.
Prints one line per page and, last, ``console: queue p95 <x> ms (<q> queries), ticket(500 msgs) p95 <y> ms (<q> queries)``.

    make bench-console            # or: python -m bench.console --reseed --requests 200
"""

import argparse
import hashlib
import os
import random
import time
import warnings
from datetime import timedelta
from pathlib import Path

from bench.setup import drop_stale_database, setup_django, summary

ROOT = Path(__file__).resolve().parent.parent

# Its own database: bench.ingest TRUNCATEs the tickets tables of the one it uses.
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/helpdesk_bench_console"

TICKETS = 100_000
CONTACTS = 5_000
BATCH = 5_000
LONG_TICKET_MESSAGES = 500
LONG_TICKET_SUBJECT = "Laptop keeps dropping off Wi-Fi (bench: 500 messages)"
CHANNEL_NAME = "bench-console"
NAMESPACE = "slack:TBENCH"
CONVERSATION = "CBENCH"
AGENT_USERNAME = "bench-agent"
# Mostly open work, as in a live desk; resolved and closed tickets age out of the default queue.
STATUS_WEIGHTS = {"new": 20, "open": 35, "pending": 15, "resolved": 15, "closed": 15}
PRIORITY_WEIGHTS = {1: 20, 2: 60, 3: 15, 4: 5}
KIND_WEIGHTS = {"incident": 60, "service_request": 35, "problem": 3, "change": 2}
SUBJECTS = [
    "VPN drops every few minutes",
    "Cannot print to the 3rd floor printer",
    "Password reset please",
    "Outlook keeps asking for my password",
    "New starter needs a laptop",
    "Access to the finance share",
    "Teams camera not working",
    "Monitor flickers",
    "Software install request: Figma",
    "Wi-Fi slow in room B2",
]
ACTIVITY_SPREAD = timedelta(days=90)

QUEUE_TARGET_MS = 50
TICKET_TARGET_MS = 80
REFERENCE = (
    "django-helpdesk reference, 100,000 tickets: list data 3.2 s p95 (72 queries), ticket page 275 ms p95 (85 queries)"
)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reseed", action="store_true", help="seed again even if the database holds the data set")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per page")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured requests per page first")
    args = parser.parse_args()
    url = os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    # Benchmarks skip collectstatic; WhiteNoise's warning about the missing STATIC_ROOT is noise here.
    warnings.filterwarnings("ignore", message="No directory at")
    fingerprint = data_set_fingerprint()
    recreated = drop_stale_database(url, fingerprint, force=args.reseed)
    setup_django()

    from django.db import connection

    from tickets.models import Ticket

    print(f"database: {connection.settings_dict['NAME']}", flush=True)
    agent = agent_user()
    if recreated or not is_seeded():
        started = time.perf_counter()
        seed(agent, fingerprint)
        print(
            f"seeding: {TICKETS:,} tickets + 1 of {LONG_TICKET_MESSAGES} messages in "
            f"{time.perf_counter() - started:.1f}s",
            flush=True,
        )
    else:
        print(f"seeding: skipped, {TICKETS + 1:,} tickets already there (--reseed forces it)", flush=True)

    long_ticket = Ticket.objects.get(subject=LONG_TICKET_SUBJECT)
    normal_ticket = Ticket.objects.filter(message_count=3).order_by("id").first()
    started = time.perf_counter()
    results = measure_pages(agent, normal_ticket, long_ticket, args.requests, args.warmup)
    print(f"measuring: {time.perf_counter() - started:.1f}s")

    queue, ticket = results["console queue"], results["console ticket (500 msgs)"]
    print(
        f"targets: queue p95 < {QUEUE_TARGET_MS} ms ({verdict(queue, QUEUE_TARGET_MS)}), "
        f"ticket page p95 < {TICKET_TARGET_MS} ms ({verdict(ticket, TICKET_TARGET_MS)})"
    )
    print(REFERENCE)
    print(
        f"console: queue p95 {queue['p95']:.1f} ms ({queue['queries']} queries), "
        f"ticket(500 msgs) p95 {ticket['p95']:.1f} ms ({ticket['queries']} queries)"
    )


def agent_user():
    from django.contrib.auth.models import Group, User

    from tickets.roles import AGENTS_GROUP

    agent, _ = User.objects.get_or_create(
        username=AGENT_USERNAME, defaults={"first_name": "Bench", "last_name": "Agent"}
    )
    agent.groups.add(Group.objects.get_or_create(name=AGENTS_GROUP)[0])
    return agent


def data_set_fingerprint():
    """Changes with this file and with the schema; migrations are still edited in place, which
    ``migrate`` cannot see, so a changed one means a fresh database."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for migration in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(migration.read_bytes())
    return f"bench.console {digest.hexdigest()[:16]}"


def is_seeded():
    from tickets.models import Ticket

    return (
        Ticket.objects.filter(subject=LONG_TICKET_SUBJECT, message_count=LONG_TICKET_MESSAGES).exists()
        and Ticket.objects.count() == TICKETS + 1
    )


# Seeding ----------------------------------------------------------------------


def seed(agent, fingerprint):
    from django.db import connection, transaction
    from django.utils import timezone

    from bench.setup import empty_tables
    from channels_ingest.models import Channel
    from tickets.bulk_insert import insert_rows
    from tickets.models import Contact, Identity

    rng = random.Random(42)  # the same data set on every machine
    now = timezone.now()
    with transaction.atomic():
        empty_tables()
        channel = Channel.objects.create(
            kind="slack",
            name=CHANNEL_NAME,
            config={"conversations": [], "base_url": "http://127.0.0.1:9/api/"},
            secrets={"bot_token": "xoxb-x"},
        )
        names = [f"Employee {n:04d}" for n in range(CONTACTS)]
        contact_ids = insert_rows(
            Contact, [{"display_name": name, "email": f"employee{n}@example.com"} for n, name in enumerate(names)]
        )
        # Contact n writes as identity n: tickets and their messages use the same index.
        identity_ids = insert_rows(
            Identity,
            [
                {
                    "contact_id": contact_id,
                    "namespace": NAMESPACE,
                    "external_id": f"U{n:05d}",
                    "handle": f"employee{n}",
                    "display_name": names[n],
                }
                for n, contact_id in enumerate(contact_ids)
            ],
        )
        for first in range(0, TICKETS, BATCH):
            seed_tickets(range(first, min(first + BATCH, TICKETS)), channel, contact_ids, identity_ids, rng, now)
        seed_long_ticket(channel, contact_ids[0], identity_ids[0], agent, now)
    with connection.cursor() as cursor:
        # VACUUM as autovacuum would have by now: fresh statistics, and a visibility map for index-only scans.
        cursor.execute("VACUUM ANALYZE")
        cursor.execute(
            f"COMMENT ON DATABASE {connection.ops.quote_name(connection.settings_dict['NAME'])} IS %s", [fingerprint]
        )


def seed_tickets(numbers, channel, contact_ids, identity_ids, rng, now):
    """One batch of tickets, each with its Slack thread and 1–3 inbound messages from its requester."""
    from tickets.bulk_insert import insert_rows
    from tickets.models import Message, Ticket, TicketThread

    tickets, requesters, timelines = [], [], []
    for n in numbers:
        requester = rng.randrange(CONTACTS)
        count = rng.randint(1, 3)
        # The first message opens the ticket, the last one is its latest activity.
        last_activity = now - rng.random() * ACTIVITY_SPREAD
        created = last_activity - (rng.random() * timedelta(days=3) if count > 1 else timedelta(0))
        middle = [created + rng.random() * (last_activity - created)] if count == 3 else []
        message_times = [created, *middle, last_activity][:count]
        status = rng.choices(list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values()))[0]
        tickets.append(
            {
                "subject": f"{SUBJECTS[n % len(SUBJECTS)]} (#{n})",
                "status": status,
                "priority": rng.choices(list(PRIORITY_WEIGHTS), list(PRIORITY_WEIGHTS.values()))[0],
                "kind": rng.choices(list(KIND_WEIGHTS), list(KIND_WEIGHTS.values()))[0],
                "requester_id": contact_ids[requester],
                "channel_id": channel.pk,
                "created_at": created,
                "last_activity_at": last_activity,
                "resolved_at": last_activity if status in Ticket.CLOSED_STATUSES else None,
                "message_count": len(message_times),
            }
        )
        requesters.append(requester)
        timelines.append(message_times)
    ticket_ids = insert_rows(Ticket, tickets)
    keys = [f"{CONVERSATION}:{n}.000100" for n in numbers]
    thread_ids = insert_rows(
        TicketThread,
        [
            {"ticket_id": ticket_id, "channel_id": channel.pk, "key": key, "created_at": ticket["created_at"]}
            for ticket_id, key, ticket in zip(ticket_ids, keys, tickets, strict=True)
        ],
    )
    insert_rows(
        Message,
        [
            {
                "ticket_id": ticket_id,
                "thread_id": thread_id,
                "direction": Message.Direction.INBOUND,
                "author_identity_id": identity_ids[requester],
                "created_at": at,
                "body": f"{ticket['subject']}. Message {position + 1}: it started this morning, tried restarting, no luck.",
                # The first message's Slack ts is the thread's key; replies get their own.
                "external_id": key if position == 0 else f"{key}{position}",
            }
            for ticket_id, thread_id, key, ticket, requester, times in zip(
                ticket_ids, thread_ids, keys, tickets, requesters, timelines, strict=True
            )
            for position, at in enumerate(times)
        ],
    )


def seed_long_ticket(channel, contact_id, identity_id, agent, now):
    """One long-running ticket: the requester and an agent take turns; most replies sent, some failed or queued."""
    from tickets.bulk_insert import insert_rows
    from tickets.models import Message, Ticket, TicketThread

    created = now - timedelta(days=30)
    step = (now - created) / LONG_TICKET_MESSAGES
    [ticket_id] = insert_rows(
        Ticket,
        [
            {
                "subject": LONG_TICKET_SUBJECT,
                "status": Ticket.Status.OPEN,
                "priority": Ticket.Priority.HIGH,
                "requester_id": contact_id,
                "channel_id": channel.pk,
                "created_at": created,
                "last_activity_at": created + step * (LONG_TICKET_MESSAGES - 1),
                "message_count": LONG_TICKET_MESSAGES,
            }
        ],
    )
    key = f"{CONVERSATION}:long.000000"  # the first message's Slack ts; message n has ts long.<n>
    [thread_id] = insert_rows(
        TicketThread, [{"ticket_id": ticket_id, "channel_id": channel.pk, "key": key, "created_at": created}]
    )
    messages = []
    for n in range(LONG_TICKET_MESSAGES):
        at = created + step * n
        message = {
            "ticket_id": ticket_id,
            "thread_id": thread_id,
            "created_at": at,
            "body": f"Message {n + 1}: still disconnecting after the driver update, logs attached.",
        }
        if n % 5 < 3:
            message |= {
                "direction": Message.Direction.INBOUND,
                "author_identity_id": identity_id,
                "external_id": f"{CONVERSATION}:long.{n:06d}",
            }
        elif n >= LONG_TICKET_MESSAGES - 10:  # the newest replies are still on their way
            message |= {
                "direction": Message.Direction.OUTBOUND,
                "author_user_id": agent.pk,
                "delivery_status": Message.DeliveryStatus.QUEUED,
                "delivery_next_attempt_at": at,
            }
        elif n % 50 == 4:
            message |= {
                "direction": Message.Direction.OUTBOUND,
                "author_user_id": agent.pk,
                "delivery_status": Message.DeliveryStatus.FAILED,
                "delivery_attempts": 5,
                "delivery_error": "Slack error: channel_not_found",
            }
        else:
            message |= {
                "direction": Message.Direction.OUTBOUND,
                "author_user_id": agent.pk,
                "external_id": f"{CONVERSATION}:long.{n:06d}",
                "delivery_status": Message.DeliveryStatus.SENT,
                "delivery_attempts": 1,
                "delivered_at": at + timedelta(seconds=1),
            }
        messages.append(message)
    insert_rows(Message, messages)


# Measuring --------------------------------------------------------------------


def measure_pages(agent, normal_ticket, long_ticket, requests, warmup):
    from django.conf import settings
    from django.test import Client
    from django.urls import reverse

    from console.listing import PAGE_SIZE
    from tickets.models import Ticket

    # Production-like rendering. No setup_test_environment(): it instruments every template
    # render for the test client, which would bill the 500 message includes twice.
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(agent)

    queue = reverse("console:ticket-list")
    closed = Ticket.objects.filter(status=Ticket.Status.CLOSED).count()
    last_closed_page = closed // PAGE_SIZE + 1  # holds the remainder: fewer rows than a full page
    pages = {
        "console queue": queue,
        "console queue page 20": f"{queue}?page=20",
        "console queue status=all": f"{queue}?status=all",
        "console queue rows (the 5 s poll)": reverse("console:ticket-rows"),
        "console search 'vpn'": f"{queue}?q=vpn",
        "console search 'printer' + filters": f"{queue}?q=printer&priority=2&view=open",
        f"console ticket ({normal_ticket.message_count} msgs)": reverse(
            "console:ticket-detail", args=[normal_ticket.pk]
        ),
        "console ticket (500 msgs)": reverse("console:ticket-detail", args=[long_ticket.pk]),
        "api list": reverse("api:ticket-list"),
        "api detail (500 msgs)": reverse("api:ticket-detail", args=[long_ticket.pk]),
    }
    results = {}
    for name, url in pages.items():
        results[name] = measure(client, url, requests, warmup)
        report(name, results[name])
    # The shared view counts are cached across agents for CONSOLE_VIEW_COUNTS_TTL seconds, so most renders
    # reuse them; this is the render that recounts (once per TTL for the whole desk).
    results["console queue, counts recomputed"] = measure(client, queue, requests, warmup, cold_cache=True)
    report("console queue, counts recomputed", results["console queue, counts recomputed"])

    # The page size is a constant (listing.PAGE_SIZE), not a parameter, so a short page comes from data:
    # the last page of closed tickets. The same count at every length means no query per row.
    short = measure(client, f"{queue}?status=closed&page={last_closed_page}", requests=1, warmup=0)
    print(
        f"queue queries by rows: page 1 ({PAGE_SIZE} rows) {results['console queue']['queries']}, "
        f"page 20 ({PAGE_SIZE} rows) {results['console queue page 20']['queries']}, "
        f"closed page {last_closed_page} ({closed % PAGE_SIZE} rows) {short['queries']}"
    )
    return results


def report(name, result):
    print(
        f"{name}: p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms, {result['queries']} queries, "
        f"{result['bytes']:,} bytes",
        flush=True,
    )


def measure(client, url, requests, warmup, *, cold_cache=False):
    """Server time of ``url`` in ms (p50, p95), its query count and response size; ``cold_cache`` empties
    the cache before each request."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmup):
        client.get(url)
    timings, query_counts = [], set()
    for _ in range(requests):
        if cold_cache:
            cache.clear()
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, f"{url}: HTTP {response.status_code}"
        query_counts.add(len(queries))
    low, high = min(query_counts), max(query_counts)
    return {**summary(timings), "queries": low if low == high else f"{low}–{high}", "bytes": len(response.content)}


def verdict(result, target_ms):
    return "met" if result["p95"] < target_ms else "MISSED"


if __name__ == "__main__":
    main()
