"""Local Slack emulator: Web API, Events API push and a control API for tests.

from emulators.slack import SlackEmulator
emu = SlackEmulator(port=0).start()
client = slack_sdk.WebClient(token="xoxb-emulator", base_url=emu.base_url)
"""

from .client import EmulatorControlError, SlackEmulatorClient
from .server import SlackEmulator

__all__ = ["EmulatorControlError", "SlackEmulator", "SlackEmulatorClient"]
