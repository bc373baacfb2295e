"""What every console page shows beyond its own view: the signed-in user's role (for the nav) and the channels
that are broken, to admins. Both lazy: looked up only by a template that reads them."""

from django.utils.functional import SimpleLazyObject

from channels_ingest.models import Channel
from tickets.roles import Role

from .access import request_role


def console_role(request):
    """The signed-in user's role, for the nav; looked up only by a template that reads it."""
    return {"console_role": SimpleLazyObject(lambda: request_role(request) or "")}


#: The broken channels an admin hid the banner for: "<id>:<broken since>", so a channel that breaks again shows.
DISMISSED_BANNER = "dismissed_broken_channels"


def banner_key(pk, broken_since) -> str:
    return f"{pk}:{broken_since.isoformat()}"


def broken_channels(request):
    """The names of the broken channels, for admins (empty for everyone else): all of them for the nav's count,
    and those the admin has not hidden (``DISMISSED_BANNER``) for the banner.

    Lazy: the query (on a partial index of the few broken channels) runs only on a page whose template shows
    them (the console's nav and banner), once per request.
    """

    def all_broken():
        if request_role(request) != Role.ADMIN:
            return []
        return list(Channel.objects.broken().values_list("pk", "name", "broken_since"))

    broken = SimpleLazyObject(all_broken)

    def not_dismissed():
        hidden = set(request.session.get(DISMISSED_BANNER, ()))
        return [name for pk, name, since in broken if banner_key(pk, since) not in hidden]

    return {
        "broken_channels": SimpleLazyObject(lambda: [name for _, name, _ in broken]),
        "broken_banner": SimpleLazyObject(not_dismissed),
    }
