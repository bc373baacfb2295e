"""Users in the console, for admins: the list, inviting an agent or admin, their role and teams, deactivating
and reactivating them. The rules are in ``tickets.staff``; these views only show them and their refusals."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from tickets.models import Team
from tickets.roles import Role, assigned_role
from tickets.staff import StaffError, invite_user, set_active, update_user

from .access import admin_required
from .invitations import InvitationNotSent, send_invitation

PAGE_SIZE = 50

ROLE_CHOICES = [(Role.ADMIN, "Admin"), (Role.AGENT, "Agent"), (Role.EMPLOYEE, "Employee")]


class TeamsField(forms.ModelMultipleChoiceField):
    def __init__(self, **kwargs):
        super().__init__(
            queryset=Team.objects.order_by("name"), required=False, widget=forms.CheckboxSelectMultiple, **kwargs
        )


class InviteForm(forms.Form):
    email = forms.EmailField(
        help_text="They get an email with a link to set their password; it is also their username."
    )
    role = forms.ChoiceField(choices=ROLE_CHOICES[:2], initial=Role.AGENT, widget=forms.RadioSelect)
    teams = TeamsField()


class UserForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES, widget=forms.RadioSelect)
    teams = TeamsField()


def _listed_users():
    """Every user with what the list shows, in three queries however many there are (page, groups, teams)."""
    return (
        get_user_model()
        .objects.order_by("-is_active", "username")
        # The password only for whether it is usable yet (an invitation pending); it is never shown.
        .only("id", "username", "first_name", "last_name", "is_active", "is_superuser", "last_login", "password")
        .prefetch_related("groups", Prefetch("teams", queryset=Team.objects.only("id", "name")))
    )


@admin_required
def user_list(request):
    page = Paginator(_listed_users(), PAGE_SIZE).get_page(request.GET.get("page"))
    for user in page:
        user.role = assigned_role(user)
    return render(request, "console/users.html", {"section": "users", "page": page})


def _invite(request, user):
    try:
        send_invitation(request, user)
    except InvitationNotSent as exc:
        messages.error(
            request,
            f"The invitation to {user.email} could not be sent ({exc}). Resend it from their page once mail works.",
        )
    else:
        messages.success(request, f"Invited {user.email}: they were sent a link to set their password.")


@admin_required
def user_invite(request):
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = invite_user(
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                teams=form.cleaned_data["teams"],
                actor=request.user,
            )
        except StaffError as exc:
            form.add_error("email", str(exc))
        else:
            _invite(request, user)
            return redirect("console:user-list")
    return render(request, "console/user_invite.html", {"section": "users", "form": form})


@admin_required
def user_edit(request, pk):
    user = get_object_or_404(get_user_model().objects.prefetch_related("groups", "teams"), pk=pk)
    initial = {"role": assigned_role(user), "teams": list(user.teams.all())}
    form = UserForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            update_user(user, role=form.cleaned_data["role"], teams=form.cleaned_data["teams"], actor=request.user)
        except StaffError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Saved {user.get_username()}: {form.cleaned_data['role']}.")
            return redirect("console:user-list")
    return render(request, "console/user_edit.html", {"section": "users", "form": form, "person": user})


def _set_active(request, pk, active):
    user = get_object_or_404(get_user_model(), pk=pk)
    try:
        set_active(user, active, actor=request.user)
    except StaffError as exc:
        messages.error(request, str(exc))
    else:
        done = "Reactivated" if active else "Deactivated"
        messages.success(request, f"{done} {user.get_username()}.")
    return redirect("console:user-list")


@require_POST
@admin_required
def user_deactivate(request, pk):
    return _set_active(request, pk, False)


@require_POST
@admin_required
def user_reactivate(request, pk):
    return _set_active(request, pk, True)


@require_POST
@admin_required
def user_resend_invitation(request, pk):
    """Send the link again (lost, expired, or not sent), while the user has not set a password yet."""
    user = get_object_or_404(get_user_model(), pk=pk)
    if user.has_usable_password() or not user.email or not user.is_active:
        messages.error(request, f"{user.get_username()} has no invitation pending.")
    else:
        _invite(request, user)
    return redirect("console:user-edit", pk=user.pk)
