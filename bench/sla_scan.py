"""SLA scan benchmark: the periodic scan (``tickets.sla.scan``) over a large ticket table.

Builds N tickets (default 1,000,000) in its own PostgreSQL database with one INSERT … SELECT over
generate_series (seconds, not minutes): 60 % open under a 24/7 policy, their next SLA check spread over the
next 30 days, the rest resolved or pending. Then runs the scan as beat would, every 30 s of simulated time
(each run records the few warnings and breaches that fell due in its window), and reports p50/p95 per run
and the queries per run. The scan reads through the ``ticket_sla_next_check`` partial index, so its cost
follows what is due, not the number of tickets.

    python -m bench.sla_scan                    # 1,000,000 tickets; last line "sla_scan: p95 <x> ms …"
    python -m bench.sla_scan --tickets 100000 --runs 200
"""

import argparse
import os
import time
from datetime import UTC, datetime, timedelta

from bench.setup import setup_django, summary

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/helpdesk_bench_sla"
TARGET_MS = 100
START = datetime(2026, 3, 2, 8, tzinfo=UTC)
SPREAD = timedelta(days=30)


def build(count):
    from django.db import connection

    from tickets.models import Calendar, Contact, SlaPolicy

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tickets_ticket, tickets_contact RESTART IDENTITY CASCADE")
    SlaPolicy.objects.all().delete()
    Calendar.objects.all().delete()
    always = Calendar.objects.create(name="24/7", always_open=True)
    policy = SlaPolicy.objects.create(
        name="Bench", first_response_minutes=60, resolution_minutes=30 * 24 * 60, calendar=always
    )
    contact = Contact.objects.create(display_name="Bench requester")
    spread = int(SPREAD.total_seconds())
    with connection.cursor() as cursor:
        # Open tickets (n % 10 < 6) get a clock whose next check falls somewhere in the next 30 days; the rest
        # are resolved (no check) or pending (paused: the scan's partial index leaves them out).
        cursor.execute(
            """
            INSERT INTO tickets_ticket (subject, status, priority, kind, requester_id, impact, urgency,
                created_at, last_activity_at, message_count, sla_policy_id, first_responded_at,
                first_response_due_at, resolution_due_at, sla_next_check_at, resolved_at)
            SELECT 'Bench ticket ' || n,
                CASE WHEN n % 10 < 6 THEN 'open' WHEN n % 10 < 8 THEN 'resolved' ELSE 'pending' END,
                2, 'incident', %(contact)s, 2, 2, %(start)s, %(start)s, 1, %(policy)s, %(start)s,
                %(start)s + interval '1 hour',
                %(start)s + (n::bigint * 7919 %% %(spread)s) * interval '1 second',
                CASE WHEN n % 10 < 8 THEN %(start)s + (n::bigint * 7919 %% %(spread)s) * interval '1 second' END,
                CASE WHEN n % 10 BETWEEN 6 AND 7 THEN %(start)s END
            FROM generate_series(1, %(count)s) AS n
            """.replace("n % 10", "n %% 10"),
            {"contact": contact.pk, "start": START, "policy": policy.pk, "spread": spread, "count": count},
        )
        cursor.execute("ANALYZE tickets_ticket")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200, help="scan runs, one per 30 s of simulated time")
    parser.add_argument("--keep", action="store_true", help="reuse the tickets of the last build")
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    setup_django()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tickets import sla
    from tickets.models import Ticket

    if not args.keep:
        began = time.perf_counter()
        build(args.tickets)
        print(f"built {args.tickets:,} tickets in {time.perf_counter() - began:.1f} s")
    total = Ticket.objects.count()
    # Every 30 s of simulated time from the start, as beat would run it.
    now = START
    samples, queries, found = [], [], 0
    for _ in range(args.runs):
        now += timedelta(seconds=30)
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            result = sla.scan(now)
            samples.append((time.perf_counter() - began) * 1000)
        queries.append(len(captured))
        found += result.checked
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN SELECT id FROM tickets_ticket WHERE status IN ('new', 'open') AND sla_next_check_at <= %s "
            "ORDER BY sla_next_check_at LIMIT 500",
            [now],
        )
        plan = " / ".join(row[0].strip() for row in cursor.fetchall())
    stats = summary(samples)
    print(f"plan: {plan}")
    print(
        f"{args.runs} runs, {found} tickets checked ({found / args.runs:.1f} a run), queries a run: max {max(queries)}"
    )
    verdict = "ok" if stats["p95"] <= TARGET_MS else f"over the {TARGET_MS} ms target"
    print(
        f"sla_scan: {total:,} tickets, p50 {stats['p50']:.1f} ms, p95 {stats['p95']:.1f} ms per run "
        f"(target ≤ {TARGET_MS} ms: {verdict})"
    )


if __name__ == "__main__":
    main()
