"""Each user's time zone: set on My profile, active for their requests, and named wherever the console shows a
time. A fixed instant, seen from two zones, in winter and in summer (daylight saving time)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from console.templatetags.console_labels import zoned
from tickets.models import Message, Profile

pytestmark = pytest.mark.django_db

WINTER = datetime(2026, 1, 15, 13, 3, tzinfo=UTC)
SUMMER = datetime(2026, 7, 15, 12, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "at", "shown"),
    [
        ("Europe/Berlin", WINTER, "15 Jan 2026, 14:03 CET"),
        ("America/New_York", WINTER, "15 Jan 2026, 08:03 EST"),
        ("Europe/Berlin", SUMMER, "15 Jul 2026, 14:03 CEST"),
        ("America/New_York", SUMMER, "15 Jul 2026, 08:03 EDT"),
        # Berlin's clocks go from 02:00 to 03:00 at 01:00 UTC on the last Sunday of March.
        ("Europe/Berlin", datetime(2026, 3, 29, 0, 59, tzinfo=UTC), "29 Mar 2026, 01:59 CET"),
        ("Europe/Berlin", datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "29 Mar 2026, 03:00 CEST"),
        ("UTC", WINTER, "15 Jan 2026, 13:03 UTC"),
        # No letters for this zone's abbreviation ("+04"): its name instead.
        ("Asia/Dubai", WINTER, "15 Jan 2026, 17:03 Asia/Dubai"),
    ],
)
def test_a_time_is_shown_in_the_current_zone_with_its_name(zone, at, shown):
    with timezone.override(ZoneInfo(zone)):
        assert zoned(at) == shown


def signed_in(user, zone=None):
    if zone:
        Profile.objects.update_or_create(user=user, defaults={"time_zone": zone})
    browser = Client()
    browser.force_login(user)
    return browser


@pytest.mark.parametrize("instant", [WINTER, SUMMER])
def test_two_agents_see_the_same_message_each_in_their_own_zone(ticket, agent, other_agent, instant):
    Message.objects.filter(ticket=ticket).update(created_at=instant)
    berlin = signed_in(agent, "Europe/Berlin").get(reverse("console:ticket-detail", args=[ticket.pk]))
    new_york = signed_in(other_agent, "America/New_York").get(reverse("console:ticket-detail", args=[ticket.pk]))
    summer = instant == SUMMER
    assert (">15 Jul 2026, 14:03 CEST<" if summer else ">15 Jan 2026, 14:03 CET<") in berlin.content.decode()
    assert (">15 Jul 2026, 08:03 EDT<" if summer else ">15 Jan 2026, 08:03 EST<") in new_york.content.decode()


def test_without_a_profile_times_are_utc_and_named(ticket, agent):
    Message.objects.filter(ticket=ticket).update(created_at=WINTER)
    page = signed_in(agent).get(reverse("console:ticket-detail", args=[ticket.pk]))
    assert ">15 Jan 2026, 13:03 UTC<" in page.content.decode()


def test_the_zone_does_not_outlive_the_request(agent, ticket):
    signed_in(agent, "Europe/Berlin").get(reverse("console:ticket-detail", args=[ticket.pk]))
    assert timezone.get_current_timezone_name() == "UTC"


def test_an_agent_changes_their_zone_and_their_next_page_uses_it(ticket, agent_client):
    Message.objects.filter(ticket=ticket).update(created_at=WINTER)
    page = agent_client.get(reverse("console:my-profile"))
    assert page.status_code == 200
    assert '<option value="Europe/Berlin">' in page.content.decode()
    response = agent_client.post(reverse("console:my-profile"), {"time_zone": "Asia/Tokyo"}, follow=True)
    assert "times are now shown in Asia/Tokyo" in response.content.decode()
    assert Profile.objects.get().time_zone == "Asia/Tokyo"
    assert (
        ">15 Jan 2026, 22:03 JST<"
        in agent_client.get(reverse("console:ticket-detail", args=[ticket.pk])).content.decode()
    )


def test_an_unknown_zone_is_refused(agent_client):
    response = agent_client.post(reverse("console:my-profile"), {"time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Profile.objects.exists()


def test_employees_have_a_profile_page_too_without_the_console(client, employee):
    client.force_login(employee)
    page = client.get(reverse("console:my-profile")).content.decode()
    assert "My profile" in page
    assert "console-nav" not in page
    client.post(reverse("console:my-profile"), {"time_zone": "Europe/Berlin"})
    assert Profile.objects.get(user=employee).time_zone == "Europe/Berlin"


def test_the_profile_needs_a_sign_in(client):
    response = client.get(reverse("console:my-profile"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_zone_the_system_no_longer_knows_falls_back_to_utc(ticket, agent):
    Message.objects.filter(ticket=ticket).update(created_at=WINTER)
    browser = signed_in(agent)
    session = browser.session
    session["time_zone"] = "Gone/Away"
    session.save()
    assert (
        ">15 Jan 2026, 13:03 UTC<" in browser.get(reverse("console:ticket-detail", args=[ticket.pk])).content.decode()
    )
