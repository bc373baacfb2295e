"""Reusable ticket queries."""

import pytest
from django.db import connection


@pytest.mark.postgres  # the full-text GIN indexes exist on PostgreSQL only
def test_search_indexes_exist(db):
    """Migration 0003 built the GIN indexes that ticket search uses on PostgreSQL."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%USING gin%to_tsvector%'")
        names = {row[0] for row in cursor.fetchall()}
    assert {"ticket_subject_fts", "message_body_fts", "contact_name_fts", "identity_name_fts"} <= names
