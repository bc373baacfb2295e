"""The Reports page in a browser: Chart.js draws each report from the page's JSON under the strict
Content-Security-Policy (the ``console`` fixture fails the test on any violation), and the chart's figures are the
ones its table (the chart's text alternative) shows."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from channels_ingest.models import Channel
from tickets.models import Contact, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

#: A chart's totals as Chart.js holds them: dataset label -> the sum of its bars.
CHART_TOTALS = """canvas => {
  const chart = window.Chart.getChart(canvas);
  return Object.fromEntries(chart.data.datasets.map(d => [d.label, d.data.reduce((a, b) => a + (b || 0), 0)]));
}"""


@pytest.fixture
def recent_tickets(db):
    """Three tickets by Slack and two by email, all from the last hour; two of them resolved."""
    requester = Contact.objects.create(display_name="Ann Employee")
    now = timezone.now()
    for n, name in enumerate(["slack-it", "slack-it", "slack-it", "mail", "mail"]):
        channel, _ = Channel.objects.get_or_create(kind="locmem", name=name, defaults={"config": {"inbox": name}})
        created = now - timedelta(minutes=50 - n)
        Ticket.objects.create(
            subject=f"Problem {n}",
            requester=requester,
            channel=channel,
            created_at=created,
            last_activity_at=created,
            status="resolved" if n < 2 else "open",
            resolved_at=created + timedelta(minutes=30) if n < 2 else None,
        )


def test_the_volume_chart_draws_the_tables_totals(console, live_server, recent_tickets):
    console.get_by_role("navigation", name="Console").get_by_role("link", name="Reports").click()
    expect(console).to_have_url(live_server.url + "/console/reports/")
    console.get_by_role("combobox", name="Period").select_option("7")
    console.get_by_role("button", name="Show").click()
    expect(console).to_have_url(live_server.url + "/console/reports/?days=7&start=&end=&by=channel")

    volume = console.locator("#report-volume")
    canvas = volume.locator("canvas")
    expect(canvas).to_have_attribute("data-drawn", "true")
    expect(canvas).to_have_attribute("role", "img")
    assert canvas.evaluate(CHART_TOTALS) == {"slack-it": 3, "mail": 2}
    # The text alternative: the same figures in the table under the chart.
    total = volume.locator("table.report-figures tbody tr").last
    expect(total.locator("th")).to_have_text("Total")
    expect(total.locator("td")).to_have_text(["3", "2", "5"])

    backlog = console.locator("#report-backlog canvas")
    expect(backlog).to_have_attribute("data-drawn", "true")
    assert backlog.evaluate(CHART_TOTALS) == {"Open tickets": 3}
    workload = console.locator("#report-workload canvas")
    assert workload.evaluate(CHART_TOTALS) == {"Open now": 3, "Resolved in the period": 2}
    for report in ("times", "sla"):
        expect(console.locator(f"#report-{report} canvas")).to_have_attribute("data-drawn", "true")


def test_a_reports_csv_downloads(console, live_server, recent_tickets):
    console.goto(live_server.url + "/console/reports/?days=7")
    with console.expect_download() as download:
        console.locator("#report-volume").get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename.startswith("volume-")
    lines = open(download.value.path(), encoding="utf-8").read().splitlines()  # noqa: SIM115
    assert lines[0] == "Day starting,slack-it,mail,Total"
    assert lines[-1] == "Total,3,2,5"
