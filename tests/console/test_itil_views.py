"""ITIL in the console: the ticket page's classification, priority override, problem links and change approval;
the queue's type and category; the admins' lists and priority matrix; the API's fields and filters."""

from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse

from tests.api.test_views import token_client
from tests.helpers import flashes, open_tickets, queries_for, text_of
from tickets.itil import classify, link_problem
from tickets.models import AuditEntry, Category, PriorityMatrix, Profile, Service, Ticket, TicketEvent

H, M, L = Ticket.Level.HIGH, Ticket.Level.MEDIUM, Ticket.Level.LOW


def detail(ticket):
    return reverse("console:ticket-detail", args=[ticket.pk])


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def classification(ticket, **changes):
    data = {"kind": ticket.kind, "category": "", "service": "", "impact": ticket.impact, "urgency": ticket.urgency}
    return {**data, **changes}


def test_agents_classify_a_ticket_and_the_priority_follows(agent_client, ticket):
    network, vpn = Category.objects.create(name="Network"), Service.objects.create(name="VPN")
    url = reverse("console:ticket-classify", args=[ticket.pk])
    data = classification(ticket, kind="incident", category=network.pk, service=vpn.pk, impact=H, urgency=M)
    response = agent_client.post(url, data, follow=True)
    ticket.refresh_from_db()
    assert (ticket.category, ticket.service, ticket.impact, ticket.priority) == (network, vpn, H, Ticket.Priority.HIGH)
    assert "Priority: P3 · Normal → P2 · High." in " ".join(flashes(response))
    text = text_of(response.content.decode())
    assert (
        "PriorityP2 · High TypeIncident Impact \u00d7 urgencyHigh \u00d7 Medium CategoryNetwork ServiceVPN" in text
    )  # the facts
    assert "Change: Priority P3 · Normal → P2 · High · Alex Agent (impact x urgency)" in text
    assert "Change: Category none → Network" in text
    assert "Change: Service none → VPN" in text
    # Bad input: a message, never a 500.
    response = agent_client.post(url, classification(ticket, impact="9"), follow=True)
    assert response.status_code == 200
    assert any("Impact" in flash for flash in flashes(response))


def test_a_deactivated_category_is_not_offered_but_stays_on_its_tickets(agent_client, ticket):
    old, current = Category.objects.create(name="Old kit", active=False), Category.objects.create(name="Hardware")
    page = agent_client.get(detail(ticket)).content.decode()
    assert "Hardware" in page
    assert "Old kit" not in page
    Ticket.objects.filter(pk=ticket.pk).update(category=old)
    assert "Old kit" in agent_client.get(detail(ticket)).content.decode()
    assert current.active


def test_overriding_the_priority_needs_a_reason(agent_client, ticket):
    url = reverse("console:ticket-update", args=[ticket.pk])
    data = {"status": ticket.status, "priority": Ticket.Priority.URGENT, "assignee": "", "queue": ""}
    response = agent_client.post(url, data, follow=True)
    assert flashes(response) == ["Say why you override the priority that impact x urgency gives."]
    ticket.refresh_from_db()
    assert ticket.priority == Ticket.Priority.NORMAL
    response = agent_client.post(url, {**data, "priority_reason": "Payroll run tonight"}, follow=True)
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.priority_overridden) == (Ticket.Priority.URGENT, True)
    text = text_of(response.content.decode())
    assert "PriorityP1 · Urgent (overridden)" in text
    assert "Change: Priority P3 · Normal → P1 · Urgent · Alex Agent (Payroll run tonight)" in text


def test_problem_and_incident_pages_show_their_link(agent_client, agent, locmem_channel):
    problem, incident = open_tickets(locmem_channel, 2)
    classify(problem, actor=agent, kind=Ticket.Kind.PROBLEM)
    url = reverse("console:ticket-problem", args=[incident.pk])
    assert agent_client.post(url, {"problem": "999999"}, follow=True).status_code == 200
    response = agent_client.post(url, {"problem": str(incident.pk)}, follow=True)
    assert flashes(response) == [f"#{incident.pk} is not a problem."]
    agent_client.post(url, {"problem": str(problem.pk)})
    incident.refresh_from_db()
    assert incident.problem == problem
    assert f"Explained by #{problem.pk}" in text_of(agent_client.get(detail(incident)).content.decode())
    problem_page = text_of(agent_client.get(detail(problem)).content.decode())
    assert f"Incidents this problem explains #{incident.pk} {incident.subject}" in problem_page
    assert f"Change: Linked incident none → #{incident.pk} {incident.subject}" in problem_page
    # Unlinking from the problem's page comes back to it.
    response = agent_client.post(url, {"problem": "", "back": str(problem.pk)})
    assert response.url == detail(problem)
    incident.refresh_from_db()
    assert incident.problem is None


def test_only_the_named_approver_decides_a_change(agent_client, agent, other_agent, ticket):
    classify(ticket, actor=agent, kind=Ticket.Kind.CHANGE)
    plan = reverse("console:ticket-change-plan", args=[ticket.pk])
    window = {"start": "2026-12-05T22:00", "end": "2026-12-05T21:00", "approver": other_agent.pk}
    response = agent_client.post(plan, window, follow=True)
    assert flashes(response) == ["The window must end after it starts."]
    response = agent_client.post(plan, {**window, "end": "2026-12-06T02:00"}, follow=True)
    assert "approver Dana Desk" in flashes(response)[0]
    ticket.refresh_from_db()
    assert (ticket.change_start.hour, ticket.change_end.hour, ticket.change_approver) == (22, 2, other_agent)
    decision = reverse("console:ticket-change-decision", args=[ticket.pk])
    response = agent_client.post(decision, {"decision": "approve"}, follow=True)
    assert flashes(response) == ["Only the change's named approver can approve or reject it."]
    assert 'value="approve"' not in response.content.decode()  # the buttons are the approver's
    approver = Client()
    approver.force_login(other_agent)
    assert 'value="approve"' in approver.get(detail(ticket)).content.decode()
    approver.post(decision, {"decision": "approve", "reason": "Low risk"})
    ticket.refresh_from_db()
    assert ticket.change_approval == Ticket.Approval.APPROVED
    event = TicketEvent.objects.get(ticket=ticket, kind="approval")
    assert (event.actor, event.new_display, event.reason) == (other_agent, "Approved", "Low risk")


def test_a_change_window_is_typed_and_shown_in_the_agents_own_zone(agent, other_agent, ticket):
    """Dana plans in Berlin (CET in winter, CEST in summer); Alex, in UTC, sees the same moments in his time."""
    Profile.objects.create(user=other_agent, time_zone="Europe/Berlin")
    classify(ticket, actor=agent, kind=Ticket.Kind.CHANGE)
    dana = Client()
    dana.force_login(other_agent)
    form = dana.get(detail(ticket)).content.decode()
    assert "Window starts (Europe/Berlin time)" in form
    window = {"start": "2026-12-05T22:00", "end": "2026-12-06T02:00", "approver": other_agent.pk}
    dana.post(reverse("console:ticket-change-plan", args=[ticket.pk]), window)

    ticket.refresh_from_db()
    assert (ticket.change_start, ticket.change_end) == (
        datetime(2026, 12, 5, 21, 0, tzinfo=UTC),
        datetime(2026, 12, 6, 1, 0, tzinfo=UTC),
    )
    page = dana.get(detail(ticket)).content.decode()
    assert "Window 5 Dec 2026, 22:00 CET – 6 Dec 2026, 02:00 CET" in text_of(page)
    assert 'value="2026-12-05T22:00"' in page  # the form to replan holds what she typed
    alex = Client()
    alex.force_login(agent)
    assert "Window 5 Dec 2026, 21:00 UTC – 6 Dec 2026, 01:00 UTC" in text_of(alex.get(detail(ticket)).content.decode())


def test_a_window_time_the_clocks_skip_is_refused(agent_client, agent, ticket):
    """In Berlin, 02:30 on 29 March 2026 never happens (the clocks go from 02:00 to 03:00)."""
    Profile.objects.create(user=agent, time_zone="Europe/Berlin")
    agent_client.force_login(agent)  # the zone is read into the session at sign-in
    classify(ticket, actor=agent, kind=Ticket.Kind.CHANGE)
    window = {"start": "2026-03-29T02:30", "end": "2026-03-29T05:00", "approver": agent.pk}
    response = agent_client.post(reverse("console:ticket-change-plan", args=[ticket.pk]), window, follow=True)
    assert "Europe/Berlin" in flashes(response)[0]
    ticket.refresh_from_db()
    assert ticket.change_start is None


def test_the_queue_filters_on_type_and_category_and_shows_them(agent_client, agent, locmem_channel):
    first, second, third = open_tickets(locmem_channel, 3)
    network = Category.objects.create(name="<b>Network</b>")
    classify(first, actor=agent, kind=Ticket.Kind.PROBLEM, category=network)
    classify(second, actor=agent, kind=Ticket.Kind.CHANGE)

    def listed(**params):
        return {t.pk for t in agent_client.get(reverse("console:ticket-list"), params).context["tickets"]}

    assert listed(kind="problem") == {first.pk}
    assert listed(kind="incident") == {third.pk}
    assert listed(category=network.pk) == {first.pk}
    assert listed(kind="nonsense") == {first.pk, second.pk, third.pk}  # an invalid filter is ignored
    rows = agent_client.get(reverse("console:ticket-rows")).content.decode()
    assert '<td data-label="Type" class="kind">Problem</td>' in rows
    assert "&lt;b&gt;Network&lt;/b&gt;" in rows
    assert "<b>Network" not in rows


def test_queue_queries_do_not_grow_with_categories_and_services(agent_client, agent, locmem_channel):
    url = reverse("console:ticket-list") + "?status=all"
    tickets = open_tickets(locmem_channel, 60)
    few = queries_for(agent_client, url, cold_cache=True)
    for n, ticket in enumerate(tickets):
        category = Category.objects.create(name=f"Category {n}")
        Ticket.objects.filter(pk=ticket.pk).update(category=category, service=Service.objects.create(name=f"S{n}"))
    assert queries_for(agent_client, url, cold_cache=True) == few + 0
    assert queries_for(agent_client, url + "&kind=incident&category=1", cold_cache=True) <= few


def test_admins_keep_the_lists(admin_client, agent_client):
    assert agent_client.get(reverse("console:categories")).status_code == 403
    response = admin_client.post(reverse("console:category-create"), {"name": "Printers", "active": "on"}, follow=True)
    category = Category.objects.get(name="Printers")
    assert "Printers" in response.content.decode()
    edit = reverse("console:category-edit", args=[category.pk])
    admin_client.post(edit, {"name": "Printing"})  # the box unticked: deactivated
    category.refresh_from_db()
    assert (category.name, category.active) == ("Printing", False)
    response = admin_client.post(reverse("console:service-create"), {"name": ""})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    Service.objects.create(name="VPN")
    response = admin_client.post(reverse("console:service-create"), {"name": "vpn", "active": "on"})
    assert "There is already a service named “vpn”." in response.content.decode()
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "category.create",
        "category.update",
    ]


def test_admins_edit_the_priority_matrix(admin_client, agent_client):
    url = reverse("console:priority-matrix")
    assert agent_client.get(url).status_code == 403
    page = admin_client.get(url).content.decode()
    assert 'name="cell_1_1"' in page
    assert "P1 · Urgent" in page
    grid = {f"cell_{i}_{u}": str(p) for (i, u), p in ((k, v) for k, v in _grid().items())}
    response = admin_client.post(url, {**grid, "cell_3_3": "2"}, follow=True)
    assert flashes(response) == ["Priority matrix saved."]
    assert PriorityMatrix.objects.get(impact=L, urgency=L).priority == Ticket.Priority.NORMAL
    assert AuditEntry.objects.get().action == "priority_matrix.update"
    response = admin_client.post(url, {**grid, "cell_3_3": "9"})
    assert response.status_code == 200
    assert "Choose a priority for every cell." in response.content.decode()


def _grid():
    return {(r.impact, r.urgency): r.priority for r in PriorityMatrix.objects.all()}


def test_the_api_exposes_and_filters_itil_fields(agent, locmem_channel):
    first, second = open_tickets(locmem_channel, 2)
    network, vpn = Category.objects.create(name="Network"), Service.objects.create(name="VPN")
    classify(first, actor=agent, kind=Ticket.Kind.PROBLEM, category=network, service=vpn, impact=H)
    link_problem(second, problem=first, actor=agent)
    api = token_client(agent)
    body = api.get("/api/tickets/", {"kind": "problem"}).json()
    (item,) = body["results"]
    assert (item["id"], item["kind"], item["category"], item["service"], item["impact"]) == (
        first.pk,
        "problem",
        "Network",
        "VPN",
        H,
    )
    assert [t["id"] for t in api.get("/api/tickets/", {"category": network.pk}).json()["results"]] == [first.pk]
    detail_body = api.get(f"/api/tickets/{second.pk}/").json()
    assert (detail_body["problem"], detail_body["category"], detail_body["priority_overridden"]) == (
        first.pk,
        None,
        False,
    )
    assert api.get("/api/tickets/", {"kind": "outage"}).status_code == 400
