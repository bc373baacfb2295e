"""Reusable ticket queries."""

import re

import pytest
from django.db import connection

from tickets.models import Message


@pytest.mark.postgres  # the full-text GIN indexes exist on PostgreSQL only
def test_search_indexes_exist(db):
    """Migration 0003 built the GIN indexes that ticket search uses on PostgreSQL."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%USING gin%to_tsvector%'")
        names = {row[0] for row in cursor.fetchall()}
    assert {"ticket_subject_fts", "message_body_fts", "contact_name_fts", "identity_name_fts"} <= names


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_long_list_of_platform_ids_is_looked_up_through_the_index():
    """PostgreSQL proves an IN list lies inside a partial index only up to 100 items: an ingest batch's 500 ids
    must still be served by an index on ``external_id``, not by a scan of every message."""
    ids = [f"<id{n}@example.com>" for n in range(500)]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = Message.objects.with_external_ids(ids).values("id").query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan
    assert re.search(r"Index (Only )?Scan on message_(unique_)?external_id", plan), plan
