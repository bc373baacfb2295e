"""WhatsApp's message templates as agents use them: which approved templates they can send (those whose only
variables are in the body), and their ``{{1}}``, ``{{2}}``… (or named) parameters filled from the reply's lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..base import PermanentError
from .whatsapp_messages import as_list, words

#: ``{{1}}`` or, for templates with named parameters, ``{{first_name}}``.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
#: Meta refuses a template parameter with a tab or more than four spaces in a row (error 132018).
PARAMETER_WHITESPACE = re.compile(r"\t| {5,}")


def template_key(template: Mapping) -> str:
    return f"template:{template['name']}:{template['language']}"


def usable_template(item) -> tuple[dict | None, str]:
    """(the template as state keeps it, "") when agents can send it by filling its body's parameters;
    (None, why not) otherwise."""
    if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("name", "language")):
        return None, "no name or language"
    if item.get("status", "APPROVED") != "APPROVED":
        return None, f"status {item.get('status')}"
    body = ""
    for component in as_list(item.get("components")):
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type", "")).upper()
        if kind == "BODY":
            body = words(component.get("text"))
        elif kind == "HEADER" and (
            str(component.get("format", "TEXT")).upper() != "TEXT" or PLACEHOLDER.search(str(component.get("text")))
        ):
            return None, "its header needs a file or a value, which agents cannot give"
        elif kind == "BUTTONS" and any(
            isinstance(b, dict) and PLACEHOLDER.search(str(b.get("url", ""))) for b in as_list(component.get("buttons"))
        ):
            return None, "a button needs a value, which agents cannot give"
    if not body:
        return None, "no body text"
    return {
        "name": item["name"],
        "language": item["language"],
        "category": str(item.get("category") or ""),
        "body": body,
    }, ""


def placeholders(body: str) -> list[str]:
    """The template's parameters in the order they are filled: numbers in order, names as they appear."""
    names = list(dict.fromkeys(PLACEHOLDER.findall(body)))
    return sorted(names, key=int) if all(n.isdigit() for n in names) else names


def fill_template(body: str, text: str, *, strict: bool, name: str = "") -> tuple[str, list[tuple[str, str]]]:
    """The body with ``{{n}}`` replaced by the agent's lines (one per parameter), and the (parameter, value)
    pairs to send. ``strict``: a missing, empty or extra line is a ``PermanentError`` that names what is expected.

    A template without parameters is sent as it is, whatever the reply says: the helpdesk takes no empty reply,
    and the composer shows the template's body, which is what the person gets."""
    wanted = placeholders(body)
    lines = [PARAMETER_WHITESPACE.sub(" ", line.strip()) for line in text.strip().splitlines()] if text.strip() else []
    if strict and wanted and (len(lines) != len(wanted) or not all(lines)):
        expected = ", ".join(f"{{{{{p}}}}}" for p in wanted)
        raise PermanentError(
            f'Template "{name}" takes {len(wanted)} value{"s" if len(wanted) != 1 else ""}, one per line '
            f"({expected}); the reply has {len([line for line in lines if line])}."
        )
    values = dict(zip(wanted, lines, strict=False))
    rendered = PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), body)
    return rendered, [(p, values[p]) for p in wanted if p in values]


def template_message(template: Mapping, parameters: list[tuple[str, str]]) -> dict:
    message = {"type": "template", "template": {"name": template["name"], "language": {"code": template["language"]}}}
    if parameters:
        named = not all(name.isdigit() for name, _ in parameters)
        message["template"]["components"] = [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": value, **({"parameter_name": name} if named else {})}
                    for name, value in parameters
                ],
            }
        ]
    return message
