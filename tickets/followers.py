"""Who follows a ticket besides its requester (an email's Cc'd people, ``tickets.inbound``), and an agent taking
one off it."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .models import TicketEvent, TicketFollower


def remove_follower(*, ticket, follower_id: int, actor) -> TicketEvent | None:
    """Take a follower off ``ticket``: they no longer receive its replies, nor may write into it by naming its
    number. The timeline records who did it. None if they no longer followed it."""
    with transaction.atomic():
        follower = (
            TicketFollower.objects.select_for_update().select_related("identity").filter(ticket=ticket, pk=follower_id)
        ).first()
        if follower is None:
            return None
        follower.delete()
        identity = follower.identity
        return TicketEvent.objects.create(
            ticket=ticket,
            kind=TicketEvent.Kind.FOLLOWER,
            old_value=(identity.display_name or identity.external_id)[:200],
            actor=actor,
            created_at=timezone.now(),
        )
