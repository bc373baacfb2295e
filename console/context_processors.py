from django.utils.functional import SimpleLazyObject

from .access import request_role


def console_role(request):
    """The signed-in user's role, for the nav; looked up only by a template that reads it."""
    return {"console_role": SimpleLazyObject(lambda: request_role(request) or "")}
