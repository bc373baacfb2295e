"""Single sign-on with OpenID Connect against a local provider (emulators/oidc) that the tests start: people are
matched by verified email, newcomers are employees, and the second factor still applies."""

import urllib.parse

import pytest
import requests
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from helpdesk.oidc_discovery import provider_endpoints
from tests.helpers import OIDC_ANN
from tickets.roles import Role, role_of


def sso_sign_in(client, provider, next_url=None):
    """Click "Sign in with…", let the provider approve, and come back: the callback's answer."""
    start = client.get(reverse("oidc_authentication_init"), {"next": next_url} if next_url else {})
    assert start.status_code == 302
    assert start.url.startswith(f"{provider.issuer}/authorize?")
    at_provider = requests.Session()
    at_provider.trust_env = False
    approved = at_provider.get(start.url, allow_redirects=False, timeout=10)
    assert approved.status_code == 302, approved.text
    back = urllib.parse.urlsplit(approved.headers["Location"])
    assert back.path == reverse("oidc_authentication_callback")
    return client.get(f"{back.path}?{back.query}")


def test_the_sign_in_page_offers_sso_when_it_is_on(client, oidc_provider, db):
    page = client.get(reverse("login"), {"next": "/console/"})
    assert 'href="/oidc/authenticate/?next=/console/">Sign in with Acme ID</a>' in page.text


@pytest.mark.django_db
def test_without_configuration_there_is_no_sso(client):
    assert "Sign in with" not in client.get(reverse("login")).text
    assert client.get(reverse("oidc_authentication_init")).status_code == 404
    assert client.get(reverse("oidc_authentication_callback")).status_code == 404


def test_a_newcomer_signs_in_as_an_employee(client, oidc_provider, db):
    response = sso_sign_in(client, oidc_provider)
    assert response.status_code == 302
    assert response.url == "/"
    user = User.objects.get(email__iexact="ann.employee@example.com")
    assert (user.username, user.first_name, user.last_name) == ("Ann.Employee@example.com", "Ann", "Employee")
    assert role_of(user) == Role.EMPLOYEE
    assert client.session["_auth_user_id"] == str(user.pk)


def test_an_agent_is_matched_by_email_and_reaches_the_console(client, oidc_provider, agent):
    agent.email = "ann.employee@EXAMPLE.com"
    agent.save()
    response = sso_sign_in(client, oidc_provider, next_url="/console/")
    assert response.url == "/console/"
    assert User.objects.count() == 1
    assert client.get(response.url).status_code == 200


def test_an_unverified_email_is_refused(client, oidc_provider, agent):
    agent.email = OIDC_ANN["email"]
    agent.save()
    oidc_provider.sign_in_as({**OIDC_ANN, "email_verified": False})
    response = sso_sign_in(client, oidc_provider)
    assert response.url == "/login/?sso=failed"
    assert "_auth_user_id" not in client.session
    assert "Single sign-on did not complete" in client.get(response.url).text
    assert User.objects.count() == 1


def test_a_deactivated_person_is_refused_and_not_signed_up_again(client, oidc_provider, agent):
    agent.email = OIDC_ANN["email"]
    agent.is_active = False
    agent.save()
    assert sso_sign_in(client, oidc_provider).url == "/login/?sso=failed"
    assert "_auth_user_id" not in client.session
    assert User.objects.count() == 1


def test_sso_still_asks_for_the_second_factor(client, oidc_provider, agent):
    agent.email = OIDC_ANN["email"]
    agent.save()
    TOTPDevice.objects.create(user=agent, name="phone", confirmed=True)
    landed = sso_sign_in(client, oidc_provider, next_url="/console/")
    held = client.get(landed.url)
    assert held.status_code == 302
    assert held.url.startswith(reverse("accounts:verify"))


def test_discovery_needs_an_issuer_or_every_endpoint(oidc_provider_server):
    with pytest.raises(ImproperlyConfigured, match="set OIDC_ISSUER"):
        provider_endpoints({})
    endpoints = provider_endpoints({"OIDC_ISSUER": oidc_provider_server.issuer + "/"})
    assert endpoints["OIDC_OP_JWKS_ENDPOINT"] == f"{oidc_provider_server.issuer}/jwks"
