"""Write marks: where a write to the timeline sits in commit order, so that a live page misses none.

Ids are handed out at INSERT but become visible at COMMIT, so "ids after the newest one shown" skips a row
whose transaction commits after a later id was read. A write mark orders writes the way they can become
visible instead, and ``SettledMark`` says up to where that can no longer change:

- PostgreSQL: the writing transaction's id (``pg_current_xact_id()``). Every transaction with an id below
  the ``xmin`` of a statement's snapshot had finished when the statement ran, so each row marked below it
  was either read by that statement or will never appear.
- SQLite: the database clock (milliseconds, as microseconds) when the row was written. SQLite lets one writer
  in at a time and a write takes the clock after getting in, so a row can only appear with a mark at or
  above the newest one a reader saw (``SettledMark`` is then unknown: callers take the marks they read).

Marks never go down for a row: a later change of a row takes the current mark, or one above the row's
last, so every version of a row has a mark of its own (even two changes in one transaction).
"""

from django.db import models
from django.db.models.functions import Greatest

#: SQLite: milliseconds since 1970 from the database clock, scaled to microseconds (julianday is in days).
SQLITE_NOW = "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)"


class WriteMark(models.Func):
    """The mark of the write this expression is part of (an INSERT's default, an UPDATE's value)."""

    output_field = models.BigIntegerField()
    template = SQLITE_NOW

    def as_postgresql(self, compiler, connection, **extra):
        return "pg_current_xact_id()::text::bigint", []


class SettledMark(models.Func):
    """Every write marked below this had committed (or failed) when the statement ran; NULL where unknown."""

    output_field = models.BigIntegerField()
    template = "NULL"

    def as_postgresql(self, compiler, connection, **extra):
        return "pg_snapshot_xmin(pg_current_snapshot())::text::bigint", []


def next_mark(field="changed_mark"):
    """The value for a changed row's mark: this write's, and above the row's previous one."""
    return Greatest(WriteMark(), models.F(field) + 1)
