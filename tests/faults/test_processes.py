"""The fault suite's own process handling (faults/processes.py)."""

import os
import sys

from faults.processes import HelpdeskProcess


class Probe(HelpdeskProcess):
    """A process that ends at once, and notes what the supervisor would see while it is being started."""

    name = "probe"

    def __init__(self, env, folder):
        super().__init__(env, folder)
        self.seen_while_starting = []

    def argv(self):
        self.seen_while_starting.append(self.exited_on_its_own)
        return [sys.executable, "-c", "pass"]


def test_a_process_started_again_after_a_kill_is_not_taken_for_one_that_exited(tmp_path):
    """Between a scenario's kill and its restart the old process is gone on purpose: while the new one is
    starting, the supervisor must not start yet another (it would run alongside, and outlive the run)."""
    probe = Probe(dict(os.environ), tmp_path)
    probe.start().process.wait()
    probe.kill()
    probe.start().process.wait()
    probe.stop()

    assert probe.seen_while_starting == [False, False]
