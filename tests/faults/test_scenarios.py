"""Every fault suite scenario (faults/scenarios.py) at a small size: nothing lost, nothing duplicated, every
reply sent once (after Retry, if it failed visibly), or, where the channel cannot look whether it arrived
(WhatsApp), sent again by a Retry pressed past the warning that it may have (``replies_warned``).

One run of ``python -m faults`` serves all the tests: it starts its own PostgreSQL cluster, redis-server,
worker, beat and web process once, then plays each scenario with the same code as ``make faults``.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faults.scenarios import SCENARIOS
from faults.services import missing_programs

ROOT = Path(__file__).resolve().parents[2]
# Small and quick: the sweep every 2 s, and its delivery timers (a lost retry's 2 minutes, a stuck send's
# heartbeat lease) played at once when nothing is being delivered.
SMALL = [
    "--messages", "150", "--storm-seconds", "3", "--outage-seconds", "3", "--sweep-seconds", "2",
    "--ingest-timeout", "90", "--settle-timeout", "60", "--fast-forward", "--client-timeout", "2",
]  # fmt: skip

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(bool(missing_programs()), reason=f"the fault suite needs {', '.join(missing_programs())}"),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults") / "results.json"
    env = {
        key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL")
    }
    completed = subprocess.run(
        [sys.executable, "-m", "faults", *SMALL, "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if not out.exists():
        pytest.fail(f"python -m faults ended without results:\n{completed.stdout}\n{completed.stderr}")
    return {result["scenario"]: result for result in json.loads(out.read_text())}


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_scenario_loses_and_duplicates_nothing(results, name):
    result = results[name]
    assert not result["error"]
    assert result["sent"] > 0
    assert result["replies"] > 0
    assert (result["lost"], result["duplicated"]) == (0, 0), result["notes"]
    assert result["replies_once"] + result["replies_warned"] == result["replies"], result["notes"]
    if not name.startswith("meta-"):  # only WhatsApp cannot look whether a reply arrived
        assert result["replies_warned"] == 0, result["notes"]
    assert (result["reply_copies"], result["replies_lost"], result["replies_unsettled"]) == (0, 0, 0)
    assert result["ok"]
