"""What admins keep for ITIL in the console: the categories, the affected services and the priority matrix
(``tickets.itil``; every change audited)."""

from django.contrib import messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render

from tickets.itil import ItilError, matrix_grid, save_list_entry, save_matrix
from tickets.models import Category, Service

from .access import admin_required
from .itil_forms import LEVELS, ListEntryForm, PriorityMatrixForm

#: The lists, by the name their URLs use: (model, singular, plural).
LISTS = {
    "categories": (Category, "category", "Categories"),
    "services": (Service, "service", "Affected services"),
}


def _names(which):
    """The list's URL names, for its templates."""
    singular = LISTS[which][1]
    return {
        "list_url": f"console:{which}",
        "create_url": f"console:{singular}-create",
        "edit_url": f"console:{singular}-edit",
    }


def _list_page(request, which):
    model, singular, plural = LISTS[which]
    entries = model.objects.annotate(ticket_count=Count("tickets")).order_by("-active", "name")
    return render(
        request,
        "console/catalog_list.html",
        {"section": "catalog", "entries": entries, "singular": singular, "plural": plural, **_names(which)},
    )


def _edit(request, which, entry):
    _model, singular, plural = LISTS[which]
    initial = {"name": entry.name, "active": entry.active} if entry.pk else {"active": True}
    form = ListEntryForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            save_list_entry(entry, actor=request.user, **form.cleaned_data)
        except ItilError as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"{singular.capitalize()} “{entry.name}” saved.")
            return redirect(f"console:{which}")
    context = {"section": "catalog", "form": form, "entry": entry, "singular": singular, "plural": plural}
    return render(request, "console/catalog_form.html", {**context, **_names(which)})


@admin_required
def category_list(request):
    return _list_page(request, "categories")


@admin_required
def category_create(request):
    return _edit(request, "categories", Category())


@admin_required
def category_edit(request, pk):
    return _edit(request, "categories", get_object_or_404(Category, pk=pk))


@admin_required
def service_list(request):
    return _list_page(request, "services")


@admin_required
def service_create(request):
    return _edit(request, "services", Service())


@admin_required
def service_edit(request, pk):
    return _edit(request, "services", get_object_or_404(Service, pk=pk))


@admin_required
def priority_matrix(request):
    """The 3x3 grid of impact x urgency → priority. A change applies to tickets whose impact or urgency is set
    from then on; tickets keep the priority they have."""
    form = PriorityMatrixForm(request.POST or None, grid=matrix_grid())
    if request.method == "POST" and form.is_valid():
        if save_matrix(form.cells(), actor=request.user):
            messages.success(request, "Priority matrix saved.")
        else:
            messages.info(request, "Nothing to change.")
        return redirect("console:priority-matrix")
    return render(
        request,
        "console/priority_matrix.html",
        {"section": "catalog", "form": form, "urgencies": [label for _, label in LEVELS]},
    )
