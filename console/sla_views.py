"""SLA calendars and policies in the console, for admins (``tickets.sla``: save_calendar, save_policy; audited)."""

from datetime import date
from zoneinfo import available_timezones

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render

from tickets.models import Calendar, Category, Queue, SlaPolicy, Team, Ticket
from tickets.sla import SlaConfigError, save_calendar, save_policy

from .access import admin_required
from .forms import AgentChoiceField, agents

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _format_hours(intervals) -> str:
    return ", ".join(f"{start}-{end}" for start, end in intervals)


def _parse_hours(text: str) -> list[list[str]]:
    intervals = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        start, sep, end = part.partition("-")
        if not sep:
            raise forms.ValidationError(f"Write hours as 08:00-18:00 (not {part!r}).")
        intervals.append([start.strip(), end.strip()])
    return intervals


class CalendarForm(forms.Form):
    name = forms.CharField(max_length=100)
    time_zone = forms.ChoiceField(choices=[(z, z) for z in sorted(available_timezones())], initial="Europe/Berlin")
    always_open = forms.BooleanField(required=False, label="Open around the clock, 24/7 (ignores hours and holidays)")
    holiday_country = forms.CharField(
        max_length=2, required=False, help_text="ISO country code for public holidays, e.g. DE; blank for none."
    )
    holiday_subdivision = forms.CharField(max_length=10, required=False, help_text="e.g. BE for Berlin; optional.")
    custom_holidays = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="One per line: 2026-12-24 Christmas Eve",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for day, name in enumerate(WEEKDAYS):
            self.fields[f"day_{day}"] = forms.CharField(
                required=False, label=f"{name} hours", help_text="e.g. 08:00-12:00, 13:00-18:00; blank: closed"
            )

    def clean_holiday_country(self):
        return self.cleaned_data["holiday_country"].upper()

    def clean_custom_holidays(self):
        days = []
        for line in filter(None, (raw.strip() for raw in self.cleaned_data["custom_holidays"].splitlines())):
            text, _, name = line.partition(" ")
            try:
                days.append((date.fromisoformat(text), name.strip()[:100]))
            except ValueError:
                raise forms.ValidationError(f"Not a date (YYYY-MM-DD): {text!r}.") from None
        return days

    def hours(self) -> dict:
        return {
            str(day): _parse_hours(self.cleaned_data.get(f"day_{day}") or "")
            for day in range(7)
            if self.cleaned_data.get(f"day_{day}")
        }

    def clean(self):
        data = super().clean()
        for day in range(7):
            try:
                _parse_hours(data.get(f"day_{day}") or "")
            except forms.ValidationError as exc:
                self.add_error(f"day_{day}", exc)
        return data


class PolicyForm(forms.ModelForm):
    priorities = forms.TypedMultipleChoiceField(
        choices=Ticket.Priority.choices,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any priority.",
    )
    reassign_to = AgentChoiceField(queryset=agents(), required=False, empty_label="Nobody")

    class Meta:
        model = SlaPolicy
        fields = [
            "name",
            "position",
            "active",
            "priorities",
            "kind",
            "category",
            "queue",
            "vip_only",
            "first_response_minutes",
            "resolution_minutes",
            "calendar",
            "warning_percent",
            "notify",
            "reassign_to",
            "reassign_to_team",
            "raise_priority",
        ]
        labels = {
            "vip_only": "Only VIP requesters",
            "first_response_minutes": "First response within (business minutes)",
            "resolution_minutes": "Resolution within (business minutes)",
            "warning_percent": "Warn at (% of the time used)",
            "notify": "On breach, email the assignee and the team lead",
            "reassign_to": "On breach, reassign to",
            "reassign_to_team": "On breach, move to team",
            "raise_priority": "On breach, raise the priority one step",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = Category.objects.all()
        self.fields["queue"].queryset = Queue.objects.all()
        self.fields["reassign_to_team"].queryset = Team.objects.all()
        self.fields["category"].empty_label = self.fields["queue"].empty_label = "Any"
        self.fields["kind"].choices = [("", "Any"), *Ticket.Kind.choices]


@admin_required
def sla_settings(request):
    return render(
        request,
        "console/sla_settings.html",
        {
            "section": "sla",
            "calendars": Calendar.objects.all(),
            "policies": SlaPolicy.objects.select_related("calendar", "category", "queue"),
        },
    )


def _calendar_initial(calendar):
    if not calendar.pk:
        return {"day_0": "08:00-18:00", **{f"day_{d}": "08:00-18:00" for d in range(1, 5)}}
    initial = {
        "name": calendar.name,
        "time_zone": calendar.time_zone,
        "always_open": calendar.always_open,
        "holiday_country": calendar.holiday_country,
        "holiday_subdivision": calendar.holiday_subdivision,
        "custom_holidays": "\n".join(f"{h.date} {h.name}".strip() for h in calendar.custom_holidays.all()),
    }
    for day, intervals in (calendar.hours or {}).items():
        initial[f"day_{day}"] = _format_hours(intervals)
    return initial


def _edit_calendar(request, calendar):
    form = CalendarForm(request.POST or None, initial=_calendar_initial(calendar))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        calendar.name = data["name"].strip()
        calendar.time_zone = data["time_zone"]
        calendar.always_open = data["always_open"]
        calendar.holiday_country = data["holiday_country"]
        calendar.holiday_subdivision = data["holiday_subdivision"].strip()
        calendar.hours = form.hours()
        try:
            save_calendar(calendar, actor=request.user, custom_holidays=data["custom_holidays"])
        except SlaConfigError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Calendar “{calendar.name}” saved.")
            return redirect("console:sla-settings")
    return render(
        request, "console/sla_form.html", {"section": "sla", "form": form, "what": "calendar", "obj": calendar}
    )


@admin_required
def calendar_create(request):
    return _edit_calendar(request, Calendar())


@admin_required
def calendar_edit(request, pk):
    return _edit_calendar(request, get_object_or_404(Calendar, pk=pk))


def _edit_policy(request, policy):
    form = PolicyForm(request.POST or None, instance=policy)
    if request.method == "POST" and form.is_valid():
        try:
            save_policy(form.instance, actor=request.user)
        except SlaConfigError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Policy “{form.instance.name}” saved.")
            return redirect("console:sla-settings")
    return render(request, "console/sla_form.html", {"section": "sla", "form": form, "what": "policy", "obj": policy})


@admin_required
def policy_create(request):
    return _edit_policy(request, SlaPolicy())


@admin_required
def policy_edit(request, pk):
    return _edit_policy(request, get_object_or_404(SlaPolicy, pk=pk))
