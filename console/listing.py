"""Paging and the nav's triage count, shared by the console's lists (queue, triage)."""

from channels_ingest.models import InboundMessage

PAGE_SIZE = 50
#: The nav shows at most this many rows awaiting triage ("99+" beyond), so counting stays cheap.
TRIAGE_COUNT_CAP = 100


def page_of(queryset, page):
    """One page of a list, without a COUNT: one extra row tells whether a next page exists."""
    start = (page - 1) * PAGE_SIZE
    rows = list(queryset[start : start + PAGE_SIZE + 1])
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def triage_count():
    """Rows awaiting triage, for the nav: "99+" past the cap. One capped index read, never a full COUNT."""
    ids = InboundMessage.objects.filter(status=InboundMessage.Status.TRIAGE).values_list("id", flat=True)
    found = len(ids[:TRIAGE_COUNT_CAP])
    return f"{TRIAGE_COUNT_CAP - 1}+" if found >= TRIAGE_COUNT_CAP else str(found)
