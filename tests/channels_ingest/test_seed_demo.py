"""The embedded demo's data."""

from channels_ingest.management.commands.seed_demo import DEMO_MACROS
from tickets.models import Macro


def test_the_demo_macros_are_valid():
    for fields in DEMO_MACROS:
        Macro(**fields).full_clean()
