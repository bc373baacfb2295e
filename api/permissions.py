from rest_framework.permissions import BasePermission

from tickets.roles import is_agent


class IsAgent(BasePermission):
    message = "Only agents and admins may use this endpoint."

    def has_permission(self, request, view):
        return is_agent(request.user)
