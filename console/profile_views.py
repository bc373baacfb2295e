"""My profile: what every signed-in user (admin, agent or employee) sets for themselves, today their time zone."""

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
        fields = ["time_zone"]


@login_required
def my_profile(request):
    profile = Profile.objects.filter(user=request.user).first() or Profile(user=request.user)
    form = ProfileForm(request.POST or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        form.save()
        request.session[SESSION_KEY] = profile.time_zone
        messages.success(request, f"Saved: times are now shown in {profile.time_zone}.")
        return redirect("console:my-profile")
    # Agents see it in the console; employees without the console's nav (its pages are not theirs).
    base = "console/base.html" if request_role(request) in (Role.ADMIN, Role.AGENT) else "base.html"
    context = {"section": "profile", "form": form, "base_template": base}
    return render(request, "console/my_profile.html", context)
