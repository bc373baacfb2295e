"""Run the mail emulator in the foreground: python -m emulators.mail --imap-port 8143 --smtp-port 8025 --http-port 8771

It starts with one account (--user, --password for LOGIN/PLAIN and SMTP AUTH, --token for XOAUTH2).
"""

import argparse

from ..common import run_until_stopped
from .server import MailEmulator
from .store import DEFAULT_PASSWORD, DEFAULT_TOKEN, DEFAULT_USER


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulators.mail", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--imap-port", type=int, default=8143)
    parser.add_argument("--smtp-port", type=int, default=8025)
    parser.add_argument("--http-port", type=int, default=8771, help="the control API")
    parser.add_argument("--user", default=DEFAULT_USER)
    parser.add_argument("--password", default=DEFAULT_PASSWORD)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--address", help="the account's email address (default: --user)")
    parser.add_argument("--verbose", action="store_true", help="log every control request")
    args = parser.parse_args(argv)

    emulator = MailEmulator(
        host=args.host,
        http_port=args.http_port,
        imap_port=args.imap_port,
        smtp_port=args.smtp_port,
        user=args.user,
        password=args.password,
        token=args.token,
        address=args.address,
        verbose=args.verbose,
    )
    run_until_stopped(
        emulator,
        f"Mail emulator: imap={emulator.imap_host}:{emulator.imap_port} smtp={emulator.smtp_host}:{emulator.smtp_port}"
        f" control={emulator.url}/_emulator/ account={args.user}",
    )


if __name__ == "__main__":
    main()
