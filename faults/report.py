"""What a scenario found, and the table that sums a run up."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Result:
    scenario: str
    #: Inbound: messages the platform sent, rows stored (distinct), ticket messages made (distinct), extra copies
    #: of a row or a ticket message, sent messages that never became a ticket message, rows left failed.
    sent: int = 0
    stored: int = 0
    ingested: int = 0
    duplicated: int = 0
    lost: int = 0
    failed_rows: int = 0
    #: Outbound: replies made, sent exactly once in the end, failed visibly and then sent by Retry, extra copies
    #: on the platform, replies marked sent that the platform does not have, and replies still queued/sending
    #: (or failed again after Retry) when the run gave up waiting.
    replies: int = 0
    replies_once: int = 0
    #: Replies on the platform more than once, every extra copy sent by the agent's Retry after the warning that the
    #: platform did not confirm the reply, on a channel that cannot look whether it arrived (WhatsApp): visible,
    #: at least once, never a silent copy.
    replies_warned: int = 0
    retried: int = 0
    reply_copies: int = 0
    replies_lost: int = 0
    replies_unsettled: int = 0
    #: Seconds from the end of the fault until every message was ingested and every reply had settled
    #: (None: not within the time allowed).
    recovery_seconds: float | None = None
    notes: list[str] = field(default_factory=list)
    error: str = ""
    #: How long the whole scenario took.
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            not self.error
            and self.lost == 0
            and self.duplicated == 0
            and self.reply_copies == 0
            and self.replies_lost == 0
            and self.replies_unsettled == 0
            and self.replies_once + self.replies_warned == self.replies
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def describe(self) -> str:
        recovery = f"{self.recovery_seconds:.1f}s" if self.recovery_seconds is not None else "not recovered"
        lines = [
            f"  in:  sent {self.sent}, stored {self.stored}, ingested {self.ingested}, duplicated {self.duplicated}, "
            f"lost {self.lost} (failed rows {self.failed_rows})",
            f"  out: replies {self.replies}, sent once {self.replies_once} (after Retry {self.retried}), "
            f"twice after a warning {self.replies_warned}, extra copies {self.reply_copies}, "
            f"lost {self.replies_lost}, unsettled {self.replies_unsettled}",
            f"  recovery: {recovery}",
        ]
        lines += [f"  note: {note}" for note in self.notes]
        if self.error:
            lines.append(f"  error: {self.error}")
        lines.append(f"  => {'OK' if self.ok else 'FAILED'} in {self.seconds:.0f}s")
        return "\n".join(lines)


COLUMNS = [
    ("scenario", 18),
    ("sent", 6),
    ("stored", 6),
    ("dup", 4),
    ("lost", 5),
    ("replies", 7),
    ("once", 5),
    ("warned", 6),
    ("retried", 7),
    ("copies+", 7),
    ("r.lost", 6),
    ("unsettled", 9),
    ("recover", 8),
    ("result", 6),
]


def table(results: list[Result]) -> str:
    header = " ".join(name.ljust(width) for name, width in COLUMNS)
    rows = [header, "-" * len(header)]
    for r in results:
        values = [
            r.scenario,
            r.sent,
            r.stored,
            r.duplicated,
            r.lost,
            r.replies,
            r.replies_once,
            r.replies_warned,
            r.retried,
            r.reply_copies,
            r.replies_lost,
            r.replies_unsettled,
            f"{r.recovery_seconds:.1f}s" if r.recovery_seconds is not None else "-",
            "OK" if r.ok else "FAILED",
        ]
        rows.append(" ".join(str(value).ljust(width) for value, (_, width) in zip(values, COLUMNS, strict=True)))
    return "\n".join(rows)
