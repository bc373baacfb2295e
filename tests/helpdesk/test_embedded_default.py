"""The embedded default (SQLite, kombu's filesystem broker, no services) runs its commands without noise."""

from tests.helpdesk.test_settings import SERVICES, run_python

#: kombu's words when a broker URL names no host ("filesystem://"): it falls back to "localhost" and says so,
#: in every process that touches the broker (the web server queueing a task, the worker, beat, the watcher).
NO_HOSTNAME = "No hostname was supplied"


def test_commands_on_the_embedded_default_print_no_hostname_warning(tmp_path):
    """The default broker URL names kombu's own default host, so queueing a task (what the console does on a
    reply) and `manage.py check` say nothing about it."""
    for folder in ("broker/queue", "broker/control", "cache"):
        (tmp_path / "var" / folder).mkdir(parents=True)
    queued = run_python(
        ["manage.py", "shell", "-c", "from channels_ingest.tasks import run_sweep; run_sweep.delay()"],
        tmp_path,
        without=SERVICES,
        DJANGO_DEBUG="1",
    )
    assert queued.returncode == 0, queued.stderr
    assert list((tmp_path / "var" / "broker" / "queue").iterdir()), "the task was not queued on the filesystem"
    checked = run_python(["manage.py", "check"], tmp_path, without=SERVICES, DJANGO_DEBUG="1")
    assert checked.returncode == 0, checked.stderr
    for result in (queued, checked):
        assert NO_HOSTNAME not in result.stdout + result.stderr
