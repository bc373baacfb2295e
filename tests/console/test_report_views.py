"""The Reports page and its CSV exports: who may see them, the period filter, the tables the charts are drawn
from, CSV quoting and the guard against formulas, and a query count that does not grow with the data."""

import csv
import io
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.report_data import NOW, build
from tickets.models import Category, Profile, Ticket

pytestmark = pytest.mark.django_db

PAGE = reverse("console:reports")


def csv_url(report):
    return reverse("console:report-csv", args=[report])


@pytest.fixture
def desk(agent, other_agent):
    with time_machine.travel(NOW, tick=False):
        yield build(agent, other_agent)


def rows_of(response):
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.content.decode())))


def chart(response, report):
    """The data the page hands its chart script for ``report``."""
    return next(section["chart"] for section in response.context["sections"] if section["slug"] == report)


def test_agents_see_every_report_with_its_figures(desk, agent_client):
    response = agent_client.get(PAGE, {"days": 7})
    assert response.status_code == 200
    html = response.content.decode()
    for title in ("Volume", "Response and resolution times", "SLA compliance", "Backlog by age", "Agent workload"):
        assert title in html
    # The charts' data, as JSON the page does not execute; the same figures in the tables.
    assert 'id="volume-data" type="application/json"' in html
    volume = chart(response, "volume")
    assert volume["labels"][0] == "2026-03-04"
    assert {d["label"]: sum(d["data"]) for d in volume["datasets"]} == {"slack-it": 5, "mail": 3}
    assert chart(response, "backlog")["datasets"][0]["data"] == [3, 1, 1, 1, 1]
    assert '<th scope="row">Total</th><td>5</td><td>3</td><td>8</td>' in html
    assert 'href="/console/reports/volume.csv?days=7"' in html


def test_admins_may_too_and_employees_may_not(desk, client, admin_user, employee):
    client.force_login(admin_user)
    assert client.get(PAGE).status_code == 200
    assert client.get(csv_url("sla")).status_code == 200
    client.force_login(employee)
    assert client.get(PAGE).status_code == 403
    assert client.get(csv_url("sla")).status_code == 403


def test_the_nav_links_to_reports(agent_client):
    response = agent_client.get(reverse("console:ticket-list"))
    assert f'href="{PAGE}"' in response.content.decode()


def test_days_are_the_viewers_own(desk, client, agent):
    """The agent's time zone (their profile, active through the session): T11, at midnight UTC on the 8th, was
    on the 7th in New York."""
    Profile.objects.create(user=agent, time_zone="America/New_York")
    client.force_login(agent)
    rows = rows_of(client.get(csv_url("volume"), {"days": 7}))
    assert [row[0] for row in rows[1:3]] == ["2026-03-04", "2026-03-05"]
    assert [row[-1] for row in rows[1:]] == ["0", "1", "1", "1", "1", "1", "3", "8"]


def test_the_default_period_is_the_last_30_days_and_says_so(desk, agent_client):
    response = agent_client.get(PAGE)
    assert response.context["period"].length_days == 30
    assert '<option value="30" selected>Last 30 days</option>' in response.content.decode()


def test_a_period_between_dates(desk, agent_client):
    response = agent_client.get(PAGE, {"start": "2026-03-08", "end": "2026-03-09", "by": "team"})
    assert response.status_code == 200
    volume = chart(response, "volume")
    assert volume["labels"] == ["2026-03-08", "2026-03-09"]
    assert {d["label"]: sum(d["data"]) for d in volume["datasets"]} == {"Desk": 2, "Net": 1}


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"start": "2026-03-09", "end": "2026-03-08"}, "The period ends before it starts."),
        ({"start": "2026-03-09"}, "Give both dates"),
        ({"start": "2024-01-01", "end": "2026-03-08"}, "A period is at most 366 days."),
        ({"start": "yesterday", "end": "2026-03-08"}, "Enter a valid date."),
        ({"start": "9999-12-30", "end": "9999-12-31"}, "Give dates between 1970-01-01 and 2999-12-31."),
        ({"start": "0001-01-01", "end": "0001-01-02"}, "Give dates between 1970-01-01 and 2999-12-31."),
        ({"days": "5"}, "Select a valid choice."),
        ({"by": "mood"}, "Select a valid choice."),
    ],
)
def test_a_bad_period_says_why_and_shows_the_last_30_days(desk, agent_client, query, error):
    response = agent_client.get(PAGE, query)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert response.context["period"].length_days == 30
    assert agent_client.get(csv_url("volume"), query).status_code == 200


def test_csv_of_each_report(desk, agent_client):
    assert rows_of(agent_client.get(csv_url("volume"), {"days": 7, "by": "kind"})) == [
        ["Day starting", "Incident", "Change", "Problem", "Service request", "Total"],
        ["2026-03-04", "0", "0", "0", "0", "0"],
        ["2026-03-05", "0", "0", "1", "0", "1"],
        ["2026-03-06", "1", "0", "0", "0", "1"],
        ["2026-03-07", "0", "0", "0", "0", "0"],
        ["2026-03-08", "0", "1", "0", "1", "2"],
        ["2026-03-09", "1", "0", "0", "0", "1"],
        ["2026-03-10", "3", "0", "0", "0", "3"],
        ["Total", "5", "1", "1", "1", "8"],
    ]
    assert rows_of(agent_client.get(csv_url("times"), {"days": 7})) == [
        ["Measure", "Tickets", "Median (hours)", "90th percentile (hours)"],
        ["First response", "5", "3.0", "7.6"],
        ["Resolution", "4", "13.0", "291.6"],
    ]
    assert rows_of(agent_client.get(csv_url("sla"), {"days": 7})) == [
        ["Target", "Met", "Breached", "Still running", "Without a target", "Met (%)"],
        ["First response", "2", "3", "1", "2", "40.0"],
        ["Resolution", "1", "1", "2", "4", "50.0"],
    ]
    assert rows_of(agent_client.get(csv_url("backlog"))) == [
        ["Age", "Open tickets"],
        ["Under 1 day", "3"],
        ["1–3 days", "1"],
        ["3–7 days", "1"],
        ["1–4 weeks", "1"],
        ["Older", "1"],
        ["Total", "7"],
    ]
    assert rows_of(agent_client.get(csv_url("workload"), {"days": 7})) == [
        ["Agent", "Open now", "Resolved in the period"],
        ["Alex Agent", "2", "2"],
        ["Dana Desk", "1", "2"],
        ["(unassigned)", "4", "0"],
    ]
    response = agent_client.get(csv_url("sla"), {"start": "2026-03-08", "end": "2026-03-09"})
    assert response["Content-Disposition"] == 'attachment; filename="sla-2026-03-08-2026-03-09.csv"'


def test_an_unknown_report_is_not_found(agent_client):
    assert agent_client.get(csv_url("revenue")).status_code == 404


@pytest.mark.parametrize("name", ['=HYPERLINK("http://evil")', "+1", "-2+3", "@SUM(A1)", "\tTab"])
def test_csv_cells_that_would_start_a_formula_get_a_quote(desk, agent_client, name):
    Category.objects.filter(name="Network").update(name=name)
    rows = rows_of(agent_client.get(csv_url("volume"), {"days": 7, "by": "category"}))
    assert "'" + name in rows[0]
    assert name not in rows[0]


def test_csv_quotes_commas_quotes_and_newlines(desk, agent_client):
    Category.objects.filter(name="Network").update(name='Wi-Fi, "guest"\nnetwork')
    response = agent_client.get(csv_url("volume"), {"days": 7, "by": "category"})
    assert '"Wi-Fi, ""guest""\nnetwork"' in response.content.decode()
    assert 'Wi-Fi, "guest"\nnetwork' in rows_of(response)[0]


def test_names_are_escaped_on_the_page(desk, agent_client):
    Category.objects.filter(name="Network").update(name="<b>Net</b>")
    html = agent_client.get(PAGE, {"days": 7, "by": "category"}).content.decode()
    assert "<b>Net</b>" not in html
    assert "&lt;b&gt;Net&lt;/b&gt;" in html
    assert "\\u003Cb\\u003ENet\\u003C/b\\u003E" in html  # in the chart's JSON


def test_the_page_spends_the_same_queries_whatever_the_data(desk, agent_client):
    with CaptureQueriesContext(connection) as few:
        assert agent_client.get(PAGE, {"days": 7}).status_code == 200
    template = desk["T1"]
    Ticket.objects.bulk_create(
        [
            Ticket(
                subject=f"more {n}",
                requester=template.requester,
                channel=template.channel,
                category=template.category,
                assignee=template.assignee if n % 3 else None,
                created_at=NOW - timedelta(hours=n),
                first_responded_at=NOW - timedelta(hours=n) + timedelta(minutes=5),
                resolved_at=NOW if n % 2 else None,
                status="resolved" if n % 2 else "open",
            )
            for n in range(1, 60)
        ]
    )
    with CaptureQueriesContext(connection) as many:
        assert agent_client.get(PAGE, {"days": 7}).status_code == 200
    assert len(many) == len(few)
    assert len(few) <= 16
