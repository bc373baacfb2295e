"""Users and teams (tickets.staff): roles, the last admin, deactivation, invitations, teams, all audited."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, transaction

from tickets.models import AuditEntry, Team
from tickets.roles import ADMINS_GROUP, Role, assigned_role, role_of
from tickets.staff import (
    StaffError,
    active_admins,
    create_admin,
    delete_team,
    invite_user,
    save_team,
    set_active,
    update_user,
)

pytestmark = pytest.mark.django_db


def test_an_admin_makes_an_agent_an_admin_and_the_log_says_so(admin_user, agent):
    team = Team.objects.create(name="Network")
    update_user(agent, role=Role.ADMIN, teams=[team], actor=admin_user)
    agent = User.objects.get(pk=agent.pk)
    assert role_of(agent) == Role.ADMIN
    assert list(agent.teams.all()) == [team]
    entry = AuditEntry.objects.get(action="user.update")
    assert entry.actor == admin_user
    assert entry.before == {"role": "agent", "teams": [], "active": True}
    assert entry.after == {"role": "admin", "teams": ["Network"], "active": True}


def test_saving_without_a_change_logs_nothing(admin_user, agent):
    update_user(agent, role=Role.AGENT, teams=[], actor=admin_user)
    assert not AuditEntry.objects.exists()


def test_demoting_to_employee_takes_every_role_group_away(admin_user, agent):
    update_user(agent, role=Role.EMPLOYEE, teams=[], actor=admin_user)
    assert not User.objects.get(pk=agent.pk).groups.exists()


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(admin_user, agent):
    other = User.objects.create_user("other-admin")
    other.groups.add(Group.objects.get(name=ADMINS_GROUP))
    set_active(other, False, actor=admin_user)  # fine: admin_user is still an admin
    with pytest.raises(StaffError, match="boss is the last active admin"):
        update_user(admin_user, role=Role.AGENT, teams=[], actor=other)
    with pytest.raises(StaffError, match="boss is the last active admin"):
        set_active(admin_user, False, actor=other)
    assert role_of(User.objects.get(pk=admin_user.pk)) == Role.ADMIN


def test_nobody_deactivates_or_demotes_themselves(admin_user):
    second = User.objects.create_user("second")
    second.groups.add(Group.objects.get(name=ADMINS_GROUP))
    with pytest.raises(StaffError, match="You cannot deactivate yourself"):
        set_active(admin_user, False, actor=admin_user)
    with pytest.raises(StaffError, match="You cannot change your own role"):
        update_user(admin_user, role=Role.AGENT, teams=[], actor=admin_user)


def test_a_superusers_role_is_not_changed_behind_their_flag(admin_user):
    root = User.objects.create_superuser("root", "root@example.com", "x")
    with pytest.raises(StaffError, match="superuser"):
        update_user(root, role=Role.AGENT, teams=[], actor=admin_user)


def test_deactivating_and_reactivating_are_logged_and_keep_the_role(admin_user, agent):
    set_active(agent, False, actor=admin_user)
    agent.refresh_from_db()
    assert not agent.is_active
    assert role_of(agent) is None
    assert assigned_role(agent) == Role.AGENT
    set_active(agent, True, actor=admin_user)
    assert [e.action for e in AuditEntry.objects.order_by("id")] == ["user.deactivate", "user.reactivate"]
    assert AuditEntry.objects.get(action="user.deactivate").after["active"] is False


def test_an_invited_agent_has_no_usable_password_until_they_set_one(admin_user):
    team = Team.objects.create(name="Desk")
    user = invite_user(email="  Nia@Example.COM ", role=Role.AGENT, teams=[team], actor=admin_user)
    assert user.username == user.email == "Nia@example.com"
    assert user.is_active
    assert not user.has_usable_password()
    assert role_of(user) == Role.AGENT
    assert AuditEntry.objects.get(action="user.invite").after == {"role": "agent", "teams": ["Desk"], "active": True}


def test_an_address_is_invited_once(admin_user, agent):
    agent.email = "alex@example.com"
    agent.save()
    with pytest.raises(StaffError, match=r"already a user with the address ALEX@example\.com"):
        invite_user(email="ALEX@example.com", role=Role.AGENT, teams=[], actor=admin_user)


def test_employees_are_in_no_team(admin_user, agent):
    team = Team.objects.create(name="Desk")
    with pytest.raises(StaffError, match="Teams are for agents and admins"):
        update_user(agent, role=Role.EMPLOYEE, teams=[team], actor=admin_user)
    assert role_of(User.objects.get(pk=agent.pk)) == Role.AGENT


@pytest.mark.parametrize(
    ("email", "error"), [("not-an-address", "is not an email address"), ("a" * 140 + "@example.com", "too long")]
)
def test_an_invitation_needs_an_address_fit_for_a_username(admin_user, email, error):
    with pytest.raises(StaffError, match=error):
        invite_user(email=email, role=Role.AGENT, teams=[], actor=admin_user)
    assert not User.objects.filter(email=email).exists()


def test_employees_are_not_invited(admin_user):
    with pytest.raises(StaffError, match="Invite agents and admins"):
        invite_user(email="e@example.com", role=Role.EMPLOYEE, teams=[], actor=admin_user)


def test_create_admin_makes_a_signed_in_admin_and_logs_the_command(db):
    user = create_admin(username="ada", email="ada@example.com", password="a long pass phrase", actor_label="cli")
    assert user.check_password("a long pass phrase")
    assert role_of(user) == Role.ADMIN
    assert list(active_admins()) == [user]
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.actor_label, entry.action) == (None, "cli", "user.create")


@pytest.mark.parametrize(
    ("username", "password", "error"),
    [
        ("ada", "short", "too short"),
        ("ada", "password123", "too common"),
        ("no spaces allowed", "a long pass phrase", "Enter a valid username"),
    ],
)
def test_create_admin_refuses_a_weak_password_or_a_bad_name(db, username, password, error):
    with pytest.raises(StaffError, match=error):
        create_admin(username=username, email="ada@example.com", password=password, actor_label="cli")
    assert not User.objects.exists()


def test_create_admin_refuses_a_taken_name(agent):
    with pytest.raises(StaffError, match="already a user called AGENT"):
        create_admin(username="AGENT", email="", password="a long pass phrase", actor_label="cli")


def test_a_team_is_created_renamed_and_deleted_with_its_lead_a_member(admin_user, agent, other_agent):
    team = save_team(Team(), name=" Network ", members=[other_agent], lead=agent, actor=admin_user)
    assert team.name == "Network"
    assert set(team.members.all()) == {agent, other_agent}
    save_team(team, name="Networks", members=[agent], lead=agent, actor=admin_user)
    assert set(Team.objects.get().members.all()) == {agent}
    delete_team(team, actor=admin_user)
    assert not Team.objects.exists()
    assert User.objects.filter(pk=agent.pk).exists()
    entries = list(AuditEntry.objects.order_by("id").values_list("action", "before", "after"))
    assert entries == [
        ("team.create", None, {"name": "Network", "lead": "agent", "members": ["agent", "dana"], "assignment": ""}),
        (
            "team.update",
            {"name": "Network", "lead": "agent", "members": ["agent", "dana"], "assignment": ""},
            {"name": "Networks", "lead": "agent", "members": ["agent"], "assignment": ""},
        ),
        ("team.delete", {"name": "Networks", "lead": "agent", "members": ["agent"], "assignment": ""}, None),
    ]


@pytest.mark.parametrize("name", ["Network", "", "x" * 101])
def test_a_team_needs_a_new_name_of_at_most_100_characters(admin_user, name):
    Team.objects.create(name="Network")
    with pytest.raises(StaffError):
        save_team(Team(), name=name, members=[], lead=None, actor=admin_user)
    assert Team.objects.count() == 1


@pytest.mark.postgres  # two connections at once, one waiting on the other's row locks
@pytest.mark.django_db(transaction=True)
def test_two_admins_demoting_each_other_at_once_leave_one_admin(admin_user):
    """Ada demotes Bo while Bo deactivates Ada: each alone leaves an admin, both together would leave none.
    Bo's check waits for Ada's transaction to commit, then sees that Ada is the last admin, and refuses."""
    bo = User.objects.create_user("bo")
    bo.groups.add(Group.objects.get(name=ADMINS_GROUP))
    ada = admin_user
    demoted, may_commit = threading.Event(), threading.Event()

    def ada_demotes_bo():
        try:
            with transaction.atomic():
                update_user(User.objects.get(pk=bo.pk), role=Role.AGENT, teams=[], actor=ada)
                demoted.set()
                may_commit.wait(10)
        finally:
            connection.close()

    def bo_deactivates_ada():
        try:
            set_active(User.objects.get(pk=ada.pk), False, actor=bo)
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(ada_demotes_bo)
        assert demoted.wait(10)
        second = pool.submit(bo_deactivates_ada)
        time.sleep(0.5)
        assert not second.done()  # waiting for Ada's locks
        may_commit.set()
        first.result()
        with pytest.raises(StaffError, match="boss is the last active admin"):
            second.result()
    assert list(active_admins()) == [ada]
