"""The site's front door: each person lands where their work is."""

from django.shortcuts import redirect

from tickets.roles import is_agent


def home(request):
    """Agents and admins to the console, employees to the portal, everyone else to the login page."""
    if not request.user.is_authenticated:
        return redirect("login")
    return redirect("console:ticket-list" if is_agent(request.user) else "portal:tickets")
