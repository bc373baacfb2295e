"""The Triage list: public posts that mention us but did not open a ticket on their own."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from channel_adapters.base import Envelope
from channels_ingest.ingest import accept_triaged, dismiss_triaged
from channels_ingest.models import Channel, InboundMessage

from .access import agent_required
from .forms import PageForm, selected_ids
from .listing import page_of, triage_count


@dataclass(frozen=True)
class TriageRow:
    id: int
    channel: Channel
    text: str
    sent_at: datetime
    display_name: str
    handle: str


def _triage_row(row: InboundMessage) -> TriageRow:
    envelope = Envelope.from_json(row.payload)
    sender = envelope.sender
    handle = sender.handle if sender else ""
    if handle and not handle.startswith("@"):
        handle = f"@{handle}"
    return TriageRow(
        id=row.pk,
        channel=row.channel,
        text=envelope.text,
        sent_at=envelope.sent_at,
        display_name=(sender.display_name if sender else "") or "",
        handle=handle or (sender.external_id if sender else ""),
    )


@agent_required
def triage(request):
    """Public posts that mention us but did not open a ticket on their own, newest first."""
    page = PageForm(request.GET).page_number()
    rows = (
        InboundMessage.objects.filter(status=InboundMessage.Status.TRIAGE)
        .select_related("channel")
        .only("id", "payload", "received_at", "channel__id", "channel__name", "channel__kind")
        .order_by("-id")
    )
    rows, has_next = page_of(rows, page)
    context = {
        "section": "triage",
        "rows": [_triage_row(row) for row in rows],
        "page": page,
        "has_next": has_next,
        "triage_count": triage_count(),
    }
    return render(request, "console/triage.html", context)


def _back_to_triage(request):
    page = PageForm(request.POST).page_number()
    return redirect(reverse("console:triage") + (f"?page={page}" if page > 1 else ""))


def _plural(count, word):
    return f"{count} {word}{'' if count == 1 else 's'}"


def _triage(request, decide, done):
    ids = selected_ids(request.POST)
    if not ids:
        messages.error(request, "Select at least one post.")
        return _back_to_triage(request)
    count = decide(ids, user=request.user)
    if count:
        messages.success(request, f"{_plural(count, 'post')} {done}")
    if count < len(ids):
        messages.info(request, f"{_plural(len(ids) - count, 'post')} had already been triaged.")
    return _back_to_triage(request)


@agent_required
@require_POST
def triage_accept(request):
    return _triage(request, accept_triaged, "accepted: the tickets appear in the list in a moment.")


@agent_required
@require_POST
def triage_dismiss(request):
    return _triage(request, dismiss_triaged, "dismissed.")
