"""Macros (canned responses) as records."""

import pytest
from django.core.exceptions import ValidationError

from tickets.models import Macro


def test_a_macro_needs_text_or_an_action(agent, other_agent):
    with pytest.raises(ValidationError, match="needs a text, an action, or both"):
        Macro(name="m", body="  ", owner=agent).full_clean()
    with pytest.raises(ValidationError) as refused:
        Macro(name="m", assignee_action=Macro.AssigneeAction.AGENT, owner=agent).full_clean()
    assert "assignee" in refused.value.message_dict
    Macro(name="m", status="resolved", owner=agent).full_clean()  # actions only is fine
