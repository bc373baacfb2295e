"""The role matrix as people meet it: each role signs in with a password, lands where their work is, is offered
only what it may use, and is refused the rest with a page that says where to go instead."""

import pytest
from playwright.sync_api import expect

from tests.helpers import BROWSER_TIMEOUT_MS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN_ONLY = {"Users": "/console/users/", "Teams": "/console/teams/", "Audit log": "/console/audit/"}


@pytest.fixture
def sign_in(browser, live_server):
    contexts = []

    def sign_in(username, password):
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(BROWSER_TIMEOUT_MS)
        page.goto(live_server.url + "/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        return page

    yield sign_in
    for context in contexts:
        context.close()


def nav(page):
    return page.get_by_role("navigation", name="Console")


def test_an_employee_lands_in_the_portal_and_is_pointed_back_there_from_the_console(sign_in, live_server, employee):
    page = sign_in("employee", "employee-pass-123")
    expect(page).to_have_url(live_server.url + "/portal/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()

    for url in ["/console/", "/console/channels/", *ADMIN_ONLY.values()]:
        response = page.goto(live_server.url + url)
        assert response.status == 403, url
        expect(page.get_by_role("heading", name="You can’t open this page")).to_be_visible()
    page.get_by_role("link", name="go to the helpdesk portal").click()
    expect(page).to_have_url(live_server.url + "/portal/")


def test_an_agent_works_tickets_and_is_offered_no_admin_page(sign_in, live_server, agent):
    page = sign_in("agent", "agent-pass-123")
    expect(page).to_have_url(live_server.url + "/console/")
    for name in ["Tickets", "Triage", "Channels", "Macros"]:
        expect(nav(page).get_by_role("link", name=name, exact=False).first).to_be_visible()
    for name, url in ADMIN_ONLY.items():
        expect(nav(page).get_by_role("link", name=name)).to_have_count(0)
        assert page.goto(live_server.url + url).status == 403, url
    page.goto(live_server.url + "/console/channels/")
    expect(page.get_by_role("link", name="Add channel")).to_have_count(0)


def test_an_admin_is_offered_the_admin_pages_and_each_opens(sign_in, live_server, admin_user):
    page = sign_in("boss", "boss-pass-123")
    expect(page).to_have_url(live_server.url + "/console/")
    for name, url in ADMIN_ONLY.items():
        nav(page).get_by_role("link", name=name).click()
        expect(page).to_have_url(live_server.url + url)
        expect(page.get_by_role("heading", level=1, name=name)).to_be_visible()
    nav(page).get_by_role("link", name="Channels", exact=False).first.click()
    page.get_by_role("link", name="Add channel").click()
    expect(page).to_have_url(live_server.url + "/console/channels/new/")
