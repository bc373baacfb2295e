"""The layers (.importlinter): every import points down, and `make lint` fails on one that does not."""

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

CONTRACTS = Path(ROOT) / ".importlinter"
#: Folders of tools beside the application: they may import any layer, and nothing imports them.
TOOLS = {"tests", "emulators", "bench", "faults", "bin", "docs", "static", "templates", "node_modules"}


def root_packages():
    config = configparser.ConfigParser()
    config.read(CONTRACTS)
    return config["importlinter"]["root_packages"].split()


def lint_imports(cwd):
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_application_package_is_under_the_contracts():
    """A new app (an interface, say) is placed in a layer, not left outside every contract."""
    packages = {
        path.parent.name
        for path in Path(ROOT).glob("*/__init__.py")
        if path.parent.name not in TOOLS and not path.parent.name.startswith(".")
    }
    assert packages == set(root_packages())


def test_an_upward_import_fails_the_lint(tmp_path):
    """The domain importing the pipeline (here: delivery, from the domain's replies) breaks the layers contract."""
    for package in root_packages():
        shutil.copytree(Path(ROOT) / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(CONTRACTS, tmp_path)
    kept = lint_imports(tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr

    replies = tmp_path / "tickets" / "replies.py"
    replies.write_text(replies.read_text() + "\nfrom channels_ingest import delivery  # an upward import\n")
    broken = lint_imports(tmp_path)
    assert broken.returncode != 0
    assert "Every import points down" in broken.stdout
    assert "BROKEN" in broken.stdout
    assert "tickets.replies -> channels_ingest.delivery" in broken.stdout
