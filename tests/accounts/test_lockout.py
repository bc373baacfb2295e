"""Lockout (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one username from one address, even the
right password is refused until the cool-off has passed, on the sign-in page and at the API's token endpoint."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from rest_framework.test import APIClient

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def sign_in(client, password, username="agent"):
    return client.post(reverse("login"), {"username": username, "password": password})


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def test_200_wrong_passwords_lock_the_account_and_the_right_one_is_refused(client, agent, clock, settings):
    answers = [sign_in(client, f"guess-{n}").status_code for n in range(200)]
    assert answers[: settings.AXES_FAILURE_LIMIT - 1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)  # the form again
    assert set(answers[settings.AXES_FAILURE_LIMIT :]) == {429}

    refused = sign_in(client, "agent-pass-123")
    assert refused.status_code == 429
    assert "Too many failed sign-ins; try again in 15 minutes." in refused.text
    assert '<form method="post"' in refused.text  # the sign-in page, not a bare text
    assert "_auth_user_id" not in client.session


def test_the_account_opens_again_after_the_cool_off(client, agent, clock, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, f"guess-{n}")
    clock.shift(settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert sign_in(client, "agent-pass-123").status_code == 429  # and that attempt starts the cool-off again

    clock.shift(settings.AXES_COOLOFF_TIME + timedelta(seconds=1))
    response = sign_in(client, "agent-pass-123")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(agent.pk)


def test_the_lockout_is_per_username_and_address(client, agent, other_agent, clock, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, f"guess-{n}")
    assert sign_in(client, "dana-pass-123", username="dana").status_code == 302  # another account: not locked
    other_address = client.post(
        reverse("login"), {"username": "agent", "password": "agent-pass-123"}, REMOTE_ADDR="10.0.0.9"
    )
    assert other_address.status_code == 302


def test_the_token_endpoint_locks_out_too_and_answers_json(agent, clock, settings):
    api = APIClient()
    url = reverse("api-token")
    answers = [api.post(url, {"username": "agent", "password": f"guess-{n}"}, format="json") for n in range(50)]
    assert {a.status_code for a in answers[: settings.AXES_FAILURE_LIMIT - 1]} == {400}
    assert answers[-1].status_code == 429

    refused = api.post(url, {"username": "agent", "password": "agent-pass-123"}, format="json")
    assert refused.status_code == 429
    assert refused.json() == {"detail": "Too many failed sign-ins; try again in 15 minutes."}
    assert refused["Retry-After"] == "900"

    clock.shift(settings.AXES_COOLOFF_TIME + timedelta(seconds=1))
    assert api.post(url, {"username": "agent", "password": "agent-pass-123"}, format="json").status_code == 200


def test_failures_at_the_api_count_towards_the_sign_in_page(client, agent, clock, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        APIClient().post(reverse("api-token"), {"username": "agent", "password": f"guess-{n}"}, format="json")
    assert sign_in(client, "agent-pass-123").status_code == 429
