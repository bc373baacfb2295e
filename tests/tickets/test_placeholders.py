"""Placeholders in canned responses."""

import pytest
from django.core.exceptions import ValidationError

from tickets.models import Macro
from tickets.placeholders import PLACEHOLDERS


def test_every_placeholder_is_filled(ticket, agent):
    body = " | ".join(f"{{{name}}}" for name in PLACEHOLDERS)
    text = Macro(name="all", body=body).render(ticket, agent)
    assert text == f"Ann Employee | Ann | {ticket.pk} | The printer is on fire | Alex Agent | Alex"


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("Zoë 🦄 Müller", "Zoë"),
        ("מרים כהן", "מרים"),  # right to left
        ("🦄", "🦄"),
        ("{agent_name} <b>x</b>", "{agent_name}"),  # a name that reads like a placeholder stays as it is
    ],
)
def test_odd_requester_names_are_filled_in_as_written(ticket, agent, name, first):
    ticket.requester.display_name = name
    text = Macro(name="m", body="Hi {requester_first_name} ({requester_name}), #{ticket_number}").render(ticket, agent)
    assert text == f"Hi {first} ({name}), #{ticket.pk}"


def test_text_that_is_not_a_placeholder_stays_literal(ticket, agent):
    body = 'Run `Get-Item | % { $_.Name }` and send {"a": 1} or { } back'
    macro = Macro(name="m", body=body)
    macro.full_clean()
    assert macro.render(ticket, agent) == body


@pytest.mark.parametrize(
    ("body", "unknown"),
    [
        ("Hi {requester}", "{requester}"),
        ("Hi {requester.name}", "{requester.name}"),  # no attribute access
        ("Hi {{requester_name}}", "{{requester_name}}"),  # other tools' spelling
        ("Hi { requester_name }", "{ requester_name }"),
        ("Hi {ticket.requester.__class__}", "{ticket.requester.__class__}"),
    ],
)
def test_an_unknown_placeholder_is_refused_listing_the_allowed_ones(agent, body, unknown):
    with pytest.raises(ValidationError) as refused:
        Macro(name="m", body=body, owner=agent).full_clean()
    error = " ".join(refused.value.message_dict["body"])
    assert f"Unknown placeholder {unknown}." in error
    assert "Use only: {requester_name}, {requester_first_name}, {ticket_number}" in error
