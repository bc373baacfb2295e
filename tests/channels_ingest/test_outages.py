"""Outage or bad input: the rule that decides between waiting (retry, sweep) and failing one item."""

import kombu
import pytest
import redis.exceptions
from django.core.cache import cache
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
    ProgrammingError,
    connections,
)

from channel_adapters.base import InvalidWebhook, PermanentError
from channels_ingest.outages import is_outage


def raised_by(action):
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - whatever it raises is what the test looks at
        return exc
    pytest.fail("nothing was raised")


def test_a_dead_cache_is_an_outage(dead_cache):
    assert is_outage(raised_by(lambda: cache.get_many(["sender-name:x"])))


@pytest.mark.django_db
def test_a_database_that_does_not_answer_is_an_outage(tmp_path):
    default = connections["default"]
    if default.vendor == "postgresql":
        settings = {**default.settings_dict, "PORT": 1}
    else:
        settings = {**default.settings_dict, "NAME": str(tmp_path / "missing" / "db.sqlite3")}
    dead = type(default)(settings, alias="dead")
    error = raised_by(dead.ensure_connection)
    assert isinstance(error, OperationalError)
    assert is_outage(error)


def test_a_broker_that_does_not_answer_is_an_outage():
    broker = kombu.Connection("redis://127.0.0.1:1/0", connect_timeout=1)
    assert is_outage(raised_by(lambda: broker.ensure_connection(max_retries=1, interval_start=0)))


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("server closed the connection unexpectedly"),
        InterfaceError("connection already closed"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
        ConnectionResetError(104, "Connection reset by peer"),
        OSError(28, "No space left on device"),  # the file cache of the embedded mode
    ],
)
def test_infrastructure_errors_are_outages(error):
    assert is_outage(error)


@pytest.mark.parametrize(
    "error",
    [
        KeyError("text"),
        ValueError("Invalid isoformat string"),
        PermanentError("channel_not_found"),
        InvalidWebhook("Malformed body", status=400),
        DataError("bigint out of range"),
        IntegrityError("duplicate key value violates unique constraint"),
        # Bugs or damage that may depend on one row: failing that row keeps the channel's other rows flowing.
        ProgrammingError("can't adapt type"),
        InternalError("current transaction is aborted, commands ignored until end of transaction block"),
        DatabaseError("Save with update_fields did not affect any rows."),
    ],
)
def test_errors_about_the_data_are_not_outages(error):
    assert not is_outage(error)


def test_an_error_raised_from_an_outage_is_an_outage():
    def stop():
        try:
            raise OperationalError("the database system is shutting down")
        except OperationalError as cause:
            raise RuntimeError("ingest stopped") from cause

    assert is_outage(raised_by(stop))
