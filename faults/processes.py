"""The helpdesk's own processes, as production runs them: a Celery worker, Celery beat and gunicorn.

Each runs in its own process group, so ``kill()`` takes its children with it (prefork pool, gunicorn workers),
as an OOM kill or a lost container would. Their output goes to a log file in the run's folder.

A process that exits on its own is started again by ``Supervisor``, as docker-compose's ``restart:
unless-stopped`` does in production, and the run says so: Celery's worker exits ("Unrecoverable error") when
kombu's Redis transport trips over its own closed connection while a Redis restart drops it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from .services import at_exit, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
#: Loopback calls must never go through an HTTP proxy from the environment.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class HelpdeskProcess:
    name = "process"

    def __init__(self, env: dict, folder: Path):
        self.env = env
        self.folder = folder
        self.process: subprocess.Popen | None = None
        self.starts = 0
        #: Set while the process is down on purpose (a fault killed it, or the run is over).
        self.held_down = False
        at_exit(self.stop)

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> HelpdeskProcess:
        self.starts += 1
        log = open(self.folder / f"{self.name}.log", "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(
            self.argv(),
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        # Only now: until the new process replaces the one a fault killed, the supervisor would take that one
        # for a process that exited on its own and start a second.
        self.held_down = False
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until the process serves; raises if it exits or takes longer than ``timeout``."""

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole process group: no shutdown, no acknowledgement, no cleanup."""
        self.held_down = True
        if self.alive:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        self.held_down = True
        if self.alive:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):  # children left behind by a killed parent
                os.killpg(self.process.pid, signal.SIGKILL)

    @property
    def exited_on_its_own(self) -> bool:
        return not self.held_down and self.process is not None and self.process.poll() is not None

    def last_error(self) -> str:
        """The last CRITICAL (else ERROR) log line of the process, which says why it exited."""
        try:
            lines = (self.folder / f"{self.name}.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        for level in ("CRITICAL/", "ERROR/", "[ERROR]"):
            found = next((line for line in reversed(lines) if level in line), "")
            if found:
                return found[:200]
        return ""

    def _check_alive(self) -> None:
        if not self.alive:
            raise RuntimeError(f"the {self.name} exited during start-up; see {self.folder / self.name}.log")


class Worker(HelpdeskProcess):
    name = "worker"

    def __init__(self, env, folder, celery_app, concurrency: int = 2):
        super().__init__(env, folder)
        self.celery_app = celery_app
        self.concurrency = concurrency
        self.node = ""

    def argv(self):
        self.node = f"faults-{uuid.uuid4().hex[:8]}"
        return [
            sys.executable, "-m", "celery", "-A", "helpdesk", "worker", "-l", "INFO", "-n", f"{self.node}@%h",
            "-c", str(self.concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip

    def answers(self, timeout: float = 2.0) -> bool:
        replies = self.celery_app.control.ping(timeout=timeout) or []
        return any(key.startswith(self.node + "@") for reply in replies for key in reply)

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if self.answers(timeout=0.5):
                return
        raise RuntimeError(f"the worker did not answer a ping within {timeout:.0f}s")


class Beat(HelpdeskProcess):
    name = "beat"

    def argv(self):
        return [
            sys.executable, "-m", "celery", "-A", "helpdesk", "beat", "-l", "INFO",
            "-s", str(self.folder / "celerybeat-schedule"),
        ]  # fmt: skip

    def wait_ready(self, timeout=60):
        time.sleep(1)  # beat answers nothing; it only has to stay up
        self._check_alive()


class Web(HelpdeskProcess):
    """gunicorn, as the Dockerfile runs the console and the webhooks."""

    name = "web"

    def __init__(self, env, folder, port: int):
        super().__init__(env, folder)
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self):
        return [
            sys.executable, "-m", "gunicorn", "helpdesk.wsgi", "-b", f"127.0.0.1:{self.port}",
            "--workers", "3", "--timeout", "30",
        ]  # fmt: skip

    def wait_ready(self, timeout=60):
        wait_for_port(self.port, timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with _direct.open(f"{self.url}/login/", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the web process did not serve /login/ within {timeout:.0f}s")


class Supervisor:
    """Starts again whichever process exits on its own while a scenario runs, and notes it."""

    INTERVAL = 0.5

    def __init__(self, processes: list[HelpdeskProcess], note):
        self.processes = processes
        self.note = note
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Supervisor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopped.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stopped.wait(self.INTERVAL):
            for process in self.processes:
                if process.exited_on_its_own:
                    code = process.process.returncode if process.process else None
                    self.note(
                        f"the {process.name} exited on its own (exit {code}: {process.last_error() or 'no error logged'});"
                        " restarted, as compose's restart policy would"
                    )
                    process.start()
