"""Role-based access: admins configure, agents work tickets, employees ask for help."""

from django.db import models

AGENTS_GROUP = "agents"
ADMINS_GROUP = "admins"


class Role(models.TextChoices):
    ADMIN = "admin"
    AGENT = "agent"
    EMPLOYEE = "employee"


def role_of(user) -> Role | None:
    if not user.is_authenticated or not user.is_active:
        return None
    return assigned_role(user)


def assigned_role(user) -> Role:
    """The role a user's groups give them, whether or not they may sign in now (a deactivated agent is still
    listed as one). Uses ``user.groups.all()``, so a prefetch of the groups saves its query."""
    if user.is_superuser:
        return Role.ADMIN
    groups = {group.name for group in user.groups.all()}
    if ADMINS_GROUP in groups:
        return Role.ADMIN
    if AGENTS_GROUP in groups:
        return Role.AGENT
    return Role.EMPLOYEE


def is_agent(user) -> bool:
    """Admins are agents too."""
    return role_of(user) in (Role.ADMIN, Role.AGENT)
