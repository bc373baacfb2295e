"""What happens to public messages: which open a ticket at once, and which wait for an agent in the triage list
(those that open one may be acknowledged publicly: ``acknowledgements``).

A channel's config holds the rule: ``{"triage": {"auto_ticket": "direct", "keywords": ["vpn", "laptop"]}}``.

- ``all``: every public message opens a ticket.
- ``direct``: only those that address us directly (an explicit @mention).
- ``keywords``: only those containing one of the keywords.
- ``none``: every public message waits for triage.

Private messages (DMs) and replies in a conversation that already has a ticket skip triage.
"""

from channel_adapters.base import ConfigError, Envelope

AUTO_TICKET_RULES = ("all", "direct", "keywords", "none")


def validate(config: dict) -> None:
    """Refuse a triage rule that cannot work (``ConfigError``)."""
    rule = config.get("triage", {})
    if not isinstance(rule, dict):
        raise ConfigError("triage must be an object.")
    if rule.get("auto_ticket", "direct") not in AUTO_TICKET_RULES:
        raise ConfigError(f"triage.auto_ticket must be one of {', '.join(AUTO_TICKET_RULES)}.")
    keywords = rule.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip() for k in keywords):
        raise ConfigError("triage.keywords must be a list of words.")
    if rule.get("auto_ticket") == "keywords" and not keywords:
        raise ConfigError("triage.auto_ticket 'keywords' needs triage.keywords.")


def needs_triage(envelope: Envelope, config: dict) -> bool:
    if not envelope.public:
        return False
    rule = config.get("triage", {})
    auto_ticket = rule.get("auto_ticket", "direct")
    if auto_ticket == "all":
        return False
    if auto_ticket == "direct":
        return not envelope.meta.get("direct_mention")
    if auto_ticket == "keywords":
        text = envelope.text.casefold()
        return not any(keyword.casefold() in text for keyword in rule.get("keywords", []))
    return True
