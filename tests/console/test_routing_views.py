"""The routing pages (admins): rules listed in order, added, edited, moved and deleted, each change audited; the
tester says what would happen to a sample message and saves nothing; agents set their availability; a team's
automatic assignment; the timeline shows each applied rule."""

import pytest
from django.urls import reverse

from tests.factories import message
from tests.helpers import detail_url, receive
from tickets.models import AuditEntry, Profile, RoutingRule, Team, Ticket

RULES = reverse("console:routing-rules")
NEW = reverse("console:routing-rule-create")
TEST = reverse("console:routing-test")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def network(db):
    return Team.objects.create(name="Network")


def rule_form(**fields):
    return {"name": "Network issues", "time_zone": "UTC", "active": "on", **fields}


def edit_url(rule):
    return reverse("console:routing-rule-edit", args=[rule.pk])


@pytest.mark.django_db
def test_an_admin_adds_a_rule_and_it_is_audited(admin_client, network):
    response = admin_client.post(NEW, rule_form(keywords="vpn, wi-fi", set_team=network.pk, set_priority=3))
    assert response.status_code == 302
    rule = RoutingRule.objects.get()
    assert (rule.keywords, rule.set_team, rule.set_priority, rule.position) == ("vpn, wi-fi", network, 3, 1)
    entry = AuditEntry.objects.get(action="routing_rule.create")
    assert entry.after["set_team"] == "Network"
    page = admin_client.get(RULES).content.decode()
    assert "Network issues" in page
    assert "team Network, priority P2 · High" in page


@pytest.mark.django_db
def test_a_bad_expression_or_window_is_a_form_error_not_a_crash(admin_client):
    response = admin_client.post(NEW, rule_form(pattern="(a+)+$"))
    assert response.status_code == 200
    assert "takes too long" in response.content.decode()
    response = admin_client.post(NEW, rule_form(pattern="(oops", time_from="18:00"))
    page = response.content.decode()
    assert "not a valid regular expression" in page
    assert "Give both ends of the time window" in page
    assert not RoutingRule.objects.exists()


@pytest.mark.django_db
def test_rules_move_up_and_down_and_the_move_is_audited(admin_client):
    first, _second, third = (RoutingRule.objects.create(name=n, position=i) for i, n in enumerate("abc", start=1))
    admin_client.post(reverse("console:routing-rule-move", args=[third.pk]), {"direction": "up"})
    assert list(RoutingRule.objects.values_list("name", flat=True)) == ["a", "c", "b"]
    admin_client.post(reverse("console:routing-rule-move", args=[first.pk]), {"direction": "down"})
    assert list(RoutingRule.objects.values_list("name", flat=True)) == ["c", "a", "b"]
    admin_client.post(reverse("console:routing-rule-move", args=[third.pk]), {"direction": "up"})  # already first
    assert list(RoutingRule.objects.values_list("name", flat=True)) == ["c", "a", "b"]
    moves = AuditEntry.objects.filter(action="routing_rule.move").order_by("id")
    assert [(m.target_label, m.before, m.after) for m in moves] == [
        ("c", {"position": 3}, {"position": 2}),
        ("a", {"position": 1}, {"position": 2}),
    ]
    page = admin_client.get(RULES).content.decode()
    assert page.index(">c</bdi>") < page.index(">a</bdi>") < page.index(">b</bdi>")


@pytest.mark.django_db
def test_editing_and_deleting_are_audited(admin_client):
    rule = RoutingRule.objects.create(name="old", keywords="vpn")
    admin_client.post(edit_url(rule), rule_form(name="new", keywords="vpn"))
    entry = AuditEntry.objects.get(action="routing_rule.update")
    assert (entry.before["name"], entry.after["name"]) == ("old", "new")
    admin_client.post(reverse("console:routing-rule-delete", args=[rule.pk]))
    assert not RoutingRule.objects.exists()
    assert AuditEntry.objects.get(action="routing_rule.delete").before["name"] == "new"


@pytest.mark.django_db
def test_the_tester_says_which_rules_would_apply_and_saves_nothing(admin_client, network, locmem_channel):
    RoutingRule.objects.create(name="tag", position=1, keywords="vpn", add_tags="vpn", continue_matching=True)
    RoutingRule.objects.create(name="Network issues", position=2, keywords="vpn", set_team=network)
    RoutingRule.objects.create(name="VIP", position=3, vip="yes", raise_priority=True)
    response = admin_client.post(TEST, {"sample_text": "VPN down", "sample_channel": locmem_channel.pk})
    page = response.content.decode()
    assert "Rule '<bdi>tag</bdi>' would set <bdi>tags vpn</bdi> (and continue)" in page
    assert "Rule '<bdi>Network issues</bdi>' would set <bdi>team Network</bdi>" in page
    assert "VIP" not in page.split("Result")[1]
    page = admin_client.post(TEST, {"sample_text": "hello", "sample_vip": "on"}).content.decode()
    assert "Rule '<bdi>VIP</bdi>' would set <bdi>priority raised one step</bdi>" in page
    page = admin_client.post(TEST, {"sample_text": "hello"}).content.decode()
    assert "No rule matches" in page
    assert not Ticket.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_the_tester_reads_the_time_in_the_admins_zone(admin_client, admin_user):
    Profile.objects.create(user=admin_user, time_zone="Europe/Berlin")
    admin_client.force_login(admin_user)  # the zone is read at sign-in
    RoutingRule.objects.create(name="night", time_from="18:00", time_until="08:00", time_zone="Europe/Berlin")
    late = admin_client.post(TEST, {"sample_text": "x", "sample_at": "2026-12-02T23:30"}).content.decode()
    day = admin_client.post(TEST, {"sample_text": "x", "sample_at": "2026-12-02T12:00"}).content.decode()
    assert "'<bdi>night</bdi>'" in late
    assert "No rule matches" in day


@pytest.mark.django_db
def test_a_rule_is_tested_before_it_is_saved(admin_client):
    fields = rule_form(keywords="password, locked", add_tags="access", action="test")
    page = admin_client.post(NEW, {**fields, "sample_text": "I am locked out"}).content.decode()
    assert "This rule <strong>matches</strong>: it would set <bdi>tags access</bdi>" in page
    page = admin_client.post(NEW, {**fields, "sample_text": "printer"}).content.decode()
    assert "does <strong>not match</strong>" in page
    assert not RoutingRule.objects.exists()


@pytest.mark.django_db
def test_names_are_escaped(admin_client):
    RoutingRule.objects.create(name="<script>x</script>", add_tags="<b>")
    page = admin_client.get(RULES).content.decode()
    assert "<script>x" not in page
    assert "&lt;script&gt;x" in page


@pytest.mark.django_db
def test_agents_may_not_manage_rules(agent_client):
    assert agent_client.get(RULES).status_code == 403
    assert agent_client.post(TEST, {"sample_text": "x"}).status_code == 403
    assert "Routing" not in agent_client.get(reverse("console:ticket-list")).content.decode().split("</nav>")[0]


@pytest.mark.django_db
def test_the_list_costs_a_fixed_number_of_queries(admin_client, network, django_assert_max_num_queries):
    for n in range(10):
        RoutingRule.objects.create(name=f"r{n}", position=n, set_team=network, keywords="x")
    with django_assert_max_num_queries(12):
        assert admin_client.get(RULES).status_code == 200


@pytest.mark.django_db
def test_an_agent_sets_their_availability(agent_client, agent):
    page = agent_client.get(reverse("console:my-profile")).content.decode()
    assert 'name="availability"' in page
    response = agent_client.post(reverse("console:my-profile"), {"time_zone": "UTC", "availability": "away"})
    assert response.status_code == 302
    assert Profile.objects.get(user=agent).availability == Profile.Availability.AWAY
    assert "You are away" in agent_client.get(reverse("console:my-profile")).content.decode()


@pytest.mark.django_db
def test_employees_have_no_availability(client, employee):
    client.force_login(employee)
    assert 'name="availability"' not in client.get(reverse("console:my-profile")).content.decode()


@pytest.mark.django_db
def test_an_admin_sets_a_teams_automatic_assignment(admin_client, network, agent):
    admin_client.post(
        reverse("console:team-edit", args=[network.pk]),
        {"name": "Network", "members": [agent.pk], "assignment": "round_robin"},
    )
    network.refresh_from_db()
    assert network.assignment == Team.Assignment.ROUND_ROBIN
    assert AuditEntry.objects.get(action="team.update").after["assignment"] == "round_robin"


@pytest.mark.django_db
def test_the_timeline_shows_each_applied_rule(agent_client, network, locmem_channel):
    RoutingRule.objects.create(name="Network issues", keywords="vpn", set_team=network, set_priority=3)
    receive(locmem_channel, [message("m1", text="vpn down")])
    page = agent_client.get(detail_url(Ticket.objects.get())).content.decode()
    assert "Routed by rule '<bdi>Network issues</bdi>': <bdi>team Network, priority P2 · High</bdi>" in page


@pytest.mark.django_db
def test_the_ticket_shows_its_team_and_tags(agent_client, network, locmem_channel):
    RoutingRule.objects.create(name="net", keywords="vpn", set_team=network, add_tags="vpn, <remote>")
    receive(locmem_channel, [message("m1", text="vpn down")])
    page = agent_client.get(detail_url(Ticket.objects.get())).content.decode()
    assert "<dt>Team</dt><dd><bdi>Network</bdi></dd>" in page
    assert (
        '<span class="badge tag"><bdi>vpn</bdi></span> <span class="badge tag"><bdi>&lt;remote&gt;</bdi></span>' in page
    )
