"""Reports for agents and admins: volume, response and resolution times, SLA compliance, backlog by age and agent
workload. Every figure is computed by the database (COUNT, GROUP BY, percentiles); Python only shapes the few rows
that come back (one per bucket, per agent, per age band), never a row per ticket. Counts are ``COUNT(*)``, not of
the id, so a query that needs only indexed columns reads the index alone (docs/benchmarks.md has the plans).

Days and weeks are the viewer's: ``Trunc…`` takes the active time zone (console.time_zones activates the user's).

Percentiles are ``percentile_cont`` (linear interpolation between the two nearest values). PostgreSQL computes it
with its ordered-set aggregate; SQLite has none, so there the same figure comes from the count and the one or two
values around the percentile's position, fetched with ``ORDER BY … LIMIT 2 OFFSET k`` (still in the database: a
count, then one query per percentile). Both give the same answer.
"""

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Q,
    QuerySet,
    Value,
)
from django.db.models.functions import TruncDay, TruncWeek
from django.utils import timezone

from .models import Ticket

PERIOD_DAYS = (7, 30, 90)
DEFAULT_DAYS = 30
#: The longest period a report covers, so a typo in a date cannot ask for a century of day buckets.
MAX_PERIOD_DAYS = 366
#: A period up to this long is shown by day; longer ones by week.
DAILY_UP_TO_DAYS = 31

NONE_LABEL = "(none)"


def _count(filter: Q | None = None) -> Count:
    """``COUNT(*)``, or ``COUNT(1) FILTER (WHERE …)``: counts rows without reading their id."""
    return Count("*") if filter is None else Count(Value(1), filter=filter)


@dataclass(frozen=True)
class Period:
    """``[start, end)``, aware; ``first_day`` and ``last_day`` are the viewer's local dates it covers."""

    start: datetime
    end: datetime
    first_day: date
    last_day: date
    days: int | None = None  # set for "the last N days"

    @classmethod
    def last_days(cls, days: int, *, now: datetime | None = None, tz: tzinfo | None = None) -> "Period":
        """The last ``days`` local days, today included."""
        tz = tz or timezone.get_current_timezone()
        today = timezone.localtime(now or timezone.now(), tz).date()
        return cls.between(today - timedelta(days=days - 1), today, tz=tz, days=days)

    @classmethod
    def between(cls, first_day: date, last_day: date, *, tz: tzinfo | None = None, days: int | None = None):
        """From the start of ``first_day`` to the end of ``last_day`` (both included), local."""
        tz = tz or timezone.get_current_timezone()
        start = datetime.combine(first_day, time.min, tzinfo=tz)
        end = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=tz)
        return cls(start=start, end=end, first_day=first_day, last_day=last_day, days=days)

    @property
    def length_days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def contains(self, field_name: str) -> Q:
        return Q(**{f"{field_name}__gte": self.start, f"{field_name}__lt": self.end})


# Volume ------------------------------------------------------------------------------------------------------------

#: What volume can be split by: the name shown, and the ticket field the rows are grouped on.
VOLUME_DIMENSIONS = {
    "channel": ("Channel", "channel_id"),
    "kind": ("Type", "kind"),
    "category": ("Category", "category_id"),
    "team": ("Team", "team_id"),
}


@dataclass
class Volume:
    dimension: str
    bucket: str  # "day" or "week"
    buckets: list[date]
    #: label -> count per bucket (same order as ``buckets``), largest total first
    series: dict[str, list[int]] = field(default_factory=dict)

    @property
    def totals_by_bucket(self) -> list[int]:
        if not self.series:
            return [0] * len(self.buckets)
        return [sum(column) for column in zip(*self.series.values(), strict=True)]

    @property
    def totals_by_series(self) -> dict[str, int]:
        return {label: sum(counts) for label, counts in self.series.items()}

    @property
    def total(self) -> int:
        return sum(self.totals_by_series.values())


def volume(period: Period, dimension: str = "channel", bucket: str | None = None) -> Volume:
    """Tickets created in ``period`` per day (or week) and per channel, type, category or team: one query, grouped
    on the ticket's own column (no join), and one for the names of the channels, categories or teams found."""
    _, group_field = VOLUME_DIMENSIONS[dimension]
    bucket = bucket or ("day" if period.length_days <= DAILY_UP_TO_DAYS else "week")
    tz = timezone.get_current_timezone()
    trunc = TruncDay("created_at", tzinfo=tz) if bucket == "day" else TruncWeek("created_at", tzinfo=tz)
    rows = (
        Ticket.objects.filter(period.contains("created_at"))
        .annotate(bucket=trunc)
        .values("bucket", group_field)
        .annotate(count=_count())
        .order_by()
    )
    rows = list(rows)
    names = _names(dimension, {row[group_field] for row in rows})
    starts = _bucket_starts(period, bucket)
    position = {start: n for n, start in enumerate(starts)}
    series: dict[str, list[int]] = {}
    for row in rows:
        label = _label(dimension, names.get(row[group_field], row[group_field]))
        counts = series.setdefault(label, [0] * len(starts))
        counts[position[_local_date(row["bucket"], tz)]] += row["count"]
    ordered = dict(sorted(series.items(), key=lambda item: (-sum(item[1]), item[0])))
    return Volume(dimension=dimension, bucket=bucket, buckets=starts, series=ordered)


def _names(dimension, ids) -> dict:
    """The names of the channels, categories or teams with these ids (one query); nothing for types."""
    ids.discard(None)
    if dimension == "kind" or not ids:
        return {}
    model = Ticket._meta.get_field(dimension).related_model
    return dict(model._default_manager.filter(pk__in=ids).values_list("pk", "name"))  # type: ignore[union-attr]


def _label(dimension, value) -> str:
    if value in (None, ""):
        return NONE_LABEL
    if dimension == "kind":
        return str(Ticket.Kind(value).label) if value in Ticket.Kind.values else str(value)
    return str(value)


def _local_date(value, tz) -> date:
    """A bucket as the database returned it: an aware datetime (a date string on some SQLite versions)."""
    if isinstance(value, datetime):
        return timezone.localtime(value, tz).date() if timezone.is_aware(value) else value.date()
    return value


def _bucket_starts(period: Period, bucket: str) -> list[date]:
    first = period.first_day
    if bucket == "week":
        first -= timedelta(days=first.weekday())  # weeks start on Monday, as TruncWeek's do
    step = timedelta(days=1 if bucket == "day" else 7)
    starts = []
    while first <= period.last_day:
        starts.append(first)
        first += step
    return starts


# Response and resolution times ------------------------------------------------------------------------------------


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``."""

    function = "PERCENTILE_CONT"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    allow_distinct = False

    def __init__(self, expression, fraction: float, **extra):
        if not 0 <= fraction <= 1:
            raise ValueError("fraction must be between 0 and 1")
        # A number we choose, never user input: safe in the SQL text.
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


@dataclass
class Durations:
    count: int
    median: timedelta | None
    p90: timedelta | None


@dataclass
class Times:
    first_response: Durations
    resolution: Durations


def _duration(end_field: str):
    return ExpressionWrapper(F(end_field) - F("created_at"), output_field=DurationField())


def durations(queryset: QuerySet, end_field: str) -> Durations:
    """Median and p90 of ``end_field - created_at`` over ``queryset`` (rows without ``end_field`` left out)."""
    queryset = queryset.filter(**{f"{end_field}__isnull": False})
    if connection.vendor == "postgresql":
        # Sorted as seconds (double precision), which PostgreSQL sorts several times faster than intervals; both
        # percentiles share the one sort. Seconds as a double keep microseconds exact for centuries.
        seconds = Func(_duration(end_field), function="date_part", template="date_part('epoch', %(expressions)s)")
        figures = queryset.aggregate(
            count=_count(),
            median=PercentileCont(seconds, 0.5, output_field=FloatField()),
            p90=PercentileCont(seconds, 0.9, output_field=FloatField()),
        )
        return Durations(count=figures["count"], median=_seconds(figures["median"]), p90=_seconds(figures["p90"]))
    count = queryset.count()
    ordered = queryset.annotate(duration=_duration(end_field)).order_by("duration", "pk")
    return Durations(
        count=count,
        median=_percentile_by_offset(ordered, count, 0.5),
        p90=_percentile_by_offset(ordered, count, 0.9),
    )


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def _percentile_by_offset(ordered: QuerySet, count: int, fraction: float) -> timedelta | None:
    """percentile_cont from the one or two values around position ``fraction * (count - 1)`` (one query)."""
    if not count:
        return None
    position = fraction * (count - 1)
    low = math.floor(position)
    values = list(ordered.values_list("duration", flat=True)[low : low + 2])
    if len(values) == 1 or position == low:
        return values[0]
    share = position - low
    return values[0] + (values[1] - values[0]) * share


def times(period: Period) -> Times:
    """First-response time over the tickets first answered in ``period``, and time to resolve over those resolved
    in it (each from the ticket's creation)."""
    return Times(
        first_response=durations(Ticket.objects.filter(period.contains("first_responded_at")), "first_responded_at"),
        resolution=durations(Ticket.objects.filter(period.contains("resolved_at")), "resolved_at"),
    )


# SLA compliance ---------------------------------------------------------------------------------------------------


@dataclass
class Compliance:
    met: int
    breached: int
    running: int  # no answer yet and not yet due: neither met nor breached
    without_target: int

    @property
    def decided(self) -> int:
        return self.met + self.breached

    @property
    def share(self) -> float | None:
        """Met over met + breached, as a fraction; None when nothing is decided yet."""
        return self.met / self.decided if self.decided else None


@dataclass
class SlaCompliance:
    first_response: Compliance
    resolution: Compliance


def sla_compliance(period: Period, *, now: datetime | None = None) -> SlaCompliance:
    """Of the tickets created in ``period``: how many met their first-response and resolution targets
    (``first_response_due_at``, ``resolution_due_at``, set by the SLA policies). A ticket is *met* when the time
    came at or before its due time, *breached* when it came later or has not come and the due time is past, and
    still *running* otherwise. Tickets without a target are counted apart. One query."""
    now = now or timezone.now()
    counts: dict[str, Count] = {}
    for name, done, due in (
        ("first_response", "first_responded_at", "first_response_due_at"),
        ("resolution", "resolved_at", "resolution_due_at"),
    ):
        has_due = Q(**{f"{due}__isnull": False})
        done_on_time = Q(**{f"{done}__isnull": False, f"{done}__lte": F(due)})
        done_late = Q(**{f"{done}__isnull": False, f"{done}__gt": F(due)})
        not_done = Q(**{f"{done}__isnull": True})
        counts |= {
            f"{name}_met": _count(filter=has_due & done_on_time),
            f"{name}_breached": _count(filter=has_due & (done_late | (not_done & Q(**{f"{due}__lt": now})))),
            f"{name}_running": _count(filter=has_due & not_done & Q(**{f"{due}__gte": now})),
            f"{name}_without": _count(filter=Q(**{f"{due}__isnull": True})),
        }
    row = Ticket.objects.filter(period.contains("created_at")).aggregate(**counts)

    def compliance(name):
        return Compliance(
            met=row[f"{name}_met"],
            breached=row[f"{name}_breached"],
            running=row[f"{name}_running"],
            without_target=row[f"{name}_without"],
        )

    return SlaCompliance(first_response=compliance("first_response"), resolution=compliance("resolution"))


# Backlog by age ---------------------------------------------------------------------------------------------------

#: (label, younger than): open tickets by the time since they were created; the last band has no upper bound.
AGE_BANDS = (
    ("Under 1 day", timedelta(days=1)),
    ("1–3 days", timedelta(days=3)),
    ("3–7 days", timedelta(days=7)),
    ("1–4 weeks", timedelta(weeks=4)),
    ("Older", None),
)


def backlog(*, now: datetime | None = None) -> dict[str, int]:
    """The open tickets now, by age band (label -> count): one query. A snapshot, so no period applies."""
    now = now or timezone.now()
    counts: dict[str, Count] = {}
    newer_than: timedelta | None = None
    for n, (_, younger_than) in enumerate(AGE_BANDS):
        band = Q()
        if younger_than is not None:
            band &= Q(created_at__gt=now - younger_than)
        if newer_than is not None:
            band &= Q(created_at__lte=now - newer_than)
        counts[f"band{n}"] = _count(band or None)
        newer_than = younger_than
    row = Ticket.objects.open().aggregate(**counts)
    return {label: row[f"band{n}"] for n, (label, _) in enumerate(AGE_BANDS)}


# Agent workload ---------------------------------------------------------------------------------------------------


@dataclass
class Workload:
    agent: str
    open: int
    resolved: int


def workload(period: Period) -> list[Workload]:
    """Per assignee: their open tickets now, and the tickets assigned to them that were resolved in ``period``.
    Open tickets nobody is assigned to come last, as "(unassigned)". Two queries, each read from an index alone
    (``ticket_open_created``, ``ticket_resolved``); the agents' names come with them."""
    people = ("assignee_id", "assignee__username", "assignee__first_name", "assignee__last_name")
    open_rows = Ticket.objects.open().values(*people).annotate(count=_count()).order_by()
    resolved_rows = (
        Ticket.objects.filter(period.contains("resolved_at")).values(*people).annotate(count=_count()).order_by()
    )
    by_agent: dict[int | None, Workload] = {}
    for kind, rows in (("open", open_rows), ("resolved", resolved_rows)):
        for row in rows:
            load = by_agent.get(row["assignee_id"])
            if load is None:
                load = by_agent[row["assignee_id"]] = Workload(agent=_agent_name(row), open=0, resolved=0)
            setattr(load, kind, row["count"])
    unassigned = by_agent.pop(None, None)
    agents = sorted(by_agent.values(), key=lambda w: (-w.open, -w.resolved, w.agent))
    return agents + ([unassigned] if unassigned else [])


def _agent_name(row) -> str:
    if row["assignee_id"] is None:
        return "(unassigned)"
    name = f"{row['assignee__first_name']} {row['assignee__last_name']}".strip()
    return name or row["assignee__username"]


def hours(value: timedelta | None) -> float | None:
    """A duration in hours, rounded to 0.01 (what reports and their CSV show)."""
    return None if value is None else round(value.total_seconds() / 3600, 2)
