"""Email ingest benchmark: mail sitting in a real Dovecot → ticket messages in PostgreSQL, through real Celery
workers polling the mailbox over IMAP (the email adapter, ``channels_ingest.polling``, store, ingest).

    python -m bench.ingest --platform email [--messages 5000] [--rounds 3] [--seeded-tickets 100000]

The corpus is the one django-helpdesk was measured on: ``../shared/bench/gen_eml.py`` (70% new conversations,
15% replies carrying the desk's subject tag, 15% replies threaded only by In-Reply-To; half with an HTML
alternative, 5% with a PDF attachment, 10% with a Cc, replies quoting the previous message). Its replies point
at earlier messages of the corpus itself (tags at tickets already opened by then), and, in the rounds with
tickets already in the database, half of them at those seeded tickets: their numbers and Message-IDs.

Each round delivers the corpus into an empty INBOX with IMAP MULTIAPPEND before the clock starts; the clock
runs from the poll task being sent until every message is a ticket message. Two sets of rounds: an empty
database, then ``--seeded-tickets`` email tickets seeded with bulk inserts (each with its thread and first
message, whose Message-ID replies can name).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

from bench.setup import empty_tables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN_EML = os.path.join(os.path.dirname(ROOT), "shared", "bench", "gen_eml.py")
SLUG = "it"  # gen_eml tags replies "[<slug>-<ticket id>]": the channel's tag template matches it
TAG_TEMPLATE = "[it-{number}]"
APPEND_CHUNK = 250
#: A tag names a ticket opened at least this many new conversations earlier, so it exists when the reply is
#: ingested (more than one ingest batch, INGEST_BATCH_SIZE, behind).
TAG_DISTANCE = 600
SEED_CONTACTS = 5_000
SEED_BATCH = 10_000
STALL_SECONDS = 60
STATUS_WEIGHTS = {"new": 20, "open": 35, "pending": 15, "resolved": 15, "closed": 15}


def run(args, start_worker, wait_for_workers, wait_until_idle):
    from helpdesk.celery import app
    from tests.mail_servers import Dovecot, SmtpCatcher

    gen_eml = _load(args.gen_eml)
    folder = tempfile.mkdtemp(prefix="helpdesk-bench-dovecot-")  # under /tmp: Dovecot's users must reach it
    dovecot = Dovecot(folder).start()
    smtp = SmtpCatcher().start()  # a channel's first poll checks its SMTP relay too
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's line per SMTP command
    workers = [start_worker(args.concurrency) for _ in range(args.workers)]
    medians = {}
    try:
        wait_for_workers(app, len(workers))
        for seeded in (0, args.seeded_tickets):
            rates = []
            for round_number in range(1, args.rounds + 1):
                result = _round(args, gen_eml, dovecot, smtp, app, seeded, seed=round_number)
                wait_until_idle(app)  # the next round empties the tables; nothing may still be writing
                rates.append(result["rate"])
                print(
                    f"round {round_number}, {seeded:,} tickets before: {args.messages} mails in "
                    f"{result['elapsed']:.2f}s = {result['rate']:.0f} msgs/s; {result['mix']}; "
                    f"{result['tickets']} tickets opened; delivered in {result['delivered']:.1f}s"
                    + (f", seeded in {result['seeding']:.1f}s" if seeded else ""),
                    flush=True,
                )
            medians[seeded] = statistics.median(rates)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait()
        dovecot.stop()
        smtp.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"workers: {args.workers} x concurrency {args.concurrency}; IMAP batch {args.imap_batch or 'default'}; "
        f"median of {args.rounds} rounds"
    )
    empty, full = medians[0], medians[args.seeded_tickets]
    print(
        f"ingest (email, {args.seeded_tickets:,} tickets before): {full:.0f} msgs/s "
        f"({(full - empty) / empty * 100:+.0f}% against an empty database)"
    )
    print(f"ingest (email): {empty:.0f} msgs/s")


def _load(path):
    spec = importlib.util.spec_from_file_location("gen_eml", path)
    if spec is None or spec.loader is None or not os.path.exists(path):
        raise SystemExit(f"The email corpus generator is not at {path} (--gen-eml).")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _round(args, gen_eml, dovecot, smtp, app, seeded, *, seed):
    from django.core.cache import cache

    from channels_ingest.channel_config import clean_channel_config
    from channels_ingest.models import Channel
    from tests.channel_adapters.email_mail import DESK, email_config
    from tickets.models import Message, Ticket

    empty_tables()
    cache.clear()
    dovecot.reset()
    config, secrets = clean_channel_config(
        "email",
        email_config(
            dovecot,
            smtp,
            tag_template=TAG_TEMPLATE,
            **({"batch_size": args.imap_batch} if args.imap_batch else {}),
        ),
    )
    channel = Channel.objects.create(
        kind="email", name="bench-email", config=config, secrets=secrets, poll_interval_seconds=0
    )
    started = time.perf_counter()
    targets = _seed_tickets(channel, seeded) if seeded else []
    seeding = time.perf_counter() - started
    before = Message.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    tickets_before = Ticket.objects.count()
    started = time.perf_counter()
    mails, mix = _corpus(gen_eml, args.messages, targets, desk=DESK, seed=seed)
    with dovecot.client(DESK) as imap:
        for start in range(0, len(mails), APPEND_CHUNK):
            imap.multiappend("INBOX", mails[start : start + APPEND_CHUNK])
    delivered = time.perf_counter() - started

    started = time.perf_counter()
    app.send_task("channels_ingest.poll_channel", args=[channel.pk])
    new = Message.objects.filter(pk__gt=before)
    stored, progressed = 0, time.monotonic()
    while stored < args.messages:
        time.sleep(0.02)
        count = new.count()
        if count > stored:
            stored, progressed = count, time.monotonic()
        elif time.monotonic() - progressed > STALL_SECONDS:
            channel.refresh_from_db()
            raise SystemExit(f"No progress for {STALL_SECONDS}s at {stored} messages: {channel.last_error or '?'}")
    elapsed = time.perf_counter() - started
    assert new.values("external_id").distinct().count() == args.messages
    return {
        "elapsed": elapsed,
        "rate": args.messages / elapsed,
        "mix": ", ".join(f"{count} {kind}" for kind, count in mix.items()),
        "tickets": Ticket.objects.count() - tickets_before,
        "delivered": delivered,
        "seeding": seeding,
    }


def _corpus(gen_eml, count, seeded_targets, *, desk, seed):
    """``count`` raw mails from gen_eml's ``make_message``, in gen_eml's mix; Dates one second apart, in order,
    as mail arrives. Replies name an earlier new conversation of the corpus (by its Message-ID, or by the
    number of a ticket opened well before), or, when there are seeded tickets, one of those half the time."""
    rng = random.Random(seed)
    base = datetime.now(UTC) - timedelta(seconds=count + 60)
    mails, opened = [], []
    mix = {"new": 0, "reply_tag": 0, "reply_irt": 0, "to seeded tickets": 0}
    for i in range(count):
        draw = rng.random()
        kind = "reply_tag" if draw < 0.15 else "reply_irt" if draw < 0.30 else "new"
        target = None
        if kind != "new" and seeded_targets and rng.random() < 0.5:
            target = rng.choice(seeded_targets)
            mix["to seeded tickets"] += 1
        elif kind == "reply_tag" and len(opened) > TAG_DISTANCE:
            # Every new conversation opens a ticket, numbered from 1 on an empty database, in arrival order
            # (tag replies that open their own ticket only push the numbers up, so the ticket exists).
            number = rng.randrange(len(opened) - TAG_DISTANCE) + 1 + len(seeded_targets)
            target = {"id": number, "subject": opened[number - 1 - len(seeded_targets)]["subject"]}
        elif kind != "new" and opened:
            kind = "reply_irt"
            target = rng.choice(opened)
        else:
            kind = "new"
        message = gen_eml.make_message(
            rng, i, desk, kind, None if target is None else {**target, "slug": SLUG}, when=base
        )
        del message["Date"]
        message["Date"] = gen_eml.format_datetime(base + timedelta(seconds=i))
        if kind == "new":
            opened.append({"message_id": message["Message-ID"], "subject": str(message["Subject"])})
        mix[kind] += 1
        mails.append(bytes(message))
    return mails, mix


def _seed_tickets(channel, count):
    """``count`` email tickets, each with its thread and first message (keyed by a Message-ID, as the email
    adapter keys them), from ``SEED_CONTACTS`` people; returns them as reply targets (gen_eml's shape)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from tickets.bulk_insert import insert_rows
    from tickets.models import Contact, Identity, Message, Ticket, TicketThread

    rng = random.Random(11)
    now = timezone.now()
    targets = []
    with transaction.atomic():
        addresses = [f"customer{n}@customer.example" for n in range(SEED_CONTACTS)]
        contact_ids = insert_rows(
            Contact, [{"display_name": f"Customer {n}", "email": address} for n, address in enumerate(addresses)]
        )
        identity_ids = insert_rows(
            Identity,
            [
                {
                    "contact_id": contact_id,
                    "namespace": "email",
                    "external_id": address,
                    "display_name": f"Customer {n}",
                    "email": address,
                }
                for n, (contact_id, address) in enumerate(zip(contact_ids, addresses, strict=True))
            ],
        )
        for first in range(0, count, SEED_BATCH):
            numbers = range(first, min(first + SEED_BATCH, count))
            people = [rng.randrange(SEED_CONTACTS) for _ in numbers]
            statuses = rng.choices(list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values()), k=len(numbers))
            times = [now - timedelta(days=90) * rng.random() for _ in numbers]
            subjects = [f"Seeded request {n}: VPN drops" for n in numbers]
            ticket_ids = insert_rows(
                Ticket,
                [
                    {
                        "subject": subject,
                        "status": status,
                        "requester_id": contact_ids[person],
                        "channel_id": channel.pk,
                        "created_at": at,
                        "last_activity_at": at,
                        "resolved_at": at if status in Ticket.CLOSED_STATUSES else None,
                        "message_count": 1,
                    }
                    for subject, status, person, at in zip(subjects, statuses, people, times, strict=True)
                ],
            )
            keys = [f"seed-{n}@customer.example" for n in numbers]
            thread_ids = insert_rows(
                TicketThread,
                [
                    {"ticket_id": ticket_id, "channel_id": channel.pk, "key": key, "created_at": at}
                    for ticket_id, key, at in zip(ticket_ids, keys, times, strict=True)
                ],
            )
            insert_rows(
                Message,
                [
                    {
                        "ticket_id": ticket_id,
                        "thread_id": thread_id,
                        "direction": Message.Direction.INBOUND,
                        "author_identity_id": identity_ids[person],
                        "created_at": at,
                        "body": f"{subject}. It started this morning; restarting did not help.",
                        "external_id": key,
                    }
                    for ticket_id, thread_id, key, subject, person, at in zip(
                        ticket_ids, thread_ids, keys, subjects, people, times, strict=True
                    )
                ],
            )
            targets += [
                {"id": ticket_id, "message_id": f"<{key}>", "subject": subject}
                for ticket_id, key, subject in zip(ticket_ids, keys, subjects, strict=True)
            ]
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # as autovacuum would have by now: statistics for the planner
        cursor.execute("CHECKPOINT")  # the seed's writes flushed now, not during the measured round
    return targets
