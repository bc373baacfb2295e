"""Basic accessibility and small screens, checked in the browser.

axe-core (bundled by axe-playwright-python) audits each console page for serious and critical
WCAG violations: missing labels, contrast, focus order, landmarks, ARIA misuse. On a phone-sized
viewport no page may scroll sideways, even with hostile text (long unbroken strings, RTL, markup).
"""

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse

from tests.factories import message
from tests.helpers import (
    receive,
)
from tickets.merging import merge_tickets
from tickets.models import Message, Ticket
from tickets.replies import add_note

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


HOSTILE = [
    "x" * 400,  # one unbroken word
    "https://example.com/" + "a/" * 150,  # one unbroken link
    "مرحبا، لا أستطيع الدخول إلى البريد 📧",  # right-to-left with an emoji
    '<img src=x onerror="alert(1)"> **bold** [link](javascript:alert(1))',
]


@pytest.fixture
def hostile_ticket(locmem_channel, agent):
    receive(
        locmem_channel,
        [
            message(f"m{n}", user=f"u{n}", name=f"Person {'w' * 60} {n}", text=text, minute=n)
            for n, text in enumerate(HOSTILE)
        ],
    )
    receive(
        locmem_channel, [message("m9", user="u0", name="Person", text="follow-up " + "y" * 300, thread="m0", minute=9)]
    )
    ticket = Ticket.objects.get(messages__external_id="m0")
    add_note(ticket=ticket, author=agent, body="z" * 300)
    # Two others merged: that page labels each message with its conversation and lists both people.
    pair = Ticket.objects.filter(messages__external_id__in=["m1", "m2"]).values_list("pk", flat=True)
    merge_tickets(ticket_ids=list(pair), actor=agent)
    return ticket


def pages(live_server, ticket):
    return {
        "queue": live_server.url + reverse("console:ticket-list"),
        "queue, filtered": live_server.url + reverse("console:ticket-list") + "?view=open&q=Person",
        "ticket": live_server.url + reverse("console:ticket-detail", args=[ticket.pk]),
        "merged ticket": live_server.url
        + reverse("console:ticket-detail", args=[Ticket.objects.get(messages__external_id="m2").pk]),
        "triage": live_server.url + reverse("console:triage"),
        "channels": live_server.url + reverse("console:channels"),
        "reports": live_server.url + reverse("console:reports") + "?days=7&by=channel",
    }


def serious_violations(page):
    results = Axe().run(page)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


PHONE = {"width": 390, "height": 844}


def test_console_pages_have_no_serious_accessibility_violations(console, live_server, hostile_ticket):
    found = {}
    for name, url in pages(live_server, hostile_ticket).items():
        console.goto(url)
        if violations := serious_violations(console):
            found[name] = violations
    assert not found, found


def test_login_page_is_accessible(browser, live_server, db):
    page = browser.new_page()
    page.goto(live_server.url + "/login/")
    assert serious_violations(page) == []
    page.close()


def test_no_page_scrolls_sideways_on_a_phone(browser, live_server, agent, hostile_ticket):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", "agent")
    page.fill("#id_password", "agent-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/")
    overflowing = {}
    for name, url in pages(live_server, hostile_ticket).items():
        page.goto(url)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            overflowing[name] = width
    context.close()
    assert not overflowing, f"pages wider than the {PHONE['width']}px screen: {overflowing}"
    assert Message.objects.filter(ticket=hostile_ticket).count() == 3
