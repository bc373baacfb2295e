"""Signing in to the portal by a link sent by email: single use, expiring, for employees only, and the same
answer whether or not the address is known."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.contrib.auth.models import User
from django.urls import reverse

from portal.magic_links import LINKS_PER_ADDRESS
from tickets.models import Contact, Identity

pytestmark = pytest.mark.django_db

SIGN_IN = reverse("portal:sign-in")
LINK = re.compile(r"https?://\S+")


def ask_for_link(client, email):
    response = client.post(SIGN_IN, {"email": email})
    assert response.status_code == 302
    return client.get(response["Location"])


def link_in(mail):
    """The path and query of the sign-in link in ``mail`` (the site's public URL is not the test client's)."""
    url = urlsplit(LINK.search(mail.body).group())
    return f"{url.path}?{url.query}"


def use_link(client, link):
    return client.post(reverse("portal:sign-in-link"), {"token": parse_qs(urlsplit(link).query)["token"][0]})


def signed_in_user(client):
    return client.session.get("_auth_user_id")


def test_a_known_employee_signs_in_once_with_the_emailed_link(client, maya, mailoutbox):
    ask_for_link(client, "Maya@Example.com")
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["maya@example.com"]
    link = link_in(mailoutbox[0])

    confirm = client.get(link)  # opening the link (a mail scanner may) asks for a click: it signs no one in
    assert confirm.status_code == 200
    assert "maya@example.com" in confirm.content.decode()
    assert signed_in_user(client) is None

    response = use_link(client, link)
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:tickets")
    assert signed_in_user(client) == str(maya.pk)

    client.logout()
    reused = use_link(client, link)
    assert reused.status_code == 400
    assert "does not work any more" in reused.content.decode()
    assert signed_in_user(client) is None


def test_an_expired_link_signs_no_one_in(client, maya, mailoutbox):
    ask_for_link(client, "maya@example.com")
    link = link_in(mailoutbox[0])
    with time_machine.travel(timedelta(minutes=16)):
        assert client.get(link).status_code == 400
        assert use_link(client, link).status_code == 400
    assert signed_in_user(client) is None


def test_a_link_still_works_within_its_time(client, maya, mailoutbox):
    ask_for_link(client, "maya@example.com")
    with time_machine.travel(timedelta(minutes=14)):
        assert use_link(client, link_in(mailoutbox[0])).status_code == 302


def test_a_tampered_token_is_refused(client, maya, mailoutbox):
    ask_for_link(client, "maya@example.com")
    link = link_in(mailoutbox[0])
    assert use_link(client, link[:-3] + "xyz").status_code == 400
    assert client.post(reverse("portal:sign-in-link")).status_code == 400
    assert client.get(reverse("portal:sign-in-link") + "?token=nonsense").status_code == 400


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client, maya, mailoutbox):
    known = ask_for_link(client, "maya@example.com")
    unknown = ask_for_link(client, "nobody@example.com")
    assert unknown.status_code == known.status_code == 200
    assert unknown.content == known.content
    assert [mail.to for mail in mailoutbox] == [["maya@example.com"]]


def test_agents_never_sign_in_by_link(client, agent, mailoutbox):
    agent.email = "alex@example.com"
    agent.save()
    ask_for_link(client, "alex@example.com")
    assert mailoutbox == []


def test_someone_known_from_their_tickets_gets_an_account_on_first_sign_in(client, mailoutbox):
    contact = Contact.objects.create(display_name="Leo Okafor")
    Identity.objects.create(contact=contact, namespace="slack:T1", external_id="U1", email="leo@example.com")
    ask_for_link(client, "leo@example.com")
    link = link_in(mailoutbox[0])
    assert not User.objects.filter(email="leo@example.com").exists()  # not before they sign in

    assert use_link(client, link).status_code == 302
    leo = User.objects.get(email="leo@example.com")
    assert (leo.first_name, leo.last_name, leo.has_usable_password()) == ("Leo", "Okafor", False)
    assert signed_in_user(client) == str(leo.pk)
    client.logout()
    assert use_link(client, link).status_code == 400  # used: the account exists now


def test_links_to_one_address_are_rate_limited(client, maya, mailoutbox):
    for _ in range(LINKS_PER_ADDRESS + 2):
        ask_for_link(client, "maya@example.com")
    assert len(mailoutbox) == LINKS_PER_ADDRESS


def test_links_are_sent_while_the_cache_is_down(client, maya, mailoutbox, dead_cache):
    ask_for_link(client, "maya@example.com")
    assert len(mailoutbox) == 1


def test_a_malformed_address_is_refused_clearly(client, mailoutbox):
    response = client.post(SIGN_IN, {"email": "not an address"})
    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()
    assert mailoutbox == []


def test_the_company_sign_in_is_offered_only_when_configured(client, settings):
    assert "company account" not in client.get(SIGN_IN).content.decode()
    settings.OIDC_ENABLED = True
    response = client.get(SIGN_IN)
    assert response.status_code == 200
    assert 'href="/oidc/authenticate/?next=%2Fportal%2F"' in response.content.decode()


def test_the_link_leads_to_the_page_that_asked_for_sign_in(client, maya, mailoutbox):
    wanted = reverse("portal:ticket-new")
    to_sign_in = client.get(wanted)["Location"]
    assert to_sign_in.startswith(SIGN_IN)
    page = client.get(to_sign_in).content.decode()
    assert f'name="next" value="{wanted}"' in page
    client.post(SIGN_IN, {"email": "maya@example.com", "next": wanted})
    assert use_link(client, link_in(mailoutbox[0]))["Location"] == wanted


def test_the_link_never_leads_off_the_site(client, maya, mailoutbox):
    client.post(SIGN_IN, {"email": "maya@example.com", "next": "https://evil.example/phish"})
    assert use_link(client, link_in(mailoutbox[0]))["Location"] == reverse("portal:tickets")


@pytest.mark.urls("tests.portal.oidc_urls")
def test_the_company_sign_in_leads_back_to_the_portal(client, settings):
    settings.OIDC_ENABLED = True
    page = client.get(SIGN_IN).content.decode()
    assert 'href="/oidc/authenticate/?next=%2Fportal%2F"' in page
    assert "Sign in with company account" in page
