"""The optional second factor: an agent turns it on by scanning and confirming a code; from then on a password
sign-in waits for a code before the console or the API, and a token needs the code too."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from tickets.models import AuditEntry

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STEP = timedelta(seconds=30)
#: After a wrong code, django-otp refuses any code for a second (then 2, 4…).
THROTTLE = timedelta(seconds=1)


def code(device) -> str:
    return f"{TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token():06d}"


def wrong(device) -> str:
    return f"{(int(code(device)) + 1) % 1_000_000:06d}"


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def enrolled(agent, clock):
    """The agent, with a confirmed authenticator, a step after they confirmed it (a code is good once)."""
    device = TOTPDevice.objects.create(user=agent, name="phone", confirmed=True)
    clock.shift(STEP)
    return device


def sign_in(client, username="agent", password="agent-pass-123"):
    return client.post(reverse("login"), {"username": username, "password": password, "next": "/console/"})


def test_an_agent_turns_it_on_with_a_code_from_the_app(agent_client, agent, clock):
    page = agent_client.get(reverse("accounts:two-factor"))
    assert "is <strong>off</strong>" in page.text
    device = TOTPDevice.objects.get(user=agent, confirmed=False)
    assert f'href="{device.config_url.replace("&", "&amp;")}"' in page.text
    assert '<img class="qr-code" src="data:image/svg+xml;base64,' in page.text

    refused = agent_client.post(reverse("accounts:two-factor"), {"code": wrong(device)})
    assert "That code is not right" in refused.text
    assert not TOTPDevice.objects.filter(confirmed=True).exists()
    throttled = agent_client.post(reverse("accounts:two-factor"), {"code": code(device)})
    assert "Too many wrong codes in a row" in throttled.text

    clock.shift(THROTTLE * 3)
    accepted = agent_client.post(reverse("accounts:two-factor"), {"code": code(device)}, follow=True)
    assert "Two-factor sign-in is on" in accepted.text
    assert "is <strong>on</strong>" in accepted.text
    assert TOTPDevice.objects.get(user=agent).confirmed
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.target_id) == (agent, "user.two_factor", str(agent.pk))
    assert entry.changes() == [("two_factor", "off", "on")]
    # This session gave the code: it goes on working.
    assert agent_client.get(reverse("console:ticket-list")).status_code == 200


def test_sign_in_waits_for_the_code(client, enrolled, clock):
    response = sign_in(client)
    assert response.status_code == 302
    assert response.url == reverse("accounts:verify") + "?next=%2Fconsole%2F"
    # Signed in, not through: the console and the API send the session to the code page or refuse it.
    held = client.get(reverse("console:ticket-list"))
    assert held.status_code == 302
    assert held.url.startswith(reverse("accounts:verify") + "?next=")
    assert client.get(reverse("console:ticket-rows"), headers={"HX-Request": "true"}).status_code == 401
    assert client.get(reverse("api:ticket-list")).status_code == 403

    form = client.get(response.url)
    assert "Enter your code" in form.text
    refused = client.post(reverse("accounts:verify"), {"code": wrong(enrolled), "next": "/console/"})
    assert refused.status_code == 200
    assert "That code is not right" in refused.text
    assert client.get(reverse("console:ticket-list")).status_code == 302

    clock.shift(THROTTLE)
    through = client.post(reverse("accounts:verify"), {"code": code(enrolled), "next": "/console/"})
    assert through.status_code == 302
    assert through.url == "/console/"
    assert client.get(reverse("console:ticket-list")).status_code == 200
    assert client.get(reverse("api:ticket-list")).status_code == 200


def test_the_code_page_does_not_send_anyone_elsewhere(client, enrolled):
    sign_in(client)
    response = client.post(reverse("accounts:verify"), {"code": code(enrolled), "next": "https://evil.example/"})
    assert response.url == "/"


def test_a_token_needs_the_code_too(enrolled, clock):
    url = reverse("api-token")
    without = APIClient().post(url, {"username": "agent", "password": "agent-pass-123"}, format="json")
    assert without.status_code == 403
    assert "send the current code from your authenticator app as “otp”" in without.json()["detail"]
    bad = APIClient().post(
        url, {"username": "agent", "password": "agent-pass-123", "otp": wrong(enrolled)}, format="json"
    )
    assert bad.status_code == 403
    clock.shift(THROTTLE)
    good = APIClient().post(
        url, {"username": "agent", "password": "agent-pass-123", "otp": code(enrolled)}, format="json"
    )
    assert good.status_code == 200
    assert "token" in good.json()


def test_turning_it_off_takes_a_code(client, enrolled, clock):
    sign_in(client)
    client.post(reverse("accounts:verify"), {"code": code(enrolled)})
    clock.shift(STEP)
    kept = client.post(reverse("accounts:two-factor"), {"code": wrong(enrolled)})
    assert "still on" in kept.text
    clock.shift(THROTTLE)
    off = client.post(reverse("accounts:two-factor"), {"code": code(enrolled)}, follow=True)
    assert "Two-factor sign-in is off." in off.text
    assert not TOTPDevice.objects.filter(confirmed=True).exists()
    assert AuditEntry.objects.get().changes() == [("two_factor", "on", "off")]

    client.logout()
    assert sign_in(client).url == "/console/"  # straight in


def test_users_without_a_device_sign_in_straight_to_the_console(client, agent):
    assert sign_in(client).url == "/console/"


def test_the_two_factor_page_is_for_agents_and_admins(client, employee):
    assert client.get(reverse("accounts:two-factor")).status_code == 302  # to sign in
    client.force_login(employee)
    assert client.get(reverse("accounts:two-factor")).status_code == 403
    assert not TOTPDevice.objects.exists()


def test_the_admin_site_waits_for_the_code_too(client, clock, db):
    boss = User.objects.create_superuser("root", password="root-pass-123")
    device = TOTPDevice.objects.create(user=boss, name="phone", confirmed=True)
    clock.shift(STEP)
    signed_in = client.post(
        reverse("admin:login"), {"username": "root", "password": "root-pass-123", "next": "/admin/"}
    )
    assert signed_in.status_code == 302
    held = client.get("/admin/", follow=True)
    assert held.redirect_chain[-1][0].startswith(reverse("accounts:verify"))

    client.post(reverse("accounts:verify"), {"code": code(device)})
    assert client.get("/admin/").status_code == 200
