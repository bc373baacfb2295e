"""GIN indexes for the console's ticket search (PostgreSQL full-text search).

Kept out of the models' ``Meta.indexes`` on purpose: the full-text GIN indexes exist on PostgreSQL only
(SQLite falls back to ``icontains`` scans), so they are created here, guarded by the connection's vendor.
The expressions must match what ``TicketQuerySet.search`` generates (``SearchVector(..., config="simple")``)
exactly, or the planner will not use them.
"""

from django.db import migrations

# (name, table, indexed expression)
GIN_INDEXES = [
    ("ticket_subject_fts", "tickets_ticket", """to_tsvector('simple'::regconfig, COALESCE("subject", ''))"""),
    ("message_body_fts", "tickets_message", """to_tsvector('simple'::regconfig, COALESCE("body", ''))"""),
    ("contact_name_fts", "tickets_contact", """to_tsvector('simple'::regconfig, COALESCE("display_name", ''))"""),
    (
        "identity_name_fts",
        "tickets_identity",
        """to_tsvector('simple'::regconfig, COALESCE("handle", '') || ' ' || COALESCE("display_name", ''))""",
    ),
]


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table, expression in GIN_INDEXES:
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" USING gin (({expression}))')


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _, _ in GIN_INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0002_ticketevent"),
    ]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
