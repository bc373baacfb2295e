"""Reports benchmark: each report of the console's Reports page (tickets/reports.py), the whole page, and the
console queue, over N tickets (default 1,000,000) in their own PostgreSQL database.

The data set is a year of a desk: tickets spread evenly over 365 days, on four channels, in eight categories and
three teams, assigned to twenty agents, stored in the order they arrived; most have a first response and SLA due
times, nearly all older than two weeks are resolved or closed (a live desk's backlog is small; its history is not).
It is built with ``tickets.bulk_insert.insert_rows`` (one INSERT … UNNEST per batch) and kept for reruns: it is
built again only with ``--reseed``, with another ``--tickets``, or when ``DATA_SET_VERSION`` or a migration changed.

Prints p50 and p95 of each report over ``--runs`` runs (after a warm-up), for the last 30 days and the last 90 days,
then the page and the queue; ``--explain`` prints each report's query plans (EXPLAIN ANALYZE).

    make bench-reports                                  # or: python -m bench.reports --tickets 100000 --explain
"""

import argparse
import hashlib
import os
import random
import time
import warnings
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.setup import drop_stale_database, setup_django, summary

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/helpdesk_bench_reports"
TICKETS = 1_000_000
BATCH = 10_000
CONTACTS = 5_000
AGENTS = 20
CHANNELS = {"bench-slack": 45, "bench-email": 30, "bench-teams": 15, "bench-portal": 10}
CATEGORIES = ["Network", "Hardware", "Software", "Access", "Email", "Printing", "Phones", "Facilities"]
TEAMS = ["Service desk", "Network", "Workplace"]
KIND_WEIGHTS = {"incident": 60, "service_request": 35, "problem": 3, "change": 2}
RECENT_STATUS_WEIGHTS = {"new": 15, "open": 35, "pending": 15, "resolved": 20, "closed": 15}
HISTORY = timedelta(days=365)
RECENT = timedelta(days=14)
TARGET_MS = 300
QUEUE_TARGET_MS = 50
VIEWER_ZONE = "Europe/Berlin"  # reports bucket by the viewer's days: not UTC, to pay for the conversion


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=TICKETS)
    parser.add_argument("--reseed", action="store_true", help="build the data set again even if it is there")
    parser.add_argument("--runs", type=int, default=20, help="measured runs of each report")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each report's queries")
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    warnings.filterwarnings("ignore", message="No directory at")
    fingerprint = f"bench.reports {args.tickets} {data_set_digest()}"
    recreated = drop_stale_database(os.environ["DATABASE_URL"], fingerprint, force=args.reseed)
    setup_django()

    from django.db import connection

    print(f"database: {connection.settings_dict['NAME']}", flush=True)
    if recreated:
        started = time.perf_counter()
        seed(args.tickets, fingerprint)
        print(f"seeding: {args.tickets:,} tickets in {time.perf_counter() - started:.1f}s", flush=True)
    else:
        print(f"seeding: skipped, {args.tickets:,} tickets already there (--reseed forces it)", flush=True)
    measure_all(args)


#: Bump when the data set ``ticket_row`` builds changes: the database is built again.
DATA_SET_VERSION = 2


def data_set_digest():
    """Changes with the data set's version and with the schema (migrations are edited in place before merging)."""
    digest = hashlib.sha256(str(DATA_SET_VERSION).encode())
    for migration in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(migration.read_bytes())
    return digest.hexdigest()[:16]


# Building the data set --------------------------------------------------------------------------------------------


def seed(count, fingerprint):
    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction
    from django.utils import timezone

    from bench.setup import empty_tables
    from channels_ingest.models import Channel
    from tickets.bulk_insert import insert_rows
    from tickets.models import Category, Contact, Team
    from tickets.roles import AGENTS_GROUP

    rng = random.Random(13)  # the same data set on every machine
    now = timezone.now()
    with transaction.atomic():
        empty_tables()
        group = Group.objects.get_or_create(name=AGENTS_GROUP)[0]
        agents = []
        for n in range(AGENTS):
            user, _ = User.objects.get_or_create(
                username=f"bench-agent-{n:02d}", defaults={"first_name": "Agent", "last_name": f"{n:02d}"}
            )
            user.groups.add(group)
            agents.append(user.pk)
        channels = {
            Channel.objects.create(kind="locmem", name=name, config={"inbox": name}).pk: weight
            for name, weight in CHANNELS.items()
        }
        categories = [Category.objects.get_or_create(name=name)[0].pk for name in CATEGORIES]
        teams = [Team.objects.get_or_create(name=name)[0].pk for name in TEAMS]
        contacts = insert_rows(
            Contact, [{"display_name": f"Employee {n:04d}", "email": f"e{n}@example.com"} for n in range(CONTACTS)]
        )
        choices = {
            "channel": (list(channels), list(channels.values())),
            "kind": (list(KIND_WEIGHTS), list(KIND_WEIGHTS.values())),
            "status": (list(RECENT_STATUS_WEIGHTS), list(RECENT_STATUS_WEIGHTS.values())),
        }
        started = time.perf_counter()
        for first in range(0, count, BATCH):
            rows = [
                ticket_row(n, count, rng, now, choices, contacts, agents, categories, teams)
                for n in range(first, min(first + BATCH, count))
            ]
            insert_rows_ticket(rows)
            if (first // BATCH) % 10 == 9:
                done = first + len(rows)
                print(f"  {done:,} tickets, {time.perf_counter() - started:.0f}s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute(
            f"COMMENT ON DATABASE {connection.ops.quote_name(connection.settings_dict['NAME'])} IS %s", [fingerprint]
        )


def insert_rows_ticket(rows):
    from tickets.bulk_insert import insert_rows
    from tickets.models import Ticket

    insert_rows(Ticket, rows)


def ticket_row(n, count, rng, now, choices, contacts, agents, categories, teams):
    # Tickets are stored as they arrive: in the order of their creation, as in a live desk's table.
    created = now - HISTORY + HISTORY * ((n + rng.random()) / count)
    age = now - created
    if age > RECENT:
        status = "closed" if rng.random() < 0.97 else rng.choice(["open", "pending"])
    else:
        status = rng.choices(*choices["status"])[0]
    responded = created + timedelta(hours=rng.expovariate(1 / 2)) if status != "new" else None
    if responded and responded > now:
        responded = None
    resolved = None
    if status in ("resolved", "closed"):
        resolved = min(now, (responded or created) + timedelta(hours=rng.expovariate(1 / 24)))
    has_targets = rng.random() < 0.8
    return {
        "subject": f"Bench ticket {n}",
        "status": status,
        "kind": rng.choices(*choices["kind"])[0],
        "priority": rng.choice((1, 2, 2, 2, 3, 4)),
        "requester_id": contacts[n % len(contacts)],
        "channel_id": rng.choices(*choices["channel"])[0],
        "category_id": rng.choice(categories) if rng.random() < 0.8 else None,
        "team_id": rng.choice(teams) if rng.random() < 0.85 else None,
        "assignee_id": rng.choice(agents) if rng.random() < 0.9 else None,
        "created_at": created,
        "last_activity_at": resolved or responded or created,
        "first_responded_at": responded,
        "first_response_due_at": created + timedelta(hours=4) if has_targets else None,
        "resolved_at": resolved,
        "resolution_due_at": created + timedelta(hours=48) if has_targets else None,
        "message_count": 1,
    }


# Measuring --------------------------------------------------------------------------------------------------------


def measure_all(args):
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from tickets import reports
    from tickets.models import Ticket

    print(
        f"tickets: {Ticket.objects.count():,}, open {Ticket.objects.open().count():,}; viewer's zone {VIEWER_ZONE}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )
    results = {}
    with timezone.override(ZoneInfo(VIEWER_ZONE)):
        for days in (30, 90):
            period = reports.Period.last_days(days)
            runs = {
                f"volume by channel, {days} d": lambda p=period: reports.volume(p, "channel"),
                f"volume by team, {days} d": lambda p=period: reports.volume(p, "team"),
                f"times (median, p90), {days} d": lambda p=period: reports.times(p),
                f"SLA compliance, {days} d": lambda p=period: reports.sla_compliance(p),
                f"agent workload, {days} d": lambda p=period: reports.workload(p),
            }
            if days == 30:
                runs["backlog by age"] = reports.backlog
            for name, run in runs.items():
                with CaptureQueriesContext(connection) as queries:
                    run()
                results[name] = timed(run, args.runs, args.warmup) | {"queries": len(queries)}
                report(name, results[name])
                if args.explain:
                    explain(queries)

    from django.conf import settings
    from django.test import Client
    from django.urls import reverse

    from bench.console import measure

    settings.DEBUG = False
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(User.objects.get(username="bench-agent-00"))
    pages = {
        "reports page, 30 d (all five)": reverse("console:reports"),
        "reports page, 90 d (all five)": reverse("console:reports") + "?days=90",
        "reports CSV, volume 90 d": reverse("console:report-csv", args=["volume"]) + "?days=90",
        "console queue": reverse("console:ticket-list"),
    }
    for name, url in pages.items():
        results[name] = measure(client, url, args.runs, args.warmup)
        report(name, results[name])

    worst = max(
        (r for n, r in results.items() if not n.startswith(("reports page", "console"))), key=lambda r: r["p95"]
    )
    queue = results["console queue"]
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(
        f"targets: each report p95 ≤ {TARGET_MS} ms ({'met' if worst['p95'] <= TARGET_MS else 'MISSED'}, "
        f"worst {worst['p95']:.1f} ms), queue p95 ≤ {QUEUE_TARGET_MS} ms "
        f"({'met' if queue['p95'] <= QUEUE_TARGET_MS else 'MISSED'}, {queue['p95']:.1f} ms)"
    )


def timed(run, runs, warmup):
    for _ in range(warmup):
        run()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        timings.append((time.perf_counter() - started) * 1000)
    return summary(timings)


def report(name, result):
    print(f"{name}: p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms, {result['queries']} queries", flush=True)


def explain(queries):
    from django.db import connection

    with connection.cursor() as cursor:
        for query in queries:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
            print("    " + "\n    ".join(row[0] for row in cursor.fetchall()))


if __name__ == "__main__":
    main()
