"""The ticket page's people panel: everyone who wrote in the ticket's conversations, with their accounts on
every channel, their other tickets, and who follows the ticket. Three queries, however many people and messages.
"""

from dataclasses import dataclass, field

from tickets.models import Contact, Identity, Message, Ticket, TicketFollower

#: The requester panel lists at most this many of their other tickets.
OTHER_TICKETS = 10


@dataclass
class Person:
    """Someone who wrote in the ticket's conversations, with their accounts on every channel."""

    contact: Contact
    is_requester: bool = False
    identities: list[Identity] = field(default_factory=list)


def requester_panel(ticket):
    """Everyone who wrote in the ticket's conversations (several after a merge), the requester first, each with
    their identities on every channel; their other tickets, most recent activity first; and the ticket's
    followers. Three queries, however many people and messages."""
    requester = ticket.requester
    wrote = Identity.objects.filter(message__ticket_id=ticket.pk, message__direction=Message.Direction.INBOUND).values(
        "contact_id"
    )
    # A UNION, not "requester OR IN (...)": PostgreSQL answers the OR with a scan of every identity.
    people_ids = Contact.objects.filter(pk=requester.pk).values("pk").union(wrote)
    identities = (
        Identity.objects.filter(contact_id__in=people_ids)
        .select_related("contact")
        .only(
            "id",
            "contact_id",
            "namespace",
            "handle",
            "display_name",
            "external_id",
            "email",
            "contact__id",
            "contact__display_name",
            "contact__email",
        )
        .order_by("namespace", "handle", "id")
    )
    people = {requester.pk: Person(requester, is_requester=True)}
    for identity in identities:
        people.setdefault(identity.contact_id, Person(identity.contact)).identities.append(identity)
    others = list(
        Ticket.objects.filter(requester_id__in=list(people))
        .exclude(pk=ticket.pk)
        .select_related("requester")
        .only("id", "subject", "status", "last_activity_at", "requester__id", "requester__display_name")
        .order_by("-last_activity_at", "-id")[:OTHER_TICKETS]
    )
    ordered = sorted(
        people.values(), key=lambda p: (not p.is_requester, p.contact.display_name.casefold(), p.contact.pk)
    )
    followers = list(
        TicketFollower.objects.filter(ticket_id=ticket.pk)
        .select_related("identity")
        .only(
            "id",
            "identity__namespace",
            "identity__external_id",
            "identity__handle",
            "identity__email",
            "identity__display_name",
        )
        .order_by("added_at", "id")
    )
    return {"people": ordered, "several_people": len(ordered) > 1, "other_tickets": others, "followers": followers}
