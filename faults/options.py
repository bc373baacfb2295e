"""How a fault-suite run is sized and paced; the command line's defaults are these."""

from dataclasses import dataclass


@dataclass
class Options:
    messages: int = 10_000
    #: How long Redis or PostgreSQL stays down.
    outage_seconds: float = 10.0
    #: How long a platform storm lasts.
    storm_seconds: float = 60.0
    ingest_timeout: float = 900.0
    #: How long replies may take to settle, each time (before and after Retry). Generous: a dead worker's reply is
    #: taken back within 30 s, but a reply whose retry task was lost waits for the sweep's 2-minute rule, and the
    #: delivery backoff reaches 300 s.
    settle_timeout: float = 420.0
    seed: int = 1
    #: Play the sweep's delivery timers (a lost retry's 2 minutes, a stuck send's heartbeat lease) at once when
    #: nothing is being delivered (short runs).
    fast_forward: bool = False
    #: Seconds the channels' platform clients wait for an answer (their ``timeout``; 15 by default). A storm's
    #: slow answers come just after it, so short runs set it low.
    client_timeout: float = 15.0

    @property
    def replies(self) -> int:
        return min(200, max(10, self.messages // 50))
