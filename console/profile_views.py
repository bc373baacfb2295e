"""My profile: what every signed-in user (admin, agent or employee) sets for themselves: their time zone, and for
agents their availability (whether automatic assignment gives them new tickets)."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from tickets.models import Profile, time_zone_names
from tickets.roles import Role

from .access import request_role
from .time_zones import SESSION_KEY


class ProfileForm(forms.ModelForm):
    time_zone = forms.ChoiceField(
        choices=lambda: [(name, name) for name in sorted(time_zone_names())],
        help_text="The console shows every time in this zone, with its abbreviation (CET, EST…).",
    )

    class Meta:
        model = Profile
        fields = ["time_zone", "availability"]
        help_texts = {"availability": "Away or offline: teams' automatic assignment gives you no new tickets."}

    def __init__(self, *args, agent: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not agent:  # only agents are assigned tickets
            del self.fields["availability"]
        else:  # a form that leaves it out (an older page) keeps it as it is
            self.fields["availability"].required = False

    def clean_availability(self):
        return self.cleaned_data["availability"] or self.instance.availability


@login_required
def my_profile(request):
    profile = Profile.objects.filter(user=request.user).first() or Profile(user=request.user)
    agent = request_role(request) in (Role.ADMIN, Role.AGENT)
    form = ProfileForm(request.POST or None, instance=profile, agent=agent)
    if request.method == "POST" and form.is_valid():
        form.save()
        request.session[SESSION_KEY] = profile.time_zone
        availability = f" You are {profile.get_availability_display().lower()}." if agent else ""
        messages.success(request, f"Saved: times are now shown in {profile.time_zone}.{availability}")
        return redirect("console:my-profile")
    # Agents see it in the console; employees without the console's nav (its pages are not theirs).
    base = "console/base.html" if agent else "base.html"
    context = {"section": "profile", "form": form, "base_template": base}
    return render(request, "console/my_profile.html", context)
