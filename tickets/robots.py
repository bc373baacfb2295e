"""Which people are machines: mailboxes that write automatically and read nothing (bounces, no-reply senders).

The desk never answers them on its own (``channels_ingest.acknowledgements``): an automatic reply to a robot at
best goes unread, at worst answers back, and two automatic senders answering each other never stop.
"""

from __future__ import annotations

from typing import Protocol

#: Local parts of addresses machines send from, compared without separators ("no-reply", "no_reply", "noreply").
ROBOT_LOCAL_PARTS = frozenset({"mailerdaemon", "postmaster", "noreply", "donotreply", "dontreply"})


class Person(Protocol):
    """An ``Identity``, or a channel's ``Sender``: an address if the platform gave one, and its id there."""

    @property
    def email(self) -> str: ...

    @property
    def external_id(self) -> str: ...


def is_robot(person: Person) -> bool:
    """Whether ``person`` writes from an address that machines send from (mailer-daemon@, postmaster@,
    no-reply@ and the like, with or without a ``+tag``). People known by a platform id alone are not."""
    address = person.email or (person.external_id if "@" in person.external_id else "")
    if not address:
        return False
    local = address.rpartition("@")[0].split("+", 1)[0].casefold()
    return "".join(ch for ch in local if ch.isalnum()) in ROBOT_LOCAL_PARTS
