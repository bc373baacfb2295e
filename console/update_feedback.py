"""What the ticket page says after an agent changed a ticket ("Assigned to you.", "Resolved #123.",
"Status: Open → Pending"), and the Undo it offers for a few seconds.

The Undo is a form that posts the changed fields' earlier values to the same update endpoint
(``action=undo``), so it is an ordinary, recorded change. What it would post is kept in the session
until the ticket page shows it once.
"""

from tickets.models import Ticket, TicketEvent

#: How long the Undo button stays on the page (static/console.js removes it then).
UNDO_SECONDS = 10
#: The fields an Undo may set back, as the update endpoint names them.
UNDOABLE = ("status", "priority", "assignee", "queue")
_SESSION_KEY = "console_undo"


def snapshot(ticket) -> dict:
    """The ticket's undoable fields before a change (ids, JSON-able), to offer them back afterwards."""
    return {
        "status": ticket.status,
        "priority": ticket.priority,
        "assignee": ticket.assignee_id,
        "queue": ticket.queue_id,
    }


def _says(event: TicketEvent, ticket: Ticket, actor) -> str:
    if event.kind == TicketEvent.Kind.STATUS and event.new_value == Ticket.Status.RESOLVED:
        return f"Resolved #{ticket.pk}."
    if event.kind == TicketEvent.Kind.ASSIGNEE:
        if ticket.assignee_id == actor.pk:
            return "Assigned to you."
        if ticket.assignee_id is None:
            return f"Unassigned (was {event.old_display})."
        return f"Assigned to {event.new_display}."
    return f"{event.get_kind_display()}: {event.old_display} → {event.new_display}."


def summary(events, ticket, actor, *, undone=False) -> str:
    """One sentence per field that changed, in the words of the page."""
    said = " ".join(_says(event, ticket, actor) for event in events)
    return f"Undone. {said}" if undone else said


def offer_undo(request, ticket, before: dict, events) -> None:
    """Keep, for the next ticket page, the earlier values of the fields ``events`` changed."""
    changed = {event.kind for event in events}
    request.session[_SESSION_KEY] = {
        "ticket": ticket.pk,
        "fields": {name: value for name, value in before.items() if name in changed},
    }


def take_undo(request, ticket) -> dict | None:
    """The Undo to show on this ticket's page (once), or None."""
    undo = request.session.pop(_SESSION_KEY, None)
    if not undo or undo.get("ticket") != ticket.pk:
        return None
    return {"fields": undo["fields"], "seconds": UNDO_SECONDS}
