"""The Reports page (agents and admins) and each report's CSV export. The figures come from tickets/reports.py;
here they become tables, which the page shows under each chart (the chart's text alternative), the charts draw
(static/reports.js, from ``json_script`` data) and the CSV export writes."""

import csv
from dataclasses import dataclass
from datetime import date

from django import forms
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from tickets import reports

from .access import agent_required

REPORTS = {
    "volume": "Volume",
    "times": "Response and resolution times",
    "sla": "SLA compliance",
    "backlog": "Backlog by age",
    "workload": "Agent workload",
}

#: The dates a period may use (beyond them, a week's Monday or the next day may not exist as a date).
EARLIEST, LATEST = date(1970, 1, 1), date(2999, 12, 31)
#: A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): such cells get a quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class PeriodForm(forms.Form):
    days = forms.TypedChoiceField(
        label="Period",
        choices=[(str(d), f"Last {d} days") for d in reports.PERIOD_DAYS] + [("", "From – to (the dates below)")],
        coerce=int,
        empty_value=None,
        required=False,
    )
    start = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    by = forms.ChoiceField(
        label="Volume by",
        choices=[(key, label) for key, (label, _) in reports.VOLUME_DIMENSIONS.items()],
        required=False,
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if data.get("days") is None and (start or end):
            if not (start and end):
                raise forms.ValidationError("Give both dates, or choose one of the last periods.")
            if not (start >= EARLIEST and end <= LATEST):
                raise forms.ValidationError(f"Give dates between {EARLIEST} and {LATEST}.")
            if end < start:
                raise forms.ValidationError("The period ends before it starts.")
            if (end - start).days + 1 > reports.MAX_PERIOD_DAYS:
                raise forms.ValidationError(f"A period is at most {reports.MAX_PERIOD_DAYS} days.")
        return data

    def period(self) -> reports.Period:
        """The period asked for; the default (last 30 days) when nothing, or something invalid, was asked."""
        data = self.cleaned_data if self.is_valid() else {}
        if data.get("days") is None and data.get("start") and data.get("end"):
            return reports.Period.between(data["start"], data["end"])
        return reports.Period.last_days(data.get("days") or reports.DEFAULT_DAYS)

    def dimension(self) -> str:
        return (self.cleaned_data.get("by") if self.is_valid() else None) or "channel"


@dataclass
class Table:
    caption: str
    headers: list[str]
    rows: list[list]


def _hours(value):
    return "" if value is None else reports.hours(value)


def _percent(share):
    return "" if share is None else round(share * 100, 1)


def volume_table(volume: reports.Volume) -> Table:
    labels = list(volume.series)
    rows = [
        [start.isoformat(), *(volume.series[label][n] for label in labels), volume.totals_by_bucket[n]]
        for n, start in enumerate(volume.buckets)
    ]
    if labels:
        rows.append(["Total", *volume.totals_by_series.values(), volume.total])
    dimension = reports.VOLUME_DIMENSIONS[volume.dimension][0]
    return Table(
        caption=f"Tickets created per {volume.bucket}, by {dimension.lower()}",
        headers=[f"{volume.bucket.capitalize()} starting", *labels, "Total"],
        rows=rows,
    )


def times_table(times: reports.Times) -> Table:
    return Table(
        caption="Hours from a ticket's creation",
        headers=["Measure", "Tickets", "Median (hours)", "90th percentile (hours)"],
        rows=[
            ["First response", times.first_response.count, _hours(times.first_response.median),
             _hours(times.first_response.p90)],
            ["Resolution", times.resolution.count, _hours(times.resolution.median), _hours(times.resolution.p90)],
        ],
    )  # fmt: skip


def sla_table(sla: reports.SlaCompliance) -> Table:
    def row(name, c: reports.Compliance):
        return [name, c.met, c.breached, c.running, c.without_target, _percent(c.share)]

    return Table(
        caption="Tickets created in the period, by whether they met their targets",
        headers=["Target", "Met", "Breached", "Still running", "Without a target", "Met (%)"],
        rows=[row("First response", sla.first_response), row("Resolution", sla.resolution)],
    )


def backlog_table(backlog: dict[str, int]) -> Table:
    rows = [[label, count] for label, count in backlog.items()]
    rows.append(["Total", sum(backlog.values())])
    return Table(caption="Open tickets now, by age", headers=["Age", "Open tickets"], rows=rows)


def workload_table(workload: list[reports.Workload]) -> Table:
    return Table(
        caption="Open tickets now, and tickets resolved in the period, per assignee",
        headers=["Agent", "Open now", "Resolved in the period"],
        rows=[[w.agent, w.open, w.resolved] for w in workload],
    )


def compute(report: str, period: reports.Period, dimension: str) -> Table:
    if report == "volume":
        return volume_table(reports.volume(period, dimension))
    if report == "times":
        return times_table(reports.times(period))
    if report == "sla":
        return sla_table(reports.sla_compliance(period))
    if report == "backlog":
        return backlog_table(reports.backlog())
    return workload_table(reports.workload(period))


def chart_data(report: str, table: Table) -> dict:
    """What static/reports.js draws: labels and datasets, taken from the table (so the two never disagree)."""
    rows = [row for row in table.rows if row[0] != "Total"]
    labels = [str(row[0]) for row in rows]
    if report == "volume":
        series = table.headers[1:-1]
        datasets = [{"label": name, "data": [row[1 + n] for row in rows]} for n, name in enumerate(series)]
        return {"type": "bar", "stacked": True, "labels": labels, "datasets": datasets}
    if report == "times":
        return {
            "type": "bar",
            "labels": labels,
            "datasets": [
                {"label": table.headers[2], "data": [row[2] if row[2] != "" else None for row in rows]},
                {"label": table.headers[3], "data": [row[3] if row[3] != "" else None for row in rows]},
            ],
        }
    if report == "sla":
        return {
            "type": "bar",
            "stacked": True,
            "labels": labels,
            "datasets": [{"label": table.headers[n], "data": [row[n] for row in rows]} for n in (1, 2, 3)],
        }
    if report == "backlog":
        return {"type": "bar", "labels": labels, "datasets": [{"label": "Open tickets", "data": [r[1] for r in rows]}]}
    return {
        "type": "bar",
        "labels": labels,
        "datasets": [{"label": table.headers[n], "data": [row[n] for row in rows]} for n in (1, 2)],
    }


@agent_required
def report_page(request):
    form = PeriodForm(request.GET or None, initial={"days": reports.DEFAULT_DAYS})
    period, dimension = form.period(), form.dimension()
    sections = []
    for slug, title in REPORTS.items():
        table = compute(slug, period, dimension)
        sections.append(
            {"slug": slug, "title": title, "table": table, "chart": chart_data(slug, table), "chart_id": f"{slug}-data"}
        )
    context = {
        "section": "reports",
        "form": form,
        "period": period,
        "dimension": dimension,
        "sections": sections,
        "query": request.GET.urlencode(),
        "now": timezone.now(),
    }
    return render(request, "console/reports.html", context)


@agent_required
def report_csv(request, report):
    if report not in REPORTS:
        raise Http404("No such report.")
    form = PeriodForm(request.GET or None)
    period = form.period()
    table = compute(report, period, form.dimension())
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"{report}-{period.first_day.isoformat()}-{period.last_day.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow([safe_cell(cell) for cell in table.headers])
    for row in table.rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return response


def safe_cell(value):
    """A cell as a spreadsheet should read it: text that would start a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
