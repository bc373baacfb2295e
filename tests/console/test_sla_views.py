"""SLA in the console: the queue's Due column, sort and views; the ticket's SLA fact; admins' calendar and policy pages."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from tests.helpers import open_tickets, queries_for
from tickets import sla
from tickets.models import AuditEntry, Calendar, SlaPolicy, Ticket

LIST = reverse("console:ticket-list")
# Monday 2 March 2026, 09:00 CET.
NOW = datetime(2026, 3, 2, 8, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy(db):
    always = Calendar.objects.create(name="24x7", always_open=True)
    return SlaPolicy.objects.create(name="Default", first_response_minutes=60, resolution_minutes=480, calendar=always)


def tickets_due(channel, count, *, first=0):
    """``count`` tickets under the policy, opened at NOW (first response due at 10:00 CET)."""
    with time_machine.travel(NOW, tick=False):
        tickets = open_tickets(channel, count, first=first)
    # Opened at NOW (the factories' messages are dated by the real clock), then the clocks started again from there.
    Ticket.objects.filter(pk__in=[t.pk for t in tickets]).update(created_at=NOW, sla_policy=None)
    with time_machine.travel(NOW, tick=False):  # the desk logs them at NOW too
        sla.start_clocks([t.pk for t in tickets])
    return list(Ticket.objects.filter(pk__in=[t.pk for t in tickets]).order_by("pk"))


def test_the_due_column_says_the_state_in_words(agent_client, locmem_channel, policy):
    soon, late, calm = tickets_due(locmem_channel, 3)
    Ticket.objects.filter(pk=soon.pk).update(first_response_due_at=NOW + timedelta(minutes=25))
    Ticket.objects.filter(pk=late.pk).update(first_response_due_at=NOW - timedelta(minutes=5))
    Ticket.objects.filter(pk=calm.pk).update(first_response_due_at=NOW + timedelta(hours=3))
    with time_machine.travel(NOW, tick=False):
        html = agent_client.get(LIST).content.decode()
    assert '<th scope="col">Due</th>' in html
    assert 'class="due due-soon"' in html
    assert "due in 25\u00a0min" in html
    assert 'class="due due-breached"' in html
    assert "breached 5\u00a0min ago" in html
    assert "due in 3\u00a0h" in html


def test_breaching_soon_and_breached_views_and_the_due_sort(agent_client, locmem_channel, policy):
    soon, late, calm = tickets_due(locmem_channel, 3)
    Ticket.objects.filter(pk=soon.pk).update(first_response_due_at=NOW + timedelta(minutes=25))
    Ticket.objects.filter(pk=late.pk).update(first_response_due_at=NOW - timedelta(minutes=5))
    Ticket.objects.filter(pk=calm.pk).update(first_response_due_at=NOW + timedelta(hours=3))
    Ticket.objects.filter(pk=calm.pk).update(resolution_due_at=NOW + timedelta(hours=10))
    with time_machine.travel(NOW, tick=False):
        breaching = agent_client.get(LIST, {"view": "breaching"}).context["tickets"]
        breached = agent_client.get(LIST, {"view": "breached"}).context["tickets"]
        by_due = agent_client.get(LIST, {"sort": "due"}).context["tickets"]
    assert [t.pk for t in breaching] == [soon.pk]
    assert [t.pk for t in breached] == [late.pk]
    assert by_due[0].pk != calm.pk
    assert by_due[-1].pk == calm.pk  # its resolution is due last


def test_the_queue_query_count_does_not_grow_with_sla_columns(agent_client, locmem_channel, policy):
    tickets_due(locmem_channel, 5)
    with time_machine.travel(NOW, tick=False):
        few = queries_for(agent_client, LIST, cold_cache=True)
    tickets_due(locmem_channel, 40, first=100)
    with time_machine.travel(NOW, tick=False):
        assert queries_for(agent_client, LIST, cold_cache=True) == few
        assert queries_for(agent_client, f"{LIST}?view=breached", cold_cache=True) == few


def test_the_ticket_page_shows_the_policy_and_its_due_time(agent_client, locmem_channel, policy):
    (ticket,) = tickets_due(locmem_channel, 1)
    with time_machine.travel(NOW, tick=False):
        html = agent_client.get(reverse("console:ticket-detail", args=[ticket.pk])).content.decode()
    assert "<dt>SLA</dt>" in html
    assert "Default</bdi>: first response by" in html
    assert "SLA: " in html  # the choice on the timeline


def test_admin_creates_a_calendar_and_a_policy_audited(client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        reverse("console:sla-calendar-create"),
        {
            "name": "Office Berlin",
            "time_zone": "Europe/Berlin",
            "holiday_country": "de",
            "day_0": "08:00-12:00, 13:00-18:00",
            "custom_holidays": "2026-12-24 Christmas Eve",
        },
    )
    assert response.status_code == 302
    calendar = Calendar.objects.get()
    assert calendar.hours == {"0": [["08:00", "12:00"], ["13:00", "18:00"]]}
    assert calendar.holiday_country == "DE"
    assert calendar.custom_holidays.get().name == "Christmas Eve"
    response = client.post(
        reverse("console:sla-policy-create"),
        {
            "name": "VIP",
            "position": 1,
            "active": "on",
            "priorities": ["3", "4"],
            "vip_only": "on",
            "first_response_minutes": 30,
            "resolution_minutes": 240,
            "calendar": calendar.pk,
            "warning_percent": 75,
            "notify": "on",
        },
    )
    assert response.status_code == 302
    assert SlaPolicy.objects.get().priorities == [3, 4]
    assert set(AuditEntry.objects.values_list("action", flat=True)) == {"sla_calendar.create", "sla_policy.create"}
    assert "VIP" in client.get(reverse("console:sla-settings")).content.decode()


def test_bad_calendar_input_is_a_clear_error(client, admin_user):
    client.force_login(admin_user)
    url = reverse("console:sla-calendar-create")
    response = client.post(url, {"name": "X", "time_zone": "UTC", "day_0": "18:00-08:00"})
    assert response.status_code == 200
    assert "must end after it starts" in response.content.decode()
    response = client.post(url, {"name": "X", "time_zone": "UTC", "day_0": "nine to five"})
    assert "Write hours as 08:00-18:00" in response.content.decode()
    response = client.post(url, {"name": "X", "time_zone": "UTC", "holiday_country": "ZZ", "day_0": "08:00-09:00"})
    assert response.status_code == 200
    response = client.post(url, {"name": "<b>X</b>", "time_zone": "UTC"})
    assert "Give working hours" in response.content.decode()
    assert not Calendar.objects.exists()
