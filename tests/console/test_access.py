"""Who may use the console: agents and admins; others are sent to log in or refused."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import mention
from tests.helpers import TRIAGE, awaiting_triage, length_url, outbound, reply_url, x_ticket
from tickets.models import Macro


@pytest.mark.django_db
def group_queries(client, url):
    """How many times a GET of ``url`` reads the user's groups (not the assignee list's JOIN of them)."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return sum('FROM "auth_group"' in query["sql"] for query in queries)


@pytest.mark.django_db
def test_anonymous_user_is_sent_to_login(client):
    """Anonymous visitors of a console page are redirected to the login page, keeping where they were going."""
    response = client.get(reverse("console:ticket-list"))
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={reverse('console:ticket-list')}"


@pytest.mark.django_db
def test_anonymous_poll_reloads_the_page(client):
    """An htmx poll after the session expired asks for a full reload instead of swapping in the login form."""
    response = client.get(reverse("console:ticket-rows"), headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response["HX-Refresh"] == "true"


def test_employee_gets_403(client, employee, ticket):
    """Signed-in users who are not agents get the 403 page, on pages and on actions."""
    client.force_login(employee)
    response = client.get(reverse("console:ticket-list"))
    assert response.status_code == 403
    assert "for helpdesk agents" in response.content.decode()
    assert client.post(reply_url(ticket), {"body": "hi"}).status_code == 403
    assert not outbound(ticket).exists()


def test_the_role_is_looked_up_once_per_request_and_never_kept(client, admin_user, agent):
    """Pages that ask for the role again (macros) reuse the request's; a demoted agent is out at once."""
    client.force_login(admin_user)
    shared = Macro.objects.create(name="Shared", body="Hello")
    assert group_queries(client, reverse("console:macro-edit", args=[shared.pk])) == 1
    assert group_queries(client, reverse("console:macro-list")) == 1

    client.force_login(agent)
    assert client.get(reverse("console:ticket-list")).status_code == 200
    agent.groups.clear()
    assert client.get(reverse("console:ticket-list")).status_code == 403


def test_login_page_signs_in(client, agent):
    """The login page has labelled fields and signs an agent in to the console."""
    html = client.get(reverse("login")).content.decode()
    assert '<label for="id_username">' in html
    assert '<label for="id_password">' in html
    response = client.post(reverse("login"), {"username": "agent", "password": "agent-pass-123"}, follow=True)
    assert response.redirect_chain[-1] == (reverse("console:ticket-list"), 302)  # by way of "/", which knows roles


def test_new_pages_are_for_agents_only(client, employee, offline_x_channel):
    """Employees get 403 on the triage list, its actions, the channels page and the counter; nothing changes."""
    ticket = x_ticket(offline_x_channel, summoned=True)
    (row,) = awaiting_triage(offline_x_channel, [mention(7)])
    client.force_login(employee)
    assert client.get(reverse("console:triage")).status_code == 403
    assert client.get(reverse("console:channels")).status_code == 403
    assert client.post(reverse("console:triage-accept"), {"id": row.pk}).status_code == 403
    assert client.post(reverse("console:triage-dismiss"), {"id": row.pk}).status_code == 403
    assert client.post(length_url(ticket), {"body": "hi"}).status_code == 403
    row.refresh_from_db()
    assert row.status == TRIAGE
    assert row.triaged_by is None
