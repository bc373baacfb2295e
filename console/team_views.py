"""Teams in the console, for admins: create, rename, members and lead, delete (``tickets.staff``)."""

from django import forms
from django.contrib import messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from tickets.models import Team
from tickets.staff import StaffError, delete_team, save_team

from .access import admin_required
from .forms import AgentChoiceField, agents


class AgentsField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return obj.get_full_name() or obj.get_username()


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100)
    members = AgentsField(queryset=agents(), required=False, widget=forms.CheckboxSelectMultiple)
    lead = AgentChoiceField(
        queryset=agents(), required=False, empty_label="No lead", help_text="The lead is also a member."
    )
    assignment = forms.ChoiceField(
        label="Automatic assignment",
        choices=Team.Assignment.choices,
        required=False,
        help_text="When a routing rule sends a ticket to this team: who gets it. Agents who are away or offline "
        "are skipped.",
    )


@admin_required
def team_list(request):
    teams = Team.objects.select_related("lead").annotate(member_count=Count("members"))
    return render(request, "console/teams.html", {"section": "teams", "teams": teams})


def _edit(request, team):
    initial = {}
    if team.pk:
        initial = {
            "name": team.name,
            "members": list(team.members.all()),
            "lead": team.lead,
            "assignment": team.assignment,
        }
    form = TeamForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            save_team(team, actor=request.user, **form.cleaned_data)
        except StaffError as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"Team “{team.name}” saved.")
            return redirect("console:team-list")
    return render(request, "console/team_form.html", {"section": "teams", "form": form, "team": team})


@admin_required
def team_create(request):
    return _edit(request, Team())


@admin_required
def team_edit(request, pk):
    return _edit(request, get_object_or_404(Team, pk=pk))


@require_POST
@admin_required
def team_delete(request, pk):
    team = get_object_or_404(Team, pk=pk)
    delete_team(team, actor=request.user)
    messages.success(request, f"Team “{team.name}” deleted; its members keep their accounts.")
    return redirect("console:team-list")
