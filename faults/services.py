"""Throwaway services for one run of the suite: a PostgreSQL cluster and a redis-server, each on a free port
and in a temporary folder, never the machine's own. Everything started here is stopped at exit (``cleanups``),
also on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

_cleanups: list[Callable[[], None]] = []


def at_exit(cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` when the run ends, however it ends; the last registered runs first."""
    _cleanups.append(cleanup)


def run_cleanups() -> None:
    while _cleanups:
        cleanup = _cleanups.pop()
        try:
            cleanup()
        except Exception as exc:  # noqa: BLE001 - one failed cleanup must not leave the others' processes behind
            print(f"[faults] cleanup failed: {exc}", file=sys.stderr)


def _on_signal(signum, frame):
    run_cleanups()
    sys.exit(128 + signum)


atexit.register(run_cleanups)


def stop_everything_on_signals() -> None:
    """SIGTERM, Ctrl-C or a closed terminal stop what the run started, as a normal exit does."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _on_signal)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float, up: bool = True) -> None:
    """Wait until something listens on the port (or, with ``up=False``, nothing does)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            listening = probe.connect_ex(("127.0.0.1", port)) == 0
        if listening == up:
            return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} is still {'closed' if up else 'open'} after {timeout:.0f}s")


def find_program(name: str) -> str | None:
    """A program on PATH, or PostgreSQL's in Debian's versioned folder (where apt's postgresql puts it)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda path: int(path.split("/")[4]))
    return candidates[-1] if candidates else None


def missing_programs() -> list[str]:
    return [name for name in ("redis-server", "initdb", "pg_ctl") if find_program(name) is None]


class Redis:
    """A redis-server with an append-only file, so a restart keeps the broker's queue (as a production Redis
    with persistence does); the restart scenario stops it cleanly and starts it again on the same port."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        at_exit(self.stop)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                find_program("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                str(self.folder),
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port, 20)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class Postgres:
    """A PostgreSQL cluster made with initdb in a temporary folder (trust auth), removed with it at exit."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        # PostgreSQL refuses to run as root: then the cluster belongs to the postgres user.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self._started = False

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/helpdesk_faults"

    def create(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            user = pwd.getpwnam("postgres")
            os.chmod(self.folder.parent, 0o755)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self._run(
            find_program("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"
        )
        at_exit(self.stop)

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c max_connections=200 "
            "-c fsync=off -c full_page_writes=off"
        )
        self._run(
            find_program("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "postgres.log"),
            "-o",
            options,
            "-w",
            "start",
        )
        self._started = True

    def crash(self) -> None:
        """Stop at once, as a crash would: no checkpoint, every connection cut; the next start recovers."""
        self._run(find_program("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self._started = False

    def stop(self) -> None:
        if self._started:
            self._run(find_program("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self._started = False

    def create_database(self) -> None:
        with psycopg.connect(f"postgres://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE helpdesk_faults")

    def _run(self, *argv) -> None:
        subprocess.run([*self.as_user, *argv], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
