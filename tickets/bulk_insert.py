"""Insert many rows without building model instances: the ingest hot path.

Django's ``bulk_create`` spends most of its time preparing each field of each
instance in Python; at thousands of messages per second that, not the
database, is the limit. On PostgreSQL this sends one ``INSERT … SELECT FROM
UNNEST(arrays) RETURNING id`` (Django's own bulk_create uses the same SQL, and
relies on the same returned order). Other databases get ``bulk_create``.

``insert_new_rows`` skips the rows a unique constraint already holds and returns
the ids of those it inserted, from the INSERT itself (``ON CONFLICT DO NOTHING
RETURNING``: PostgreSQL, and SQLite since 3.35). A check before the insert
could not say that: a concurrent insert can land between the two.
"""

from django.db import connection


def insert_rows(model, rows: list[dict]) -> list[int]:
    """Insert ``rows`` (attname → value; missing fields take their defaults) and return the new ids in order.

    Fields with a database default are left to the database (they are not given in ``rows``).
    """
    if not rows:
        return []
    if connection.vendor != "postgresql":
        return [obj.pk for obj in model.objects.bulk_create([model(**row) for row in rows])]
    return _insert_unnest(model, rows)


def insert_new_rows(model, rows: list[dict]) -> list[int]:
    """Insert those of ``rows`` that conflict with no unique constraint; returns the ids inserted (in no
    particular order). Rows another transaction is inserting at the same time are waited for, then skipped."""
    if not rows:
        return []
    if connection.vendor == "postgresql":
        return _insert_unnest(model, rows, skip_conflicts=True)
    fields = _fields(model)
    inserted = []
    batch = connection.ops.bulk_batch_size(fields, rows) or len(rows)
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        params = [field.get_db_prep_save(_value(row, field), connection) for row in chunk for field in fields]
        with connection.cursor() as cursor:
            cursor.execute(_insert_sql(model, fields, values_rows=len(chunk), skip_conflicts=True), params)
            inserted += [row[0] for row in cursor.fetchall()]
    return inserted


def _fields(model):
    return [f for f in model._meta.concrete_fields if not f.primary_key and not f.has_db_default()]


def _value(row, field):
    return row[field.attname] if field.attname in row else field.get_default()


def _insert_unnest(model, rows, *, skip_conflicts=False):
    fields = _fields(model)
    columns = [[_value(row, f) for row in rows] for f in fields]
    for index, field in enumerate(fields):
        if field.get_internal_type() == "JSONField":  # the only type here psycopg cannot adapt as it is
            columns[index] = [field.get_db_prep_save(value, connection) for value in columns[index]]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(model, fields, skip_conflicts=skip_conflicts), columns)
        return [row[0] for row in cursor.fetchall()]


def _insert_sql(model, fields, *, values_rows=0, skip_conflicts=False):
    """The INSERT of ``values_rows`` rows of VALUES, or else of one UNNEST-ed array per column."""
    # Only identifiers from the model's own metadata (quoted) go into the text; every value is a parameter.
    if values_rows:
        one_row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        source = "VALUES " + ", ".join([one_row] * values_rows)
    else:
        arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
        source = f"SELECT * FROM UNNEST({arrays})"  # noqa: S608
    quote = connection.ops.quote_name
    return "INSERT INTO {table} ({columns}) {source}{conflict} RETURNING {pk}".format(
        table=quote(model._meta.db_table),
        columns=", ".join(quote(f.column) for f in fields),
        source=source,
        conflict=" ON CONFLICT DO NOTHING" if skip_conflicts else "",
        pk=quote(model._meta.pk.column),
    )
