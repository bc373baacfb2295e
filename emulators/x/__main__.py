"""Run the X emulator in the foreground: python -m emulators.x --port 8766 ..."""

import argparse

from ..common import run_until_stopped
from .server import XEmulator


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulators.x", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--account-id", default="9000000000000000001")
    parser.add_argument("--account-username", default="ithelp")
    parser.add_argument("--account-name", default="IT Help")
    parser.add_argument("--bearer-token", default="x-emulator-bearer", help="the account's OAuth 2.0 user token")
    parser.add_argument("--consumer-key", default="ck")
    parser.add_argument("--consumer-secret", default="cs")
    parser.add_argument("--access-token", default="at")
    parser.add_argument("--access-token-secret", default="ats")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    emulator = XEmulator(
        host=args.host,
        port=args.port,
        account_id=args.account_id,
        account_username=args.account_username,
        account_name=args.account_name,
        bearer_token=args.bearer_token,
        consumer_key=args.consumer_key,
        consumer_secret=args.consumer_secret,
        access_token=args.access_token,
        access_token_secret=args.access_token_secret,
        verbose=args.verbose,
    )
    run_until_stopped(emulator, f"X emulator: url={emulator.url} control={emulator.url}/_emulator/")


if __name__ == "__main__":
    main()
