"""Celery's lines about the pipeline's routine tasks, at DEBUG: beat queues the sweep every 5 seconds and the
sweep queues each channel's poll, so their "Sending due task", "received" and "succeeded" lines would fill
the terminal while nothing happens. The tasks say themselves, at INFO, when they did something
(``sweep.sweep``, ``polling.poll_channel``); a failure keeps its own level (only INFO lines are lowered).

``helpdesk.settings.LOGGING`` puts ``RoutineTaskLines`` on the three loggers that write those lines: beat's
(``celery.beat``), the worker's "received" (``celery.worker.strategy``) and "succeeded" (``celery.app.trace``).
"""

import logging

from .queueing import TaskName

#: Tasks queued on a timer whether or not there is anything to do.
ROUTINE_TASKS = frozenset({TaskName.SWEEP, TaskName.POLL})


def _task_name(record: logging.LogRecord) -> str | None:
    data = getattr(record, "data", None)  # the worker passes the task's context as extra={"data": ...}
    if isinstance(data, dict):
        return data.get("name")
    if record.name == "celery.beat" and isinstance(record.args, tuple) and len(record.args) == 2:
        return str(record.args[1])  # "Scheduler: Sending due task %s (%s)": the entry, then the task
    return None


class RoutineTaskLines(logging.Filter):
    """Lower celery's INFO lines about a routine task to DEBUG (kept only where DEBUG is enabled)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or _task_name(record) not in ROUTINE_TASKS:
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
