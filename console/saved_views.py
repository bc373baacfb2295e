"""Saved views: an agent names the queue's current filters and gets them back in one click."""

from django.contrib import messages
from django.http import QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from tickets.models import SavedView

from .access import agent_required
from .forms import SavedViewForm, filter_query

#: Saved views an agent may keep; the list above the queue stays short enough to scan.
MAX_SAVED_VIEWS = 30


@agent_required
@require_POST
def saved_view_create(request):
    """Save the list's current filters under a name; saving a name again replaces its filters."""
    form = SavedViewForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return redirect(list_url(filter_query(QueryDict(request.POST.get("query", "")))))
    name, query = form.cleaned_data["name"], form.cleaned_data["query"]
    mine = SavedView.objects.filter(owner=request.user)
    if not mine.filter(name=name).exists() and mine.count() >= MAX_SAVED_VIEWS:
        messages.error(request, f"You have {MAX_SAVED_VIEWS} saved views already; delete one first.")
    else:
        SavedView.objects.update_or_create(owner=request.user, name=name, defaults={"query": query})
        messages.success(request, f"Saved view “{name}”.")
    return redirect(list_url(query))


@agent_required
@require_POST
def saved_view_delete(request, pk):
    saved = get_object_or_404(SavedView, pk=pk, owner=request.user)
    saved.delete()
    messages.success(request, f"Deleted saved view “{saved.name}”.")
    return redirect("console:ticket-list")


def list_url(query):
    """The queue with this query string."""
    return reverse("console:ticket-list") + (f"?{query}" if query else "")
