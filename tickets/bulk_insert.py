"""Insert many rows without building model instances: the ingest hot path.

Django's ``bulk_create`` spends most of its time preparing each field of each
instance in Python; at thousands of messages per second that, not the
database, is the limit. On PostgreSQL this sends one ``INSERT … SELECT FROM
UNNEST(arrays) RETURNING id`` (Django's own bulk_create uses the same SQL, and
relies on the same returned order). Other databases get ``bulk_create``.
"""

from django.db import connection


def insert_rows(model, rows: list[dict]) -> list[int]:
    """Insert ``rows`` (attname → value; missing fields take their defaults) and return the new ids in order.

    Fields with a database default are left to the database (they are not given in ``rows``).
    """
    if not rows:
        return []
    fields = [f for f in model._meta.concrete_fields if not f.primary_key and not f.has_db_default()]
    if connection.vendor != "postgresql":
        return [obj.pk for obj in model.objects.bulk_create([model(**row) for row in rows])]
    columns = [[row[f.attname] if f.attname in row else f.get_default() for row in rows] for f in fields]
    for index, field in enumerate(fields):
        if field.get_internal_type() == "JSONField":  # the only type here psycopg cannot adapt as it is
            columns[index] = [field.get_db_prep_save(value, connection) for value in columns[index]]
    quote = connection.ops.quote_name
    # Only identifiers from the model's own metadata (quoted) go into the text; every value is a parameter.
    sql = "INSERT INTO {table} ({columns}) SELECT * FROM UNNEST({arrays}) RETURNING {pk}".format(  # noqa: S608
        table=quote(model._meta.db_table),
        columns=", ".join(quote(f.column) for f in fields),
        arrays=", ".join(f"%s::{f.db_type(connection)}[]" for f in fields),
        pk=quote(model._meta.pk.column),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, columns)
        return [row[0] for row in cursor.fetchall()]
