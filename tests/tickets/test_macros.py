"""Macros (canned responses) as records."""

import pytest
from django.core.exceptions import ValidationError

from tests.helpers import shared_macro
from tickets.macros import apply_macro_actions, reply_with_macro
from tickets.models import Macro, TicketEvent


def test_a_macro_needs_text_or_an_action(agent, other_agent):
    with pytest.raises(ValidationError, match="needs a text, an action, or both"):
        Macro(name="m", body="  ", owner=agent).full_clean()
    with pytest.raises(ValidationError) as refused:
        Macro(name="m", assignee_action=Macro.AssigneeAction.AGENT, owner=agent).full_clean()
    assert "assignee" in refused.value.message_dict
    Macro(name="m", status="resolved", owner=agent).full_clean()  # actions only is fine


def test_a_macros_changes_name_it_on_the_timeline(ticket, agent):
    """The reply opens the ticket, then the macro moves it on: two status changes, each with its reason."""
    macro = shared_macro(name="Ask for details", status="pending", assignee_action=Macro.AssigneeAction.APPLIER)
    reply_with_macro(ticket=ticket, author=agent, body="Which floor?", macro=macro)
    events = [(e.kind, e.old_value, e.new_value, e.reason) for e in TicketEvent.objects.order_by("id")]
    assert events == [
        ("status", "new", "open", "replied"),
        ("status", "open", "pending", "macro “Ask for details”"),
        ("assignee", "", "Alex Agent", "macro “Ask for details”"),
    ]


def test_a_macro_applied_alone_names_itself(ticket, agent):
    apply_macro_actions(ticket=ticket, actor=agent, macro=shared_macro(name="Close", status="resolved", body=""))
    [event] = TicketEvent.objects.all()
    assert (event.old_value, event.new_value, event.actor, event.reason) == ("new", "resolved", agent, "macro “Close”")
