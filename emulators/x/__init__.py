"""Local X (Twitter) API v2 emulator: mentions, DMs, posting, and a control API for tests.

    from emulators.x import XEmulator
    emu = XEmulator(port=0).start()
    client = tweepy.Client(bearer_token="x-emulator-bearer")
    client.session = <a requests.Session that rewrites https://api.twitter.com to emu.url>

Simplifications against the real X:
- one account (the app's): only its mentions and DMs are indexed, one rate-limit window per endpoint;
  a user's timeline (GET /2/users/:id/tweets) lists only what the account posted through the API;
- OAuth 1.0a signatures are checked for presence and matching keys, not verified (see auth.py);
- text weighting approximates twitter-text (http(s) URLs 23, emoji sequences and wide characters 2);
- control posts keep their text as given (real X prefixes replies with "@parent_author");
- no duplicate-content check, no 30-day DM retention, no group DMs, user.fields beyond id/name/username
  and unknown query parameters are ignored, expansions serve users and media (attachments.media_keys);
- media files are served at the emulator's URL, not pbs/video.twimg.com and ton.twitter.com (see media.py).
"""

from .client import EmulatorControlError, XEmulatorClient
from .server import XEmulator

__all__ = ["EmulatorControlError", "XEmulator", "XEmulatorClient"]
