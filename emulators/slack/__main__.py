"""Run the Slack emulator in the foreground: python -m emulators.slack --port 8765 ..."""

import argparse

from ..common import run_until_stopped
from .events import DEFAULT_RETRY_DELAYS
from .server import SlackEmulator


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulators.slack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--bot-token", default="xoxb-emulator")
    parser.add_argument("--signing-secret", default="emulator-secret")
    parser.add_argument("--team-id", default="T0EMU")
    parser.add_argument("--events-url", default=None, help="the app's Events API Request URL")
    parser.add_argument("--event-workers", type=int, default=1, help="parallel deliveries (1 keeps order)")
    parser.add_argument(
        "--event-retry-delays",
        type=float,
        nargs=3,
        default=DEFAULT_RETRY_DELAYS,
        metavar="SECONDS",
        help="waits before retries 1, 2 and 3",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    emulator = SlackEmulator(
        host=args.host,
        port=args.port,
        bot_token=args.bot_token,
        signing_secret=args.signing_secret,
        team_id=args.team_id,
        events_url=args.events_url,
        event_workers=args.event_workers,
        event_retry_delays=args.event_retry_delays,
        verbose=args.verbose,
    )
    run_until_stopped(emulator, f"Slack emulator: base_url={emulator.base_url} control={emulator.url}/_emulator/")


if __name__ == "__main__":
    main()
