"""The ticket page's ITIL actions (``tickets.itil``): type, category, service, impact and urgency; a problem's
link to its incidents; a change's planned window, approver and the approver's decision."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from tickets.itil import ItilError, classify, decide_change, link_problem, plan_change
from tickets.models import Ticket

from .access import agent_required
from .itil_forms import ChangeDecisionForm, ChangePlanForm, ClassificationForm, ProblemLinkForm
from .view_counts import forget_view_counts


def _form_errors(request, form):
    for field, errors in form.errors.items():
        label = f"{form[field].label}: " if field in form.fields else ""
        messages.error(request, f"{label}{' '.join(errors)}")


def _said(request, events, nothing="Nothing to change."):
    if not events:
        messages.info(request, nothing)
        return
    forget_view_counts()
    messages.success(request, " ".join(f"{e.get_kind_display()}: {e.old_display} → {e.new_display}." for e in events))


@agent_required
@require_POST
def ticket_classify(request, pk):
    ticket = get_object_or_404(Ticket.objects.select_related("category", "service"), pk=pk)
    form = ClassificationForm(request.POST, ticket=ticket)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("console:ticket-detail", pk=ticket.pk)
    try:
        events = classify(ticket, actor=request.user, **form.cleaned_data)
    except ItilError as exc:
        messages.error(request, str(exc))
    else:
        _said(request, events)
    return redirect("console:ticket-detail", pk=ticket.pk)


@agent_required
@require_POST
def ticket_problem(request, pk):
    """Link this incident to a problem (``problem``: its number) or unlink it (blank)."""
    ticket = get_object_or_404(Ticket, pk=pk)
    form = ProblemLinkForm(request.POST)
    back = ticket.pk
    if not form.is_valid():
        _form_errors(request, form)
    else:
        back = form.cleaned_data["back"] or ticket.pk
        try:
            events = link_problem(ticket, problem=form.cleaned_data["problem"], actor=request.user)
        except ItilError as exc:
            messages.error(request, str(exc))
        else:
            _said(request, events[:1], nothing="That was already so.")
    return redirect("console:ticket-detail", pk=back)


@agent_required
@require_POST
def ticket_change_plan(request, pk):
    ticket = get_object_or_404(Ticket, pk=pk)
    form = ChangePlanForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("console:ticket-detail", pk=ticket.pk)
    data = form.cleaned_data
    try:
        events = plan_change(
            ticket,
            actor=request.user,
            start=data["start"],
            end=data["end"],
            approver=data["approver"],
        )
    except ItilError as exc:
        messages.error(request, str(exc))
    else:
        _said(request, events)
    return redirect("console:ticket-detail", pk=ticket.pk)


@agent_required
@require_POST
def ticket_change_decision(request, pk):
    """The named approver approves or rejects the change; anyone else is told they cannot."""
    ticket = get_object_or_404(Ticket, pk=pk)
    form = ChangeDecisionForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("console:ticket-detail", pk=ticket.pk)
    try:
        event = decide_change(
            ticket,
            actor=request.user,
            approve=form.cleaned_data["decision"] == "approve",
            reason=form.cleaned_data["reason"],
        )
    except ItilError as exc:
        messages.error(request, str(exc))
    else:
        _said(request, [event])
    return redirect("console:ticket-detail", pk=ticket.pk)
