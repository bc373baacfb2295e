"""Shared set-up for benchmarks: a dedicated PostgreSQL database, migrated and emptied."""

import os
import statistics
import sys

import django
import psycopg


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Benchmarks run on PostgreSQL: set DATABASE_URL (see `make bench`).")
    _create_database(url)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _create_database(url):
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def empty_tables():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE tickets_message, tickets_ticketthread, tickets_ticket, tickets_identity, tickets_contact, "
            "channels_ingest_inboundmessage, channels_ingest_channel RESTART IDENTITY CASCADE"
        )


def percentile(samples, pct):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def summary(samples):
    return {
        "p50": statistics.median(samples),
        "p95": percentile(samples, 95),
    }


def drop_stale_database(url, fingerprint, *, force):
    """Drop a kept benchmark database unless it holds this data set (its comment says which, ``fingerprint``)
    and ``force`` is off; True if the data set must be built (again)."""
    if not url.startswith("postgres"):
        return True  # setup_django() refuses it, and says why
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if row is None:
            return True
        if row[0] == fingerprint and not force:
            return False
        if "bench" not in name:  # DATABASE_URL may still point at a developer's own database
            sys.exit(f"Refusing to drop database {name!r}: benchmark databases have 'bench' in their name.")
        print(f"dropping database {name} to build it again", flush=True)
        conn.execute(f'DROP DATABASE "{name}"')
    return True
