"""API tokens: issued to agents and admins only, refused once API_TOKEN_TTL has passed, and replaced when asked
for again."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from rest_framework.test import APIClient

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def ask_for_token(username, password):
    return APIClient().post(reverse("api-token"), {"username": username, "password": password}, format="json")


def api_as(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.mark.parametrize("user", ["agent", "admin_user"])
def test_agents_and_admins_get_a_token_that_says_when_it_expires(user, request, clock, settings):
    person = request.getfixturevalue(user)
    response = ask_for_token(person.username, f"{person.username}-pass-123")
    assert response.status_code == 200
    assert response.json()["expires"] == (START + settings.API_TOKEN_TTL).isoformat().replace("+00:00", "Z")
    assert api_as(response.json()["token"]).get(reverse("api:ticket-list")).status_code == 200


def test_employees_get_no_token(employee):
    response = ask_for_token("employee", "employee-pass-123")
    assert response.status_code == 403
    assert response.json() == {"detail": "API tokens are for agents and admins only."}
    assert not employee.__class__.objects.filter(auth_token__isnull=False).exists()


def test_wrong_password_is_a_clear_400(agent):
    response = ask_for_token("agent", "nope")
    assert response.status_code == 400
    assert response.json() == {"detail": "Wrong username or password."}


def test_missing_fields_are_named():
    response = APIClient().post(reverse("api-token"), {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


def test_a_token_expires_and_asking_again_gives_a_fresh_one(agent, clock, settings):
    token = ask_for_token("agent", "agent-pass-123").json()["token"]
    clock.shift(settings.API_TOKEN_TTL - timedelta(seconds=1))
    assert api_as(token).get(reverse("api:ticket-list")).status_code == 200
    assert ask_for_token("agent", "agent-pass-123").json()["token"] == token  # still valid: the same one

    clock.shift(timedelta(seconds=1))
    expired = api_as(token).get(reverse("api:ticket-list"))
    assert expired.status_code == 401
    assert expired.json() == {"detail": "This token has expired: ask /api/auth/token/ for a new one."}

    fresh = ask_for_token("agent", "agent-pass-123").json()["token"]
    assert fresh != token
    assert api_as(fresh).get(reverse("api:ticket-list")).status_code == 200
    assert api_as(token).get(reverse("api:ticket-list")).status_code == 401
