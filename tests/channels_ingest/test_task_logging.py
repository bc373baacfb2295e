"""The terminal stays readable: the sweep and the polls, queued every few seconds, log at INFO only when they
did something; celery's own lines about them (beat's "Sending due task", the worker's "received" and
"succeeded") are at DEBUG, through the LOGGING settings."""

import logging
from datetime import timedelta

import pytest
from celery.app import trace
from django.utils import timezone

from channel_adapters import locmem
from channels_ingest import polling, sweep
from channels_ingest.queueing import TaskName
from tests.factories import message
from tickets.models import Message


def lines_at(level, caplog, logger):
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno == level]


def info_lines(caplog, logger):
    return lines_at(logging.INFO, caplog, logger)


def debug_lines(caplog, logger):
    return lines_at(logging.DEBUG, caplog, logger)


def celery_lines(task_name):
    """What beat and the worker log for one run of a task, through their own loggers."""
    context = {"id": "abc", "name": task_name, "args": "()", "kwargs": "{}", "eta": None}
    logging.getLogger("celery.beat").info("Scheduler: Sending due task %s (%s)", "entry", task_name)
    logging.getLogger("celery.worker.strategy").info(trace.LOG_RECEIVED, context, extra={"data": context})
    trace.info(trace.LOG_SUCCESS, {**context, "runtime": 0.01, "return_value": None})
    trace.logger.error(trace.LOG_FAILURE, {**context, "description": "raised", "exc": "boom"})


CELERY_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace")


@pytest.mark.parametrize("routine", [TaskName.SWEEP, TaskName.POLL])
def test_celery_lines_about_the_sweep_and_polls_are_debug(caplog, routine):
    caplog.set_level(logging.INFO)
    celery_lines(routine)
    celery_lines(TaskName.INGEST)
    for name in CELERY_LOGGERS:
        assert not [line for line in info_lines(caplog, name) if routine in line], name
        assert [line for line in info_lines(caplog, name) if TaskName.INGEST in line], name
    # A failure of a routine task is still said at its own level.
    assert f"Task {routine}[abc] raised: boom" in lines_at(logging.ERROR, caplog, "celery.app.trace")


def test_celery_lines_about_routine_tasks_show_when_debug_is_on(caplog):
    caplog.set_level(logging.DEBUG)
    celery_lines(TaskName.SWEEP)
    assert debug_lines(caplog, "celery.beat") == ["Scheduler: Sending due task entry (channels_ingest.sweep)"]
    assert debug_lines(caplog, "celery.worker.strategy") == ["Task channels_ingest.sweep[abc] received"]
    assert len(debug_lines(caplog, "celery.app.trace")) == 1


@pytest.mark.django_db
def test_a_sweep_with_nothing_to_recover_logs_at_debug(caplog, locmem_channel):
    caplog.set_level(logging.INFO)
    sweep.sweep()
    assert info_lines(caplog, "channels_ingest.sweep") == []


@pytest.mark.django_db
def test_a_sweep_that_recovers_work_says_so_at_info(caplog, queued_reply):
    Message.objects.filter(pk=queued_reply.pk).update(delivery_next_attempt_at=timezone.now() - timedelta(minutes=5))
    caplog.set_level(logging.INFO)
    sweep.sweep()
    assert info_lines(caplog, "channels_ingest.sweep") == ["sweep: polls 1, redeliveries 1"]


@pytest.mark.django_db
def test_a_poll_logs_at_info_only_when_it_found_something(caplog, locmem_channel):
    caplog.set_level(logging.INFO)
    locmem.inbox["lm"] = []
    assert polling.poll_channel(locmem_channel.pk).stored == 0
    assert info_lines(caplog, "channels_ingest.polling") == []
    locmem.inbox["lm"] = [message("a"), message("b")]
    assert polling.poll_channel(locmem_channel.pk).stored == 2
    assert info_lines(caplog, "channels_ingest.polling") == ["channel lm: polled, 2 new"]
