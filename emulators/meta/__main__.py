"""Run the Meta emulator in the foreground: python -m emulators.meta --port 8767 ...

With --page-id / --ig-user-id / --phone-number-id it starts with those accounts (tokens
"page-token-<id>", "whatsapp-token-<id>"; app secret and verify token as given).
"""

import argparse

from ..common import run_until_stopped
from .server import MetaEmulator


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulators.meta", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--page-id", help="add a Facebook Page with this id")
    parser.add_argument("--ig-user-id", help="add an Instagram account linked to the Page")
    parser.add_argument("--phone-number-id", help="add a WhatsApp number with this id")
    parser.add_argument("--waba-id", help="the WhatsApp Business Account of the number")
    parser.add_argument("--app-secret", default="meta-app-secret")
    parser.add_argument("--verify-token", default="meta-verify-token")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    emulator = MetaEmulator(host=args.host, port=args.port, verbose=args.verbose)
    secrets = {"app_secret": args.app_secret, "verify_token": args.verify_token}
    # Through the control routes directly: the server is not serving yet.
    if args.page_id:
        emulator.control.handle("POST", "accounts/page", {}, {"id": args.page_id, **secrets})
        if args.ig_user_id:
            payload = {"id": args.ig_user_id, "page_id": args.page_id, "verify_token": args.verify_token}
            emulator.control.handle("POST", "accounts/instagram", {}, payload)
    if args.phone_number_id:
        payload = {"id": args.phone_number_id, "waba_id": args.waba_id, **secrets}
        emulator.control.handle("POST", "accounts/whatsapp", {}, payload)
    run_until_stopped(emulator, f"Meta emulator: base_url={emulator.base_url} control={emulator.url}/_emulator/")


if __name__ == "__main__":
    main()
