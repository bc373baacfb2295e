"""The console's ITIL forms: a ticket's classification, problem link and change plan, the lists admins keep
(categories, services) and the priority matrix."""

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from tickets.models import Category, Service, Ticket

from .forms import AgentChoiceField, agents

LEVELS = Ticket.Level.choices
#: What a datetime-local input holds.
LOCAL_INPUT = "%Y-%m-%dT%H:%M"


def _in_use_or(model, current_id):
    """The entries agents may choose: the active ones, and the ticket's own even if deactivated since."""
    return model.objects.filter(Q(active=True) | Q(pk=current_id)).order_by("name")


class ClassificationForm(forms.Form):
    kind = forms.ChoiceField(label="Type", choices=Ticket.Kind.choices)
    category = forms.ModelChoiceField(queryset=Category.objects.none(), required=False, empty_label="No category")
    service = forms.ModelChoiceField(
        label="Affected service", queryset=Service.objects.none(), required=False, empty_label="No service"
    )
    impact = forms.TypedChoiceField(choices=LEVELS, coerce=int)
    urgency = forms.TypedChoiceField(choices=LEVELS, coerce=int)

    def __init__(self, *args, ticket, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = _in_use_or(Category, ticket.category_id)
        self.fields["service"].queryset = _in_use_or(Service, ticket.service_id)

    @classmethod
    def for_ticket(cls, ticket):
        initial = {
            "kind": ticket.kind,
            "category": ticket.category_id,
            "service": ticket.service_id,
            "impact": ticket.impact,
            "urgency": ticket.urgency,
        }
        return cls(initial=initial, ticket=ticket, auto_id="itil-%s")


class ProblemLinkForm(forms.Form):
    """Link an incident to a problem by its ticket number; blank unlinks."""

    problem = forms.IntegerField(label="Problem ticket #", min_value=1, max_value=2**62, required=False)
    #: The ticket page to go back to (the problem's, when unlinking from its list of incidents).
    back = forms.IntegerField(min_value=1, max_value=2**62, required=False, widget=forms.HiddenInput)

    def clean_problem(self):
        pk = self.cleaned_data["problem"]
        if pk is None:
            return None
        problem = Ticket.objects.filter(pk=pk).only("id", "kind", "subject").first()
        if problem is None:
            raise forms.ValidationError(f"There is no ticket #{pk}.")
        return problem


class ChangePlanForm(forms.Form):
    """A change's planned window, in the agent's own zone (the labels name it), and its approver."""

    start = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT))
    end = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT))
    approver = AgentChoiceField(queryset=agents(), empty_label=None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Django reads the typed wall time in the current zone (the agent's, console.time_zones), refusing a
        # time that zone skips or repeats when its clocks change. Named, not abbreviated: "CET" would be wrong
        # for a window in summer.
        zone = timezone.get_current_timezone_name()
        self.fields["start"].label = f"Window starts ({zone} time)"
        self.fields["end"].label = f"Window ends ({zone} time)"

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            raise forms.ValidationError("The window must end after it starts.")
        return data

    @classmethod
    def for_ticket(cls, ticket):
        initial = {"start": ticket.change_start, "end": ticket.change_end, "approver": ticket.change_approver_id}
        return cls(initial=initial, auto_id="change-%s")


class ChangeDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    reason = forms.CharField(max_length=200, required=False, strip=True)


class ListEntryForm(forms.Form):
    """A category or a service: its name, and whether agents may still choose it."""

    name = forms.CharField(max_length=100, strip=True)
    active = forms.BooleanField(
        required=False, initial=True, label="In use", help_text="Agents can choose it for tickets."
    )


class PriorityMatrixForm(forms.Form):
    """The 3x3 grid: one priority per impact x urgency cell, named ``cell_<impact>_<urgency>``."""

    def __init__(self, *args, grid, **kwargs):
        super().__init__(*args, **kwargs)
        for impact, impact_label in LEVELS:
            for urgency, urgency_label in LEVELS:
                self.fields[f"cell_{impact}_{urgency}"] = forms.TypedChoiceField(
                    label=f"Impact {impact_label}, urgency {urgency_label}",
                    choices=Ticket.Priority.choices[::-1],
                    coerce=int,
                    initial=grid[(impact, urgency)],
                )

    def rows(self):
        """(impact label, [bound field per urgency]) for the grid's table."""
        return [(label, [self[f"cell_{impact}_{u}"] for u, _ in LEVELS]) for impact, label in LEVELS]

    def cells(self) -> dict[tuple[int, int], int]:
        return {(i, u): self.cleaned_data[f"cell_{i}_{u}"] for i, _ in LEVELS for u, _ in LEVELS}


#: The most incidents a problem's page lists.
INCIDENTS_SHOWN = 100


def itil_panel(ticket) -> dict:
    """The ticket page's ITIL section: its forms, the problem it is linked to, or a problem's incidents."""
    kind = ticket.kind
    panel = {"classification_form": ClassificationForm.for_ticket(ticket), "problem_form": ProblemLinkForm()}
    brief = ("id", "subject", "status", "kind")
    if kind == Ticket.Kind.PROBLEM:
        panel["incidents"] = list(ticket.incidents.only(*brief).order_by("-id")[:INCIDENTS_SHOWN])
    elif ticket.problem_id:
        panel["problem"] = Ticket.objects.only(*brief).filter(pk=ticket.problem_id).first()
    if kind == Ticket.Kind.CHANGE:
        panel["change_form"] = ChangePlanForm.for_ticket(ticket)
        approver = ticket.change_approver_id
        users = get_user_model().objects.only("id", "username", "first_name", "last_name")
        panel["change_approver"] = users.filter(pk=approver).first() if approver else None
    return panel
