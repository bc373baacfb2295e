"""Faults armed through the control API, used up one connection or command at a time.

IMAP (keyed by command: ``LOGIN``, ``SELECT``, ``UID FETCH``, ``IDLE``, ... or ``*`` for the next command of any
kind; ``CONNECT`` for the greeting): ``drop`` closes the connection without an answer and without applying the
command, ``drop_after`` applies it and then closes, ``bye`` sends ``* BYE`` and closes, ``no`` and ``bad`` answer
the command so (``message`` is the text after NO/BAD, response code included).

SMTP (keyed by stage: ``CONNECT``, ``EHLO``, ``AUTH``, ``MAIL``, ``RCPT``, ``DATA``): ``reply`` answers
``code message`` instead (a 4xx or 5xx; at DATA the message is refused), ``drop`` closes without an answer and
without keeping the message, ``drop_after`` keeps the message (at DATA) and then closes without an answer, so the
sender cannot know it went out.
"""

from dataclasses import dataclass

from ..common import FaultQueues

IMAP_KINDS = ("drop", "drop_after", "bye", "no", "bad")
SMTP_KINDS = ("reply", "drop", "drop_after")
SMTP_STAGES = ("CONNECT", "EHLO", "AUTH", "MAIL", "RCPT", "DATA")


@dataclass
class ProtocolFault:
    remaining: int
    kind: str
    code: int = 0
    message: str = ""


class Faults(FaultQueues):
    def arm_imap(self, command: str, kind: str, message: str = "", count: int = 1) -> None:
        if kind not in IMAP_KINDS:
            raise ValueError(f"kind must be one of {list(IMAP_KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        self._enqueue(f"imap:{command.upper()}", ProtocolFault(count, kind, 0, message))

    def take_imap(self, command: str) -> ProtocolFault | None:
        """The fault for this command (or the greeting: ``CONNECT``), if one is armed."""
        fault = self.take(f"imap:{command}")
        if fault is None and command != "CONNECT":
            fault = self.take("imap:*")
        return fault

    def arm_smtp(self, stage: str, kind: str = "reply", code: int = 451, message: str = "", count: int = 1) -> None:
        stage = stage.upper()
        if stage not in SMTP_STAGES:
            raise ValueError(f"stage must be one of {list(SMTP_STAGES)}")
        if kind not in SMTP_KINDS:
            raise ValueError(f"kind must be one of {list(SMTP_KINDS)}")
        if kind == "drop_after" and stage != "DATA":
            raise ValueError("drop_after is a DATA fault: the message is kept, then the connection drops")
        if kind == "reply" and not 400 <= code <= 599:
            raise ValueError("code must be a 4xx or 5xx reply")
        if count < 1:
            raise ValueError("count must be at least 1")
        self._enqueue(f"smtp:{stage}", ProtocolFault(count, kind, code, message))

    def take_smtp(self, stage: str) -> ProtocolFault | None:
        return self.take(f"smtp:{stage}")
