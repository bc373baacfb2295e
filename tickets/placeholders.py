"""Placeholders in canned responses: ``{requester_first_name}`` and friends.

Filled by plain token replacement from a fixed set of names, never by ``str.format`` or the template
engine: a macro's text is written by people, so it must not reach attributes, filters or tags.
"""

import re

from django.core.exceptions import ValidationError

#: Every placeholder a macro may use, with what it becomes.
PLACEHOLDERS = {
    "requester_name": "the requester's name",
    "requester_first_name": "the first word of the requester's name",
    "ticket_number": "the ticket's number (without #)",
    "ticket_subject": "the ticket's subject",
    "agent_name": "the name of the agent applying the macro",
    "agent_first_name": "the first name of the agent applying the macro",
}

# Anything that looks meant as a placeholder, in the spellings other tools use too ({{x}}, { x },
# {x.y}), so a near miss is refused when the macro is saved instead of reaching a requester as typed.
# Braces around other text ({"a": 1}, "{ }") are literal.
_CANDIDATE = re.compile(r"\{\{?\s*([A-Za-z_][\w.]*)\s*\}?\}")


def _placeholder(match):
    """The placeholder name if ``match`` is exactly ``{name}`` with a known name, else None."""
    name = match.group(1)
    return name if match.group(0) == f"{{{name}}}" and name in PLACEHOLDERS else None


def allowed_list() -> str:
    return ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)


def validate_placeholders(text: str) -> None:
    """Refuse text with a placeholder we do not know, naming the ones we do."""
    unknown = list(dict.fromkeys(m.group(0) for m in _CANDIDATE.finditer(text) if _placeholder(m) is None))
    if unknown:
        raise ValidationError(
            "Unknown placeholder%(s)s %(unknown)s. Use only: %(allowed)s.",
            code="unknown_placeholder",
            params={"s": "s" if len(unknown) > 1 else "", "unknown": ", ".join(unknown), "allowed": allowed_list()},
        )


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with each known ``{name}`` replaced by ``values[name]``, in one pass.

    One pass: a value that itself reads like a placeholder (a requester named "{agent_name}") stays as it is.
    """

    def replace(match):
        name = _placeholder(match)
        return values[name] if name is not None else match.group(0)

    return _CANDIDATE.sub(replace, text)
