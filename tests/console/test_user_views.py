"""The Users pages (admins): the list, invitations with a working set-password link, role and teams,
deactivation."""

import re

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.test import Client
from django.urls import reverse

from tickets.models import AuditEntry, Team
from tickets.roles import AGENTS_GROUP, Role, role_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize(
    ("name", "args", "method"),
    [
        ("console:user-list", [], "get"),
        ("console:user-invite", [], "get"),
        ("console:user-edit", ["pk"], "get"),
        ("console:user-deactivate", ["pk"], "post"),
        ("console:user-reactivate", ["pk"], "post"),
        ("console:user-resend-invitation", ["pk"], "post"),
        ("console:team-list", [], "get"),
        ("console:team-create", [], "get"),
    ],
)
def test_only_admins_manage_users_and_teams(client, agent, employee, name, args, method):
    url = reverse(name, args=[employee.pk if arg == "pk" else arg for arg in args])
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    for user in (agent, employee):
        client.force_login(user)
        assert getattr(client, method)(url).status_code == 403
    employee.refresh_from_db()
    assert employee.is_active


def test_the_list_shows_role_teams_activity_and_last_login_in_a_fixed_number_of_queries(
    admin_client, admin_user, django_assert_num_queries
):
    agents = Group.objects.get_or_create(name=AGENTS_GROUP)[0]
    network, desk = Team.objects.create(name="Network"), Team.objects.create(name="<b>Desk</b>")
    for number in range(20):
        user = User.objects.create_user(f"agent{number:02}", first_name="<i>Al</i>", is_active=number != 3)
        user.groups.add(agents)
        user.teams.add(network, desk)
    admin_client.get(reverse("console:user-list"))  # warm the session and role lookups
    # session, user, role and broken channels (nav), page count, page, groups, teams
    with django_assert_num_queries(8):
        response = admin_client.get(reverse("console:user-list"))
    body = response.content.decode()
    assert body.count("<bdi>&lt;b&gt;Desk&lt;/b&gt;</bdi>, <bdi>Network</bdi>") == 20
    assert "<i>Al</i>" not in body
    assert body.count(">Agent<") == 20
    assert body.count(">Admin<") == 1
    assert body.count("Deactivated") == 1
    assert "never" in body


def test_inviting_an_agent_emails_a_link_that_sets_their_password(admin_client, client, settings):
    network = Team.objects.create(name="Network")
    response = admin_client.post(
        reverse("console:user-invite"), {"email": "nia@example.com", "role": "agent", "teams": [network.pk]}
    )
    assert response.status_code == 302
    nia = User.objects.get(username="nia@example.com")
    assert role_of(nia) == Role.AGENT
    assert list(nia.teams.all()) == [network]
    assert not nia.has_usable_password()
    [email] = mail.outbox
    assert email.to == ["nia@example.com"]
    assert "boss invited you" in email.body
    link = re.search(r"http://testserver(/password/set/\S+/)", email.body).group(1)

    client.logout()
    form_page = client.get(link, follow=True)
    assert b"Set your password" in form_page.content
    assert b"nia@example.com" in form_page.content
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": "correct horse battery", "new_password2": "correct horse battery"})
    assert done.status_code == 302
    signed_in = client.post(reverse("login"), {"username": "nia@example.com", "password": "correct horse battery"})
    assert signed_in.status_code == 302
    # The link is used up.
    client.logout()
    assert b"expired or was already used" in client.get(link, follow=True).content


def test_a_forged_or_stale_link_sets_nothing(client, admin_client):
    admin_client.post(reverse("console:user-invite"), {"email": "nia@example.com", "role": "admin"})
    link = re.search(r"http://testserver(/password/set/\S+/)", mail.outbox[0].body).group(1)
    forged = re.sub(r"/[^/]+/$", "/abc-0123456789abcdef/", link)
    client.logout()
    assert b"expired or was already used" in client.get(forged, follow=True).content
    assert not User.objects.get(username="nia@example.com").has_usable_password()


def test_an_invitation_to_a_known_address_is_refused_on_the_form(admin_client, agent):
    agent.email = "alex@example.com"
    agent.save()
    response = admin_client.post(reverse("console:user-invite"), {"email": "Alex@example.com", "role": "agent"})
    assert response.status_code == 200
    assert "already a user with the address" in response.content.decode()
    assert not mail.outbox


def test_an_invitation_that_could_not_be_sent_says_so_and_can_be_resent(admin_client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2  # nothing listens on port 1
    response = admin_client.post(
        reverse("console:user-invite"), {"email": "nia@example.com", "role": "agent"}, follow=True
    )
    assert "could not be sent" in response.content.decode()
    nia = User.objects.get(username="nia@example.com")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    response = admin_client.post(reverse("console:user-resend-invitation", args=[nia.pk]), follow=True)
    assert "Invited nia@example.com" in response.content.decode()
    assert len(mail.outbox) == 1


def test_no_invitation_is_resent_to_someone_with_a_password(admin_client, agent):
    response = admin_client.post(reverse("console:user-resend-invitation", args=[agent.pk]), follow=True)
    assert "has no invitation pending" in response.content.decode()
    assert not mail.outbox


def test_an_admin_sets_a_role_and_teams(admin_client, agent):
    network = Team.objects.create(name="Network")
    page = admin_client.get(reverse("console:user-edit", args=[agent.pk])).content.decode()
    assert re.search(r'value="agent"[^>]*checked', page)
    response = admin_client.post(
        reverse("console:user-edit", args=[agent.pk]), {"role": "admin", "teams": [network.pk]}
    )
    assert response.status_code == 302
    assert role_of(User.objects.get(pk=agent.pk)) == Role.ADMIN
    entry = AuditEntry.objects.get(action="user.update", target_id=str(agent.pk))
    assert entry.before == {"role": "agent", "teams": [], "active": True}
    assert entry.after == {"role": "admin", "teams": ["Network"], "active": True}


def test_the_last_admin_is_told_why_they_cannot_demote_themselves(admin_client, admin_user):
    response = admin_client.post(reverse("console:user-edit", args=[admin_user.pk]), {"role": "agent"})
    assert response.status_code == 200
    assert "You cannot change your own role" in response.content.decode()
    assert role_of(User.objects.get(pk=admin_user.pk)) == Role.ADMIN


def test_a_bad_role_is_a_form_error(admin_client, agent):
    response = admin_client.post(reverse("console:user-edit", args=[agent.pk]), {"role": "owner"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_deactivating_signs_the_user_out_and_reactivating_lets_them_back(admin_client, agent):
    agent_browser = Client()
    agent_browser.force_login(agent)
    assert agent_browser.get(reverse("console:ticket-list")).status_code == 200
    response = admin_client.post(reverse("console:user-deactivate", args=[agent.pk]), follow=True)
    assert "Deactivated agent." in response.content.decode()
    assert agent_browser.get(reverse("console:ticket-list")).status_code == 302
    admin_client.post(reverse("console:user-reactivate", args=[agent.pk]))
    assert User.objects.get(pk=agent.pk).is_active


def test_an_admin_cannot_deactivate_themselves(admin_client, admin_user):
    response = admin_client.post(reverse("console:user-deactivate", args=[admin_user.pk]), follow=True)
    assert "You cannot deactivate yourself." in response.content.decode()
    assert User.objects.get(pk=admin_user.pk).is_active


def test_unknown_users_are_not_found(admin_client):
    assert admin_client.get(reverse("console:user-edit", args=[999999])).status_code == 404
    assert admin_client.post(reverse("console:user-deactivate", args=[999999])).status_code == 404


def test_deactivating_takes_a_post(admin_client, agent):
    assert admin_client.get(reverse("console:user-deactivate", args=[agent.pk])).status_code == 405


def test_a_deactivated_agents_api_token_stops_working(admin_client, agent):
    token = Client().post(reverse("api-token"), {"username": "agent", "password": "agent-pass-123"}).json()["token"]
    api = Client(headers={"Authorization": f"Token {token}"})
    assert api.get(reverse("api:ticket-list")).status_code == 200
    admin_client.post(reverse("console:user-deactivate", args=[agent.pk]))
    assert api.get(reverse("api:ticket-list")).status_code == 401
