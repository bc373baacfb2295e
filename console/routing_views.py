"""Routing rules in the console, for admins: the list in order, add, edit, delete, move up and down, and a tester
that says what the rules (or the rule being edited, before it is saved) would do to a sample message
(``tickets.routing``). Nothing the tester does is saved."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from channels_ingest.models import Channel
from tickets.models import Category, RoutingRule, Ticket, time_zone_names
from tickets.routing import (
    RULE_FIELDS,
    Sample,
    delete_rule,
    describe,
    dry_run,
    matches,
    move_rule,
    rule_values,
    save_rule,
)

from .access import admin_required
from .forms import AgentChoiceField, agents


def _channel_kinds():
    kinds = sorted(set(Channel.objects.values_list("kind", flat=True)))
    return [("", "Any kind"), *((kind, kind) for kind in kinds)]


class RuleForm(forms.ModelForm):
    channel_kind = forms.ChoiceField(label="Kind of channel", choices=_channel_kinds, required=False)
    time_zone = forms.ChoiceField(
        choices=lambda: [(name, name) for name in sorted(time_zone_names())],
        initial="UTC",
        help_text="The zone the time window is read in.",
    )
    set_assignee = AgentChoiceField(
        label="Assign to",
        queryset=agents(),
        required=False,
        empty_label="Nobody (or the team's automatic assignment)",
    )

    class Meta:
        model = RoutingRule
        fields = [name for name in RULE_FIELDS if name != "position"]
        widgets = {
            "time_from": forms.TimeInput(attrs={"type": "time"}),
            "time_until": forms.TimeInput(attrs={"type": "time"}),
        }
        # Conditions say "is", actions "set": both have a type and a category.
        labels = {
            "channel": "Channel is",
            "department": "Requester's department",
            "vip": "Requester is a VIP",
            "language": "Requester's language",
            "kind": "Type is",
            "category": "Category is",
            "time_from": "Arrives from",
            "time_until": "Arrives until",
            "set_queue": "Set queue",
            "set_team": "Set team",
            "set_priority": "Set priority",
            "raise_priority": "Raise priority",
            "set_kind": "Set type",
            "set_category": "Set category",
            "add_tags": "Add tags",
        }


class SampleForm(forms.Form):
    """A sample message for the tester."""

    sample_text = forms.CharField(label="Sample message", widget=forms.Textarea(attrs={"rows": 3}), max_length=5000)
    sample_channel = forms.ModelChoiceField(
        label="Sample channel", queryset=Channel.objects.order_by("name"), required=False, empty_label="No channel"
    )
    sample_department = forms.CharField(label="Requester's department", max_length=100, required=False)
    sample_vip = forms.BooleanField(label="The requester is a VIP", required=False)
    sample_language = forms.CharField(label="Requester's language", max_length=16, required=False)
    sample_kind = forms.ChoiceField(
        label="Sample type", choices=Ticket.Kind.choices, initial=Ticket.Kind.INCIDENT, required=False
    )
    sample_category = forms.ModelChoiceField(
        label="Sample category", queryset=Category.objects.filter(active=True), required=False, empty_label="None"
    )
    sample_at = forms.DateTimeField(
        label="Arrives at",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="In your time zone; empty for now.",
    )

    def sample(self) -> Sample:
        data = self.cleaned_data
        channel = data["sample_channel"]
        return Sample(
            text=data["sample_text"],
            at=data["sample_at"] or timezone.now(),
            channel_id=channel.pk if channel else None,
            channel_kind=channel.kind if channel else "",
            department=data["sample_department"],
            vip=data["sample_vip"],
            language=data["sample_language"],
            kind=data["sample_kind"] or Ticket.Kind.INCIDENT,
            category_id=data["sample_category"].pk if data["sample_category"] else None,
        )


@admin_required
def rule_list(request):
    rules = RoutingRule.objects.select_related(
        "channel", "category", "set_queue", "set_team", "set_category", "set_assignee"
    )
    rows = [(rule, describe(rule)) for rule in rules]
    return render(request, "console/routing_rules.html", {"section": "routing", "rows": rows})


def _edit(request, rule):
    before = rule_values(rule) if rule.pk else None
    testing = request.method == "POST" and request.POST.get("action") == "test"
    form = RuleForm(request.POST or None, instance=rule)
    sample_form = SampleForm(request.POST if testing else None)
    result = None
    if request.method == "POST" and form.is_valid():
        if testing:
            if sample_form.is_valid():
                candidate = form.instance  # validated, unsaved
                result = {"matched": matches(candidate, sample_form.sample()), "actions": describe(candidate)}
        else:
            save_rule(form.instance, actor=request.user, before=before)
            messages.success(request, f"Routing rule “{rule.name}” saved.")
            return redirect("console:routing-rules")
    context = {"section": "routing", "form": form, "sample_form": sample_form, "rule": rule, "result": result}
    return render(request, "console/routing_rule_form.html", context)


@admin_required
def rule_create(request):
    return _edit(request, RoutingRule())


@admin_required
def rule_edit(request, pk):
    return _edit(request, get_object_or_404(RoutingRule, pk=pk))


@require_POST
@admin_required
def rule_delete(request, pk):
    rule = get_object_or_404(RoutingRule, pk=pk)
    delete_rule(rule, actor=request.user)
    messages.success(request, f"Routing rule “{rule.name}” deleted.")
    return redirect("console:routing-rules")


@require_POST
@admin_required
def rule_move(request, pk):
    rule = get_object_or_404(RoutingRule, pk=pk)
    move_rule(rule, up=request.POST.get("direction") != "down", actor=request.user)
    return redirect("console:routing-rules")


@admin_required
def rule_test(request):
    """What the active rules would do to a sample message, in order."""
    form = SampleForm(request.POST or None)
    applied = None
    if request.method == "POST" and form.is_valid():
        applied = dry_run(form.sample())
    return render(request, "console/routing_test.html", {"section": "routing", "sample_form": form, "applied": applied})
