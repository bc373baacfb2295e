"""Macros (canned responses) in the console: the Macros page, and the composer's picker on the ticket page."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from tickets.audit import record_change
from tickets.macros import MacroError, apply_macro_actions, can_manage, usable_macro
from tickets.models import Macro, Ticket
from tickets.placeholders import PLACEHOLDERS
from tickets.roles import Role
from tickets.updates import TicketUpdateError

from .access import agent_required, request_role
from .forms import AgentChoiceField, agents


class MacroForm(forms.ModelForm):
    """A macro as its owner edits it. Admins also choose whether it is shared with every agent."""

    status = forms.ChoiceField(
        choices=[("", "Leave the status as it is"), *Ticket.Status.choices], required=False, label="Set status"
    )
    assignee = AgentChoiceField(
        queryset=agents(),
        required=False,
        empty_label="—",
        label="Specific agent",
        help_text="Only used with “Assign to a specific agent”.",
    )
    shared = forms.BooleanField(required=False, label="Shared with all agents")

    class Meta:
        model = Macro
        fields = ["name", "body", "status", "assignee_action", "assignee"]
        labels = {"body": "Text", "assignee_action": "Assignee"}
        widgets = {
            "body": forms.Textarea(attrs={"rows": 8, "dir": "auto"}),
            "assignee_action": forms.RadioSelect,
        }

    def __init__(self, *args, user, role: Role | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["name"].widget.attrs["dir"] = "auto"
        if role == Role.ADMIN:
            self.fields["shared"].initial = self.instance.pk is not None and self.instance.is_shared
        else:
            del self.fields["shared"]

    def save(self, commit=True):
        if "shared" not in self.fields:
            self.instance.owner = self.user
        else:
            self.instance.owner = None if self.cleaned_data["shared"] else self.user
        return super().save(commit)


def _manageable(request, pk) -> Macro:
    """The macro to edit or delete: someone else's personal macro is not found; a shared one needs an admin."""
    macro = get_object_or_404(Macro.objects.usable_by(request.user), pk=pk)
    if not can_manage(request.user, macro, request_role(request)):
        raise PermissionDenied
    return macro


@agent_required
def macro_list(request):
    rows = list(Macro.objects.usable_by(request.user).select_related("assignee"))
    role = request_role(request)
    for macro in rows:
        macro.manageable = can_manage(request.user, macro, role)
    context = {
        "section": "macros",
        "shared": [m for m in rows if m.is_shared],
        "mine": [m for m in rows if not m.is_shared],
    }
    return render(request, "console/macros.html", context)


def _audited(macro) -> dict:
    """What the audit log keeps of a macro; only shared macros are configuration (personal ones are not logged)."""
    return {
        "name": macro.name,
        "text": macro.body,
        "status": macro.status,
        "assignee": macro.assignee_action + (f" {macro.assignee.get_username()}" if macro.assignee_id else ""),
        "shared": macro.owner_id is None,
    }


def _edit(request, macro, *, created):
    before = None if created else _audited(macro)
    form = MacroForm(
        request.POST if request.method == "POST" else None,
        instance=macro,
        user=request.user,
        role=request_role(request),
    )
    if request.method == "POST" and form.is_valid():
        form.save()
        if (before and before["shared"]) or form.instance.is_shared:
            action = "macro.create" if created else "macro.update"
            record_change(actor=request.user, action=action, target=form.instance, before=before, after=_audited(macro))
        messages.success(request, f"Macro “{form.instance.name}” {'created' if created else 'saved'}.")
        return redirect("console:macro-list")
    context = {"section": "macros", "form": form, "macro": macro, "created": created, "placeholders": PLACEHOLDERS}
    return render(request, "console/macro_form.html", context)


@agent_required
def macro_create(request):
    return _edit(request, Macro(), created=True)


@agent_required
def macro_edit(request, pk):
    return _edit(request, _manageable(request, pk), created=False)


@agent_required
def macro_delete(request, pk):
    """GET asks to confirm; POST deletes."""
    macro = _manageable(request, pk)
    if request.method == "POST":
        if macro.is_shared:
            record_change(actor=request.user, action="macro.delete", target=macro, before=_audited(macro), after=None)
        macro.delete()
        messages.success(request, f"Macro “{macro.name}” deleted.")
        return redirect("console:macro-list")
    return render(request, "console/macro_confirm_delete.html", {"section": "macros", "macro": macro})


# On the ticket page ------------------------------------------------------------


@agent_required
def macro_insert(request, pk):
    """The chosen macro rendered for this ticket, with the hidden field that applies its actions on send.

    An empty choice answers an empty fragment: no macro is applied.
    """
    ticket = get_object_or_404(Ticket.objects.select_related("requester"), pk=pk)
    choice = request.GET.get("macro_pick", "")
    if not choice:
        return render(request, "console/_macro_chosen.html", {"ticket": ticket})
    try:
        macro = usable_macro(request.user, choice)
    except MacroError as exc:
        raise Http404 from exc
    context = {"ticket": ticket, "macro": macro, "text": macro.render(ticket, request.user)}
    return render(request, "console/_macro_chosen.html", context)


@agent_required
@require_POST
def macro_apply(request, pk):
    """The chosen macro's actions (status, assignee) without a reply."""
    ticket = get_object_or_404(Ticket, pk=pk)
    try:
        macro = usable_macro(request.user, request.POST.get("macro", ""))
        events = apply_macro_actions(ticket=ticket, actor=request.user, macro=macro)
    except (MacroError, TicketUpdateError) as exc:
        messages.error(request, str(exc))
    else:
        done = "applied" if events else "applied: nothing to change"
        messages.success(request, f"Macro “{macro.name}” {done}.")
    return redirect("console:ticket-detail", pk=ticket.pk)
