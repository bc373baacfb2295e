"""An SLA warning, then a breach, appearing in the queue as the clock runs (time-machine drives the server's clock;
the scan runs here, as beat would run it)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from playwright.sync_api import expect

from tests.factories import message
from tests.helpers import receive
from tickets import sla
from tickets.models import Calendar, SlaPolicy, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OPENED = datetime(2026, 3, 2, 8, tzinfo=UTC)


def test_a_breach_warning_appears_in_the_queue(console, locmem_channel):
    always = Calendar.objects.create(name="24/7", always_open=True)
    SlaPolicy.objects.create(name="VIP incidents", first_response_minutes=60, resolution_minutes=240, calendar=always)
    receive(locmem_channel, [message("m0", text="The VPN is down for the whole floor")])
    ticket = Ticket.objects.get()
    Ticket.objects.filter(pk=ticket.pk).update(created_at=OPENED, sla_policy=None)
    with time_machine.travel(OPENED, tick=False):  # logged by the desk when it was opened
        sla.start_clocks([ticket.pk])
    ticket.refresh_from_db()
    assert ticket.first_response_due_at == OPENED + timedelta(hours=1)

    # 50 minutes in: past the 75 % warning.
    with time_machine.travel(OPENED + timedelta(minutes=50), tick=False):
        assert sla.scan().warnings == 1
        console.reload()
        due = console.locator("table.tickets tbody tr").first.locator("td.due time")
        expect(due).to_have_text("due in 10\u00a0min")
        expect(due).to_have_class("due due-soon")
        console.get_by_role("link", name="Breaching soon").click()
        expect(console.locator("table.tickets tbody tr")).to_have_count(1)
        expect(console.get_by_role("link", name=ticket.subject)).to_be_visible()

    # Five minutes past the due time: breached, said in words.
    with time_machine.travel(OPENED + timedelta(minutes=65), tick=False):
        assert sla.scan().breaches == 1
        console.get_by_role("link", name="Breached").click()
        due = console.locator("table.tickets tbody tr").first.locator("td.due time")
        expect(due).to_have_text("breached 5\u00a0min ago")
        expect(due).to_have_class("due due-breached")
        console.get_by_role("link", name=ticket.subject).click()
        expect(console.locator("#ticket-facts")).to_contain_text("VIP incidents: first response by")
        expect(console.locator(".event-sla").first).to_be_visible()
