"""Who works the desk: inviting people, their role and teams, deactivating them, and the teams themselves.

Every change is written to the audit log (``tickets.audit``). Two rules keep the desk administrable: nobody
deactivates or demotes themselves, and the last active admin stays one.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q

from .audit import record_change
from .models import Team
from .roles import ADMINS_GROUP, AGENTS_GROUP, Role, assigned_role

#: The group that gives each role; employees have none.
ROLE_GROUPS = {Role.ADMIN: ADMINS_GROUP, Role.AGENT: AGENTS_GROUP}


class StaffError(ValueError):
    """A change to a user or a team that is refused, with the reason in words an admin can act on."""


def active_admins():
    """Users who are admins now: active, and in the admins group or superusers."""
    return (
        get_user_model().objects.filter(Q(is_superuser=True) | Q(groups__name=ADMINS_GROUP), is_active=True).distinct()
    )


def _keep_an_admin(user):
    """Refuse to take away ``user``'s admin role when nobody else has it.

    Two admins demoting each other at once must not both succeed: every admin's row (``user``'s too) is locked
    first, so the second waits for the first to commit; only then, in a new statement that sees that commit, are
    the other admins counted."""
    User = get_user_model()
    admins = User.objects.select_for_update().filter(pk__in=active_admins().values("pk")).order_by("pk")
    list(admins.values_list("pk", flat=True))  # locked in one order by everyone: no deadlock
    if not active_admins().exclude(pk=user.pk).exists():
        raise StaffError(f"{user.get_username()} is the last active admin: make someone else an admin first.")


def _user_values(user) -> dict:
    """A user as the audit log shows them."""
    return {
        "role": str(assigned_role(user)),
        "teams": sorted(team.name for team in user.teams.all()),
        "active": user.is_active,
    }


def _assign_role(user, role: Role):
    groups = [Group.objects.get_or_create(name=name)[0] for name in ROLE_GROUPS.values()]
    user.groups.remove(*groups)
    if role in ROLE_GROUPS:
        user.groups.add(Group.objects.get_or_create(name=ROLE_GROUPS[role])[0])


def update_user(user, *, role: Role, teams, actor):
    """Set ``user``'s role (admin, agent or employee) and teams."""
    role = Role(role)
    if role == Role.EMPLOYEE and teams:
        raise StaffError("Teams are for agents and admins: untick them, or give this user another role.")
    with transaction.atomic():
        before = _user_values(user)
        current = assigned_role(user)
        if role != current:
            if user == actor:
                raise StaffError("You cannot change your own role: ask another admin.")
            if user.is_superuser:
                raise StaffError(
                    f"{user.get_username()} is a superuser, which makes them an admin whatever their role says."
                )
            if current == Role.ADMIN:
                _keep_an_admin(user)
            _assign_role(user, role)
        user.teams.set(teams)
        after = _user_values(user)
        if after != before:
            record_change(actor=actor, action="user.update", target=user, before=before, after=after)


def set_active(user, active: bool, *, actor):
    """Deactivate ``user`` (they can no longer sign in or use an API token) or reactivate them."""
    with transaction.atomic():
        if user.is_active == active:
            return
        if not active:
            if user == actor:
                raise StaffError("You cannot deactivate yourself.")
            if assigned_role(user) == Role.ADMIN:
                _keep_an_admin(user)
        before = _user_values(user)
        user.is_active = active
        user.save(update_fields=["is_active"])
        record_change(
            actor=actor,
            action="user.reactivate" if active else "user.deactivate",
            target=user,
            before=before,
            after=_user_values(user),
        )


def invite_user(*, email: str, role: Role, teams, actor):
    """Create an agent or admin who signs in with ``email`` once they have set a password (their invitation's
    link, sent by the caller). Until then the account has no usable password."""
    User = get_user_model()
    email = User.objects.normalize_email(email.strip())
    try:
        validate_email(email)
    except ValidationError:
        raise StaffError(f"{email} is not an email address.") from None
    if len(email) > User._meta.get_field("username").max_length:
        raise StaffError("This address is too long to be a username: invite a shorter one.")
    role = Role(role)
    if role not in ROLE_GROUPS:
        raise StaffError("Invite agents and admins; employees sign in through the portal.")
    if User.objects.filter(Q(email__iexact=email) | Q(username__iexact=email)).exists():
        raise StaffError(f"There is already a user with the address {email}.")
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=email, email=email)
    except IntegrityError:
        raise StaffError(f"There is already a user with the address {email}.") from None
    with transaction.atomic():
        _assign_role(user, role)
        user.teams.set(teams)
        record_change(actor=actor, action="user.invite", target=user, before=None, after=_user_values(user))
    return user


def create_admin(*, username: str, email: str, password: str, actor_label: str):
    """The first admin (or another one), from the command line: a usable password, in the admins group."""
    User = get_user_model()
    if User.objects.filter(username__iexact=username).exists():
        raise StaffError(f"There is already a user called {username}.")
    user = User(username=username, email=User.objects.normalize_email(email))
    try:
        user.full_clean(exclude=["password"])
        validate_password(password, user)
    except ValidationError as exc:
        raise StaffError(" ".join(exc.messages)) from None
    with transaction.atomic():
        user.set_password(password)
        user.save()
        _assign_role(user, Role.ADMIN)
        record_change(
            actor=None,
            actor_label=actor_label,
            action="user.create",
            target=user,
            before=None,
            after=_user_values(user),
        )
    return user


# Teams ---------------------------------------------------------------------------------------------------------


def _team_values(team) -> dict:
    return {
        "name": team.name,
        "lead": team.lead.get_username() if team.lead else None,
        "members": sorted(member.get_username() for member in team.members.all()),
        "assignment": team.assignment,
    }


def save_team(team: Team, *, name: str, members, lead, actor, assignment: str | None = None) -> Team:
    """Create ``team`` (unsaved) or rename it and set its members, lead and automatic assignment (None: leave it).
    A lead is always a member."""
    creating = team.pk is None
    before = None if creating else _team_values(team)
    team.name, team.lead = name.strip(), lead
    if assignment is not None:
        team.assignment = assignment
    members = {*members, *([lead] if lead else [])}
    try:
        with transaction.atomic():
            team.full_clean()
            team.save()
            team.members.set(members)
            after = _team_values(team)
            if after != before:
                record_change(
                    actor=actor,
                    action="team.create" if creating else "team.update",
                    target=team,
                    before=before,
                    after=after,
                )
    except ValidationError as exc:
        raise StaffError(" ".join(exc.messages)) from None
    except IntegrityError:
        raise StaffError(f"There is already a team called {team.name}.") from None
    return team


def delete_team(team: Team, *, actor):
    with transaction.atomic():
        record_change(actor=actor, action="team.delete", target=team, before=_team_values(team), after=None)
        team.delete()
