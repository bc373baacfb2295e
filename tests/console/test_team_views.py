"""The Teams pages (admins): create, rename, members and lead, delete."""

import pytest
from django.urls import reverse

from tickets.models import AuditEntry, Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_an_admin_creates_renames_and_deletes_a_team(admin_client, agent, other_agent):
    response = admin_client.post(
        reverse("console:team-create"), {"name": "Network", "members": [other_agent.pk], "lead": agent.pk}
    )
    assert response.status_code == 302
    team = Team.objects.get()
    assert (team.name, team.lead) == ("Network", agent)
    assert set(team.members.all()) == {agent, other_agent}
    edit = reverse("console:team-edit", args=[team.pk])
    assert "Network" in admin_client.get(edit).content.decode()
    admin_client.post(edit, {"name": "Networks", "members": [agent.pk], "lead": ""})
    team.refresh_from_db()
    assert (team.name, team.lead, list(team.members.all())) == ("Networks", None, [agent])
    admin_client.post(reverse("console:team-delete", args=[team.pk]))
    assert not Team.objects.exists()
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "team.create",
        "team.update",
        "team.delete",
    ]


def test_the_list_shows_each_team_escaped_in_a_fixed_number_of_queries(admin_client, agent, django_assert_num_queries):
    for number in range(10):
        team = Team.objects.create(name=f"<b>Team {number}</b>", lead=agent)
        team.members.add(agent)
    admin_client.get(reverse("console:team-list"))
    # session, user, role and broken channels (nav), the teams with their leads and counts
    with django_assert_num_queries(5):
        body = admin_client.get(reverse("console:team-list")).content.decode()
    assert body.count("&lt;b&gt;Team") == 10
    assert "<b>Team" not in body


def test_a_taken_name_is_a_form_error(admin_client):
    Team.objects.create(name="Network")
    response = admin_client.post(reverse("console:team-create"), {"name": "Network"})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Team.objects.count() == 1


def test_only_agents_can_be_members(admin_client, employee):
    response = admin_client.post(reverse("console:team-create"), {"name": "Network", "members": [employee.pk]})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_teams_are_for_admins_only(client, agent):
    team = Team.objects.create(name="Network")
    client.force_login(agent)
    assert client.get(reverse("console:team-list")).status_code == 403
    assert client.post(reverse("console:team-delete", args=[team.pk])).status_code == 403
    assert Team.objects.exists()


def test_deleting_takes_a_post_and_an_existing_team(admin_client):
    team = Team.objects.create(name="Network")
    assert admin_client.get(reverse("console:team-delete", args=[team.pk])).status_code == 405
    assert admin_client.post(reverse("console:team-delete", args=[999999])).status_code == 404
