"""Signing in, in a real browser: the lockout after repeated wrong passwords, and the second factor's page (its QR
code is an image the Content-Security-Policy allows)."""

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from tests.helpers import BROWSER_TIMEOUT_MS, OIDC_ANN, signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(BROWSER_TIMEOUT_MS)
    violations: list[str] = []
    page.on("console", lambda entry: violations.append(entry.text) if "Content Security Policy" in entry.text else None)
    yield page
    context.close()
    assert violations == []


def sign_in(page, password):
    page.fill("#id_username", "agent")
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def test_wrong_passwords_lock_the_sign_in(page, live_server, agent, settings):
    page.goto(live_server.url + "/login/")
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(page, f"guess-{n}")
        expect(page.get_by_role("alert")).to_contain_text("Please enter a correct username and password")
    sign_in(page, "one-more-guess")
    expect(page.get_by_role("alert")).to_have_text("Too many failed sign-ins; try again in 15 minutes.")

    sign_in(page, "agent-pass-123")  # the right one, during the lockout
    expect(page.get_by_role("alert")).to_have_text("Too many failed sign-ins; try again in 15 minutes.")
    expect(page).to_have_url(live_server.url + "/login/")


def test_an_agent_turns_on_two_factor_sign_in(browser, live_server, agent):
    console = signed_in_page(browser, live_server, "agent", "agent-pass-123")
    console.get_by_role("link", name="Two-factor sign-in").click()
    qr = console.locator("img.qr-code")
    expect(qr).to_be_visible()
    assert console.evaluate("img => img.naturalWidth", qr.element_handle()) > 0

    device = TOTPDevice.objects.get(user=agent)
    code = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token()
    console.fill("#id_code", f"{code:06d}")
    console.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(console.get_by_role("status")).to_have_text(
        "Two-factor sign-in is on: from now on you will be asked for a code."
    )
    console.context.close()
    assert console.csp_violations == []


def test_an_agent_signs_in_with_sso(page, live_server, agent, oidc_provider):
    """The whole round trip in the browser: the button, the provider (which approves at once), and back."""
    agent.email = OIDC_ANN["email"]
    agent.save()
    page.goto(live_server.url + "/login/")
    page.get_by_role("link", name="Sign in with Acme ID").click()
    expect(page).to_have_url(live_server.url + "/console/")
    expect(page.get_by_text("Alex Agent")).to_be_visible()
