"""The embedded demo's data."""

from datetime import UTC, datetime
from io import StringIO

from django.contrib.auth.models import User
from django.core.management import call_command

from channels_ingest.management.commands.seed_demo import DEMO_MACROS, DEMO_RULES
from channels_ingest.models import Channel
from portal.magic_links import send_sign_in_link
from tickets.models import Calendar, Macro, RoutingRule, SlaPolicy, Team, Ticket
from tickets.roles import Role, role_of
from tickets.routing import Sample, dry_run


def test_the_demo_macros_are_valid():
    for fields in DEMO_MACROS:
        Macro(**fields).full_clean()


def test_the_demo_has_a_portal_and_an_employee_who_signs_in_by_link(db, mailoutbox):
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())  # idempotent
    assert Channel.objects.get(kind="portal").poll_interval_seconds == 0
    maya = User.objects.get(email="maya@example.com")
    assert not maya.has_usable_password()
    assert role_of(maya) == Role.EMPLOYEE
    send_sign_in_link("maya@example.com")
    assert mailoutbox[0].to == ["maya@example.com"]


def test_the_demo_routes_network_issues_to_the_network_team(db):
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())  # idempotent
    assert list(RoutingRule.objects.values_list("name", flat=True)) == [rule["name"] for rule in DEMO_RULES]
    assert Team.objects.get(name="Network").members.count() == 2
    (network, _), *_ = dry_run(Sample(text="The VPN drops every hour", at=datetime(2026, 12, 2, 10, tzinfo=UTC)))
    assert network.set_team.name == "Network"
    assert network.set_priority == Ticket.Priority.HIGH
    for rule in RoutingRule.objects.all():
        rule.full_clean()
    slack = Channel.objects.get(name="slack-it-help")
    assert "{expected_response}" in slack.config["auto_ack"]["body"]


def test_the_demo_has_two_calendars_and_three_valid_sla_policies(db):
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())  # idempotent
    assert sorted(Calendar.objects.values_list("name", flat=True)) == ["24/7", "Office hours Berlin"]
    policies = list(SlaPolicy.objects.all())
    assert [p.name for p in policies] == ["VIP incidents", "Urgent & High incidents", "Default"]
    for policy in [*policies, *Calendar.objects.all()]:
        policy.full_clean()
