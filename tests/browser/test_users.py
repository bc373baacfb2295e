"""Users and teams in the browser: an admin invites an agent, who sets a password from the email's link, signs
in, chooses a time zone and reads the timeline in it; the admin pages pass axe and fit a phone."""

import re
from datetime import UTC, datetime

import pytest
from django.core import mail
from django.urls import reverse
from playwright.sync_api import expect

from tests.browser.test_accessibility import PHONE, serious_violations
from tests.helpers import signed_in_page
from tickets.models import Message, Team

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE_NAME = '<img src=x onerror="alert(1)">' + "w" * 60


def test_an_invited_agent_sets_a_password_and_reads_times_in_their_zone(browser, live_server, admin_user, ticket):
    Message.objects.filter(ticket=ticket).update(created_at=datetime(2026, 7, 15, 12, 3, tzinfo=UTC))
    Team.objects.create(name="Network")
    admin = signed_in_page(browser, live_server, "boss", "boss-pass-123")
    admin.get_by_role("link", name="Users").click()
    admin.get_by_role("link", name="Invite an agent or admin").click()
    admin.get_by_label("Email").fill("nia@example.com")
    admin.get_by_label("Agent").check()
    admin.get_by_label("Network").check()
    admin.get_by_role("button", name="Send the invitation").click()
    expect(admin.get_by_role("status")).to_contain_text("Invited nia@example.com")
    expect(admin.get_by_role("row", name=re.compile("nia@example.com"))).to_contain_text("Network")
    admin.context.close()

    # The link names the site as the admin reached it: the live server.
    link = re.search(r"http://\S+/password/set/\S+/", mail.outbox[0].body).group(0)
    assert link.startswith(live_server.url)
    context = browser.new_context()
    page = context.new_page()
    page.goto(link)
    expect(page.get_by_role("heading")).to_have_text("Set your password")
    page.fill("#id_new_password1", "correct horse battery")
    page.fill("#id_new_password2", "correct horse battery")
    page.get_by_role("button", name="Set my password").click()
    page.get_by_role("link", name="sign in").click()
    page.fill("#id_username", "nia@example.com")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/")

    page.get_by_role("link", name="nia@example.com (my profile)").click()
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Europe/Berlin")
    page.goto(live_server.url + reverse("console:ticket-detail", args=[ticket.pk]))
    expect(page.locator(f"#message-{ticket.messages.get().pk} time")).to_have_text("15 Jul 2026, 14:03 CEST")
    context.close()


def admin_pages(live_server, admin_user):
    team = Team.objects.create(name=HOSTILE_NAME, lead=admin_user)
    team.members.add(admin_user)
    admin_user.first_name = HOSTILE_NAME
    admin_user.save()
    return {
        "users": reverse("console:user-list"),
        "invite": reverse("console:user-invite"),
        "user": reverse("console:user-edit", args=[admin_user.pk]),
        "teams": reverse("console:team-list"),
        "team": reverse("console:team-edit", args=[team.pk]),
        "new team": reverse("console:team-create"),
        "profile": reverse("console:my-profile"),
    }


def test_the_admin_pages_are_accessible_and_fit_a_phone(browser, live_server, admin_user):
    urls = admin_pages(live_server, admin_user)
    page = signed_in_page(browser, live_server, "boss", "boss-pass-123")
    page.set_viewport_size(PHONE)
    found, overflowing = {}, {}
    for name, url in urls.items():
        page.goto(live_server.url + url)
        if violations := serious_violations(page):
            found[name] = violations
        if (width := page.evaluate("document.documentElement.scrollWidth")) > PHONE["width"]:
            overflowing[name] = width
    page.context.close()
    assert not found, found
    assert not overflowing, f"pages wider than the {PHONE['width']}px screen: {overflowing}"
