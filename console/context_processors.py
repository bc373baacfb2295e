"""What every console page shows beyond its own view: the signed-in user's role (for the nav) and the channels
that are broken, to admins. Both lazy: looked up only by a template that reads them."""

from django.utils.functional import SimpleLazyObject

from channels_ingest.models import Channel
from tickets.roles import Role

from .access import request_role


def console_role(request):
    """The signed-in user's role, for the nav; looked up only by a template that reads it."""
    return {"console_role": SimpleLazyObject(lambda: request_role(request) or "")}


def broken_channels(request):
    """The names of the broken channels, for admins (empty for everyone else).

    Lazy: the query (on a partial index of the few broken channels) runs only on a page whose template shows
    them (the console's nav and banner), once per request.
    """

    def names():
        if request_role(request) != Role.ADMIN:
            return []
        return list(Channel.objects.broken().values_list("name", flat=True))

    return {"broken_channels": SimpleLazyObject(names)}
