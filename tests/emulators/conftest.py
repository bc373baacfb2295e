"""Fixtures shared by the emulator tests; each test module defines its own module-scoped `emulator`."""

import pytest


@pytest.fixture
def emu(emulator):
    """The module's emulator, reset before and after each test."""
    emulator.reset()
    yield emulator
    emulator.reset()
