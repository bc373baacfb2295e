"""Canned responses (macros): who may use and manage them, and applying one: its reply and its actions on
the ticket, together or not at all."""

from django.db import transaction

from .models import Macro, Message, Ticket, TicketEvent
from .replies import reply_to_ticket
from .roles import Role, role_of
from .updates import UNCHANGED, TicketUpdateError, update_ticket


class MacroError(ValueError):
    """A macro that this agent cannot apply (gone, or someone else's)."""


def usable_macro(user, macro_id) -> Macro:
    """The macro ``macro_id`` if ``user`` may apply it: shared, or their own."""
    macro_id = str(macro_id)
    macro = None
    if macro_id.isascii() and macro_id.isdigit() and len(macro_id) <= 18:
        macro = Macro.objects.usable_by(user).select_related("assignee").filter(pk=int(macro_id)).first()
    if macro is None:
        raise MacroError("That macro is no longer available to you.")
    return macro


def can_manage(user, macro: Macro, role: Role | None = None) -> bool:
    """Owners manage their personal macros; admins manage the shared ones.

    ``role`` is ``user``'s, when the caller already knows it (it costs a query).
    """
    if macro.is_shared:
        return (role or role_of(user)) == Role.ADMIN
    return macro.owner_id == user.pk


def _assignee(macro: Macro, applier):
    action = macro.assignee_action
    if action == Macro.AssigneeAction.APPLIER:
        return applier
    if action == Macro.AssigneeAction.UNASSIGN:
        return None
    if action == Macro.AssigneeAction.AGENT:
        if macro.assignee is None:
            raise TicketUpdateError(f"The agent that macro {macro.name!r} assigns to no longer exists.")
        return macro.assignee
    return UNCHANGED


def apply_macro_actions(*, ticket: Ticket, actor, macro: Macro) -> list[TicketEvent]:
    """Set the status and assignee the macro says, through ``update_ticket`` (so each change is audited, naming
    the macro)."""
    return update_ticket(
        ticket=ticket,
        actor=actor,
        status=macro.status or None,
        assignee=_assignee(macro, actor),
        reason=f"macro “{macro.name}”",
    )


def reply_with_macro(
    *, ticket: Ticket, author, body: str, macro: Macro, mode: str | None = None, thread=None, files=()
):
    """Send an agent's reply and apply ``macro``'s actions in one transaction.

    A refused reply (``ReplyError``) applies nothing; a refused action (``TicketUpdateError``) sends
    nothing. Returns the reply and the events written.
    """
    with transaction.atomic():
        message: Message = reply_to_ticket(
            ticket=ticket, author=author, body=body, mode=mode, thread=thread, files=files
        )
        events = apply_macro_actions(ticket=ticket, actor=author, macro=macro)
    return message, events
