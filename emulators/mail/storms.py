"""What a storm (``emulators.common.StormPlan``, ``/_emulator/storm``) does to IMAP and SMTP.

A storm strikes IMAP commands (key ``imap:<COMMAND>``: ``imap:LOGIN``, ``imap:UID FETCH``..., ``imap:CONNECT``
for the greeting) and SMTP stages (``smtp:CONNECT``, ``smtp:EHLO``, ``smtp:AUTH``, ``smtp:MAIL``, ``smtp:RCPT``,
``smtp:DATA``), each with the storm's probability, by one of its kinds, as mail servers fail:

- ``5xx``, a server error: IMAP ``NO [UNAVAILABLE]`` or ``* BYE [UNAVAILABLE]`` (the connection ends); SMTP 451
  or 454 (on the greeting: 421, and the connection ends);
- ``429``, try again later: IMAP ``NO [LIMIT]`` (RFC 5530; on the greeting ``* BYE``); SMTP 421 (the connection
  ends) or 452;
- ``slow``: the answer comes ``slow_seconds`` late, after a client with a shorter timeout gave up, and the
  command is still applied: at SMTP DATA the message is kept (and filed in Sent) before the late answer;
- ``reset``: the connection is dropped with a TCP RST before the command is applied.

Armed faults (``faults.py``) still work and come after the storm.
"""

from dataclasses import dataclass

from ..common import StormPlan

IMAP_ANSWERS = {
    "5xx": [("NO", "[UNAVAILABLE] Internal server error, try again later"), ("BYE", "[UNAVAILABLE] Server error")],
    "429": [("NO", "[LIMIT] Too many commands, try again later")],
}
IMAP_GREETINGS = {"5xx": "[UNAVAILABLE] Server error", "429": "[LIMIT] Too many connections, try again later"}
SMTP_ANSWERS = {
    "5xx": [(451, "4.3.0 Local error in processing, try again later"), (454, "4.7.0 Temporary failure")],
    "429": [(421, "4.7.0 Too many connections, try again later"), (452, "4.3.1 Insufficient system resources")],
}
SMTP_GREETING = (421, "4.3.2 Service not available, try again later")


@dataclass(frozen=True)
class Strike:
    """How a struck command is answered: ``kind`` ``slow`` (late, then as usual), ``reset``, or an ``answer``: an
    IMAP status (``NO``, ``BYE``) or an SMTP code, with its text; ``closes`` when the server then hangs up."""

    kind: str
    answer: str | int = ""
    text: str = ""
    closes: bool = False


def imap_strike(storms: StormPlan, command: str) -> Strike | None:
    key = f"imap:{command}"
    kind = storms.draw(key)
    if kind in (None, "slow", "reset"):
        return Strike(kind) if kind else None
    if command == "CONNECT":
        return Strike(kind, "BYE", IMAP_GREETINGS[kind], closes=True)
    status, text = storms.choice(key, IMAP_ANSWERS[kind])
    return Strike(kind, status, text, closes=status == "BYE")


def smtp_strike(storms: StormPlan, stage: str) -> Strike | None:
    key = f"smtp:{stage}"
    kind = storms.draw(key)
    if kind in (None, "slow", "reset"):
        return Strike(kind) if kind else None
    code, text = SMTP_GREETING if stage == "CONNECT" else storms.choice(key, SMTP_ANSWERS[kind])
    return Strike(kind, code, text, closes=code == 421)
