"""The audit log of configuration changes: who changed what, when, and the values before and after.

Callers pass values already fit to be read by any admin: a secret is never in them, only whether it is set
(``redacted``). ``record_change`` still drops a value whose key names a secret, in case a caller forgets.
"""

from .models import AuditEntry

#: Keys whose values are never written to the log, whatever a caller passes.
SECRET_KEY_WORDS = ("secret", "token", "password", "key")


def redacted(secret: str) -> str:
    """How a secret appears in the log: set or not, and its last 4 characters at most."""
    secret = str(secret or "")
    if not secret:
        return "not set"
    return f"set (…{secret[-4:]})" if len(secret) >= 12 else "set"


def _scrub(values: dict | None) -> dict | None:
    if values is None:
        return None
    scrubbed = {}
    for key, value in values.items():
        if isinstance(value, dict):
            scrubbed[key] = _scrub(value)
        elif any(word in key.lower() for word in SECRET_KEY_WORDS) and not _is_redacted(value):
            scrubbed[key] = redacted(value)
        else:
            scrubbed[key] = value
    return scrubbed


def _is_redacted(value) -> bool:
    return isinstance(value, str) and (value in ("set", "not set") or value.startswith("set (…"))


def record_change(*, actor, action: str, target, before: dict | None, after: dict | None, actor_label: str = ""):
    """Log one configuration change. ``actor`` is a user, or None for a command (say which in ``actor_label``)."""
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_label=actor_label or (actor.get_username() if actor is not None else "system"),
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_label=str(target)[:200],
        before=_scrub(before),
        after=_scrub(after),
    )
