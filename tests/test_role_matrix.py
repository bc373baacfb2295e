"""Who may use each URL: every pattern the project routes (Django's own /admin/ aside) has a row in ``MATRIX``, and
each role's answer is checked against it.

A role that may use a URL must not be refused (no 401, no 403, no redirect to the login page); a role that may
not must be (403 or 401, or the login page for the anonymous). What an allowed request then does (200, a form
error, 404 for someone else's object) is the business of each page's own tests.

A URL added without a row here fails ``test_every_url_has_a_row``: say who may use it. The same walk checks that
every URL still answers while the cache (Redis) is down.
"""

import hashlib
import hmac
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core.files.base import ContentFile
from django.db import transaction
from django.test import Client
from django.test.client import MULTIPART_CONTENT
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from console.file_views import email_image_url
from tests.factories import message
from tests.helpers import receive
from tickets.models import (
    Attachment,
    Calendar,
    Category,
    Identity,
    Macro,
    Message,
    RoutingRule,
    SavedView,
    Service,
    SlaPolicy,
    Team,
    Ticket,
    TicketFollower,
)

ANONYMOUS, EMPLOYEE, AGENT, ADMIN = "anonymous", "employee", "agent", "admin"
ROLES = (ANONYMOUS, EMPLOYEE, AGENT, ADMIN)
EVERYONE = frozenset(ROLES)
SIGNED_IN = frozenset({EMPLOYEE, AGENT, ADMIN})
AGENTS = frozenset({AGENT, ADMIN})
ADMINS = frozenset({ADMIN})

# A one-pixel PNG: an inline image an email may show.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


@dataclass(frozen=True)
class Use:
    """One way to use a URL: the method, who may, and what the request carries (built from the objects)."""

    method: str
    allowed: frozenset
    kwargs: object = None  # objects -> the URL's arguments
    data: object = None  # objects -> the body (a form, or JSON for the API)
    headers: dict = field(default_factory=dict)
    content_type: str = MULTIPART_CONTENT  # a form, as the test client posts it by default


def ticket(o):
    return {"pk": o.ticket.pk}


def reply(o):
    return {"pk": o.reply.pk}


def attachment(o):
    return {"pk": o.attachment.pk}


def target_user(o):
    return {"pk": o.target.pk}


def team(o):
    return {"pk": o.team.pk}


def routing_rule(o):
    return {"pk": o.routing_rule.pk}


def calendar(o):
    return {"pk": o.calendar.pk}


def policy(o):
    return {"pk": o.policy.pk}


#: A push the locmem channel (its secret is the fixture's) accepts as signed, then finds malformed.
WEBHOOK_BODY = "{}"

#: Every route (as the resolver spells it, e.g. ``console/tickets/<int:pk>/``) → how each role may use it.
MATRIX: dict[str, list[Use]] = {
    # Signing in and out, and an invitation's set-password link: everyone.
    "": [Use("GET", EVERYONE)],  # everyone lands where their work is (accounts.views.home)
    "login/": [Use("GET", EVERYONE)],
    "logout/": [Use("POST", EVERYONE)],
    "password/set/<uidb64>/<token>/": [
        Use("GET", EVERYONE, kwargs=lambda o: {"uidb64": o.invite_uid, "token": o.invite_token})
    ],
    "password/set/done/": [Use("GET", EVERYONE)],
    # The second factor: the code page is for whoever signed in (the anonymous sign in first); turning it on or
    # off, for agents and admins (employees have nothing behind a password to protect with it).
    "account/verify/": [Use("GET", SIGNED_IN)],
    "account/two-factor/": [Use("GET", AGENTS)],
    # Single sign-on: anyone may start it (it answers 404 when it is not configured, as here).
    "oidc/authenticate/": [Use("GET", EVERYONE)],
    "oidc/callback/": [Use("GET", EVERYONE)],
    # The console: agents and admins.
    "console/": [Use("GET", AGENTS)],
    "console/rows/": [Use("GET", AGENTS)],
    "console/views/": [Use("POST", AGENTS, data=lambda o: {"name": "Mine", "query": "view=open"})],
    "console/views/<int:pk>/delete/": [Use("POST", AGENTS, kwargs=lambda o: {"pk": o.own.saved_view.pk})],
    "console/tickets/bulk/": [Use("POST", AGENTS, data=lambda o: {"tickets": [o.ticket.pk], "action": "status"})],
    "console/tickets/merge/": [Use("POST", AGENTS, data=lambda o: {"tickets": [o.ticket.pk]})],
    "console/tickets/<int:pk>/": [Use("GET", AGENTS, kwargs=ticket)],
    "console/reports/": [Use("GET", AGENTS)],
    "console/reports/<slug:report>.csv": [Use("GET", AGENTS, kwargs=lambda o: {"report": "volume"})],
    "console/tickets/<int:pk>/reply/": [Use("POST", AGENTS, kwargs=ticket, data=lambda o: {"body": "Hello"})],
    "console/tickets/<int:pk>/note/": [Use("POST", AGENTS, kwargs=ticket, data=lambda o: {"body": "A note"})],
    "console/tickets/<int:pk>/update/": [Use("POST", AGENTS, kwargs=ticket, data=lambda o: {"status": "open"})],
    "console/tickets/<int:pk>/followers/<int:follower_pk>/remove/": [
        Use("POST", AGENTS, kwargs=lambda o: {"pk": o.ticket.pk, "follower_pk": o.follower.pk})
    ],
    "console/tickets/<int:pk>/earlier/": [Use("GET", AGENTS, kwargs=ticket)],
    "console/tickets/<int:pk>/reply/length/": [Use("POST", AGENTS, kwargs=ticket, data=lambda o: {"body": "Hi"})],
    "console/tickets/<int:pk>/live/": [Use("GET", AGENTS, kwargs=ticket)],
    "console/tickets/<int:pk>/presence/": [Use("POST", AGENTS, kwargs=ticket)],
    "console/tickets/<int:pk>/presence/leave/": [Use("POST", AGENTS, kwargs=ticket)],
    "console/tickets/<int:pk>/reply/target/": [Use("POST", AGENTS, kwargs=ticket)],
    "console/tickets/<int:pk>/macro/": [Use("GET", AGENTS, kwargs=ticket)],
    "console/tickets/<int:pk>/macro/apply/": [
        Use("POST", AGENTS, kwargs=ticket, data=lambda o: {"macro": o.own.macro.pk})
    ],
    "console/messages/<int:pk>/status/": [Use("GET", AGENTS, kwargs=reply)],
    "console/messages/<int:pk>/retry/": [Use("POST", AGENTS, kwargs=reply)],
    "console/messages/<int:pk>/html/": [Use("GET", AGENTS, kwargs=reply)],
    "console/messages/<int:pk>/original/": [Use("GET", AGENTS, kwargs=reply)],
    "console/attachments/<int:pk>/": [Use("GET", AGENTS, kwargs=attachment)],
    "console/attachments/<int:pk>/status/": [Use("GET", AGENTS, kwargs=attachment)],
    # A signed link that stands in for the session (the email's sandboxed frame sends no cookie): anyone with it.
    "console/attachments/email-image/<str:token>/": [
        Use("GET", EVERYONE, kwargs=lambda o: {"token": o.image_url.rstrip("/").rsplit("/", 1)[1]})
    ],
    "console/triage/": [Use("GET", AGENTS)],
    "console/triage/accept/": [Use("POST", AGENTS)],
    "console/triage/dismiss/": [Use("POST", AGENTS)],
    "console/channels/banner/dismiss/": [Use("POST", ADMINS, data=lambda o: {"next": "/console/"})],
    "console/channels/": [Use("GET", AGENTS)],
    "console/channels/<int:pk>/requeue-failed/": [Use("POST", ADMINS, kwargs=lambda o: {"pk": o.channel.pk})],
    # Connecting and configuring channels: admins.
    "console/channels/new/": [Use("GET", ADMINS)],
    "console/channels/new/<slug:kind>/": [Use("GET", ADMINS, kwargs=lambda o: {"kind": "slack"})],
    "console/channels/<int:pk>/": [Use("GET", ADMINS, kwargs=lambda o: {"pk": o.channel.pk})],
    "console/channels/<int:pk>/test/": [Use("POST", ADMINS, kwargs=lambda o: {"pk": o.channel.pk})],
    "console/channels/<int:pk>/enabled/": [
        Use("POST", ADMINS, kwargs=lambda o: {"pk": o.channel.pk}, data=lambda o: {"enabled": "0"})
    ],
    "console/channels/<int:pk>/delete/": [
        Use("GET", ADMINS, kwargs=lambda o: {"pk": o.channel.pk}),
        Use("POST", ADMINS, kwargs=lambda o: {"pk": o.channel.pk}),
    ],
    "console/audit/": [Use("GET", ADMINS)],
    # ITIL on a ticket (tickets.itil): agents. Only a change's named approver decides it: that is the page's rule
    # (a message), not a refusal.
    "console/tickets/<int:pk>/classify/": [
        Use("POST", AGENTS, kwargs=ticket, data=lambda o: {"kind": "incident", "impact": "1", "urgency": "2"})
    ],
    "console/tickets/<int:pk>/problem/": [Use("POST", AGENTS, kwargs=ticket, data=lambda o: {"problem": ""})],
    "console/tickets/<int:pk>/change/": [Use("POST", AGENTS, kwargs=ticket)],
    "console/tickets/<int:pk>/change/decision/": [
        Use("POST", AGENTS, kwargs=ticket, data=lambda o: {"decision": "approve"})
    ],
    # The ITIL lists and the priority matrix: admins.
    "console/catalog/categories/": [Use("GET", ADMINS)],
    "console/catalog/categories/new/": [Use("GET", ADMINS), Use("POST", ADMINS, data=lambda o: {"name": "Printers"})],
    "console/catalog/categories/<int:pk>/": [
        Use("GET", ADMINS, kwargs=lambda o: {"pk": o.category.pk}),
        Use("POST", ADMINS, kwargs=lambda o: {"pk": o.category.pk}, data=lambda o: {"name": "Renamed"}),
    ],
    "console/catalog/services/": [Use("GET", ADMINS)],
    "console/catalog/services/new/": [Use("GET", ADMINS), Use("POST", ADMINS, data=lambda o: {"name": "Intranet"})],
    "console/catalog/services/<int:pk>/": [
        Use("GET", ADMINS, kwargs=lambda o: {"pk": o.service.pk}),
        Use("POST", ADMINS, kwargs=lambda o: {"pk": o.service.pk}, data=lambda o: {"name": "Renamed"}),
    ],
    "console/catalog/priority-matrix/": [
        Use("GET", ADMINS),
        Use("POST", ADMINS, data=lambda o: {f"cell_{i}_{u}": "2" for i in (1, 2, 3) for u in (1, 2, 3)}),
    ],
    "console/macros/": [Use("GET", AGENTS)],
    "console/macros/new/": [Use("GET", AGENTS), Use("POST", AGENTS, data=lambda o: {"name": "M", "body": "Hi"})],
    "console/macros/<int:pk>/": [Use("GET", AGENTS, kwargs=lambda o: {"pk": o.own.macro.pk})],
    "console/macros/<int:pk>/delete/": [Use("POST", AGENTS, kwargs=lambda o: {"pk": o.own.macro.pk})],
    # Users and teams: admins.
    "console/users/": [Use("GET", ADMINS)],
    "console/users/invite/": [
        Use("GET", ADMINS),
        Use("POST", ADMINS, data=lambda o: {"email": "new@example.com", "role": "agent"}),
    ],
    "console/users/<int:pk>/": [
        Use("GET", ADMINS, kwargs=target_user),
        Use("POST", ADMINS, kwargs=target_user, data=lambda o: {"role": "admin"}),
    ],
    "console/users/<int:pk>/deactivate/": [Use("POST", ADMINS, kwargs=target_user)],
    "console/users/<int:pk>/reactivate/": [Use("POST", ADMINS, kwargs=target_user)],
    "console/users/<int:pk>/invitation/": [Use("POST", ADMINS, kwargs=target_user)],
    "console/teams/": [Use("GET", ADMINS)],
    "console/teams/new/": [Use("GET", ADMINS), Use("POST", ADMINS, data=lambda o: {"name": "Desk"})],
    "console/teams/<int:pk>/": [
        Use("GET", ADMINS, kwargs=team),
        Use("POST", ADMINS, kwargs=team, data=lambda o: {"name": "Renamed"}),
    ],
    "console/teams/<int:pk>/delete/": [Use("POST", ADMINS, kwargs=team)],
    # Routing rules and their tester: admins.
    "console/routing/": [Use("GET", ADMINS)],
    "console/routing/new/": [Use("GET", ADMINS), Use("POST", ADMINS, data=lambda o: {"name": "R"})],
    "console/routing/test/": [Use("GET", ADMINS), Use("POST", ADMINS, data=lambda o: {"sample_text": "vpn"})],
    "console/routing/<int:pk>/": [
        Use("GET", ADMINS, kwargs=routing_rule),
        Use("POST", ADMINS, kwargs=routing_rule, data=lambda o: {"name": "Renamed", "time_zone": "UTC"}),
    ],
    "console/routing/<int:pk>/delete/": [Use("POST", ADMINS, kwargs=routing_rule)],
    "console/routing/<int:pk>/move/": [Use("POST", ADMINS, kwargs=routing_rule, data=lambda o: {"direction": "up"})],
    "console/sla/": [Use("GET", ADMINS)],
    "console/sla/calendars/new/": [Use("GET", ADMINS), Use("POST", ADMINS, data=lambda o: {"name": "Office"})],
    "console/sla/calendars/<int:pk>/": [
        Use("GET", ADMINS, kwargs=calendar),
        Use("POST", ADMINS, kwargs=calendar, data=lambda o: {"name": "Renamed"}),
    ],
    "console/sla/policies/new/": [Use("GET", ADMINS), Use("POST", ADMINS, data=lambda o: {"name": "Default"})],
    "console/sla/policies/<int:pk>/": [
        Use("GET", ADMINS, kwargs=policy),
        Use("POST", ADMINS, kwargs=policy, data=lambda o: {"name": "Renamed"}),
    ],
    # Everyone's own settings, employees included.
    "console/profile/": [Use("GET", SIGNED_IN), Use("POST", SIGNED_IN, data=lambda o: {"time_zone": "UTC"})],
    # The API: agents and admins. Getting a token takes a username and password, so anyone may ask.
    "api/auth/token/": [Use("POST", EVERYONE, data=lambda o: {"username": "nobody", "password": "wrong"})],
    "api/schema/": [Use("GET", AGENTS)],
    "api/^tickets/$": [Use("GET", AGENTS)],
    "api/^tickets/(?P<pk>[^/.]+)/$": [
        Use("GET", AGENTS, kwargs=ticket),
        Use("PATCH", AGENTS, kwargs=ticket, data=lambda o: {"status": "open"}, content_type="application/json"),
    ],
    "api/^tickets/(?P<pk>[^/.]+)/reply/$": [Use("POST", AGENTS, kwargs=ticket, data=lambda o: {"body": "Hello"})],
    # The employee portal: signing in by link is for anyone; the pages show the signed-in person's own tickets
    # (someone else's is not found), so every signed-in role is let in.
    "portal/sign-in/": [Use("GET", EVERYONE), Use("POST", EVERYONE, data=lambda o: {"email": "x@example.com"})],
    "portal/sign-in/sent/": [Use("GET", EVERYONE)],
    "portal/sign-in/link/": [Use("GET", EVERYONE)],
    "portal/": [Use("GET", SIGNED_IN)],
    "portal/tickets/new/": [Use("GET", SIGNED_IN)],
    "portal/tickets/<int:pk>/": [Use("GET", SIGNED_IN, kwargs=ticket)],
    "portal/tickets/<int:pk>/reply/": [Use("POST", SIGNED_IN, kwargs=ticket, data=lambda o: {"body": "Thanks"})],
    "portal/files/<int:pk>/": [Use("GET", SIGNED_IN, kwargs=attachment)],
    # Platforms' pushes: authenticated by their signature, never by a session.
    "webhooks/<uuid:public_id>/": [
        Use(
            "POST",
            EVERYONE,
            kwargs=lambda o: {"public_id": o.channel.public_id},
            data=lambda o: WEBHOOK_BODY,
            content_type="application/json",
            headers={"X-Signature": hmac.new(b"s3cret", WEBHOOK_BODY.encode(), hashlib.sha256).hexdigest()},
        )
    ],
}


def routed():
    """(route, URL name) of every pattern the project serves, but Django's admin site."""

    def walk(patterns, prefix, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.app_name == "admin":
                    continue
                inner = ":".join(filter(None, [namespace, pattern.namespace]))
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
            elif isinstance(pattern, URLPattern):
                name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
                yield prefix + str(pattern.pattern), name

    return dict(walk(get_resolver().url_patterns, "", ""))


ROUTES = routed()


def test_the_walk_finds_every_route_but_djangos_admin():
    assert ROUTES["console/tickets/<int:pk>/"] == "console:ticket-detail"
    assert ROUTES["api/^tickets/(?P<pk>[^/.]+)/reply/$"] == "api:ticket-reply"  # the API router's
    assert ROUTES[""] == "home"
    assert not [route for route in ROUTES if route.startswith("admin/")]


def test_every_url_has_a_row():
    missing = sorted(set(ROUTES) - set(MATRIX))
    assert not missing, f"Say who may use these URLs in tests/test_role_matrix.py MATRIX: {missing}"
    stale = sorted(set(MATRIX) - set(ROUTES))
    assert not stale, f"These rows name URLs that no longer exist: {stale}"


@pytest.fixture
def people(agent, admin_user, employee):
    for user in (agent, admin_user, employee):
        user.email = f"{user.username}@example.com"
        user.save(update_fields=["email"])
    return {EMPLOYEE: employee, AGENT: agent, ADMIN: admin_user}


@pytest.fixture
def objects(people, locmem_channel):
    """What the URLs point at: a ticket with a reply, an emailed image and a follower, a personal macro and saved
    view, another user to manage, a team, and that user's set-password link."""
    receive(locmem_channel, [message("m0", text="The printer is on fire")])
    the_ticket = Ticket.objects.select_related("requester").get()
    # The employee asked: the portal shows them this ticket.
    the_ticket.requester.email = people[EMPLOYEE].email
    the_ticket.requester.save(update_fields=["email"])
    the_reply = Message.objects.create(
        ticket=the_ticket, direction=Message.Direction.OUTBOUND, body="Try this", author_user=people[AGENT]
    )
    image = Attachment(message=the_reply, name="a.png", content_type="image/png", status=Attachment.Status.STORED)
    image.file.save("a.png", ContentFile(PNG), save=True)
    identity = Identity.objects.create(
        contact=the_ticket.requester, namespace="locmem", external_id="cc1", display_name="Cc"
    )
    target = User.objects.create_user("target", email="target@example.com")
    return SimpleNamespace(
        ticket=the_ticket,
        reply=the_reply,
        attachment=image,
        image_url=email_image_url(image),
        follower=TicketFollower.objects.create(ticket=the_ticket, identity=identity),
        channel=locmem_channel,
        macros={role: Macro.objects.create(name="Mine", body="Hi", owner=people[role]) for role in AGENTS},
        saved_views={role: SavedView.objects.create(owner=people[role], name="Mine", query="") for role in AGENTS},
        target=target,
        team=Team.objects.create(name="Network"),
        routing_rule=RoutingRule.objects.create(name="Network issues", keywords="vpn"),
        calendar=(always := Calendar.objects.create(name="24x7", always_open=True)),
        policy=SlaPolicy.objects.create(
            name="Default", first_response_minutes=60, resolution_minutes=480, calendar=always
        ),
        category=Category.objects.create(name="Network"),
        service=Service.objects.create(name="VPN"),
        invite_uid=urlsafe_base64_encode(force_bytes(target.pk)),
        invite_token=default_token_generator.make_token(target),
    )


def refused(response) -> bool:
    """403 or 401, or a redirect to a sign-in page: the console's, or the portal's (by emailed link)."""
    redirect = response.get("Location", "")
    sign_in = (reverse("login") + "?", reverse("portal:sign-in") + "?")
    return response.status_code in (401, 403) or (response.status_code == 302 and redirect.startswith(sign_in))


USES = [pytest.param(route, use, id=f"{use.method} /{route}") for route, uses in MATRIX.items() for use in uses]


def use_as(role, route, use, people, objects):
    """``role``'s request to the URL, in a savepoint rolled back after it: what one request changed (a user
    deactivated, a team deleted) is undone before the next."""
    if route not in ROUTES:
        pytest.fail(f"/{route} is no longer routed: remove its row")
    # The requester's own macro and saved view, where the URL names one (someone else's is not found).
    objects.own = SimpleNamespace(
        macro=objects.macros.get(role, objects.macros[AGENT]),
        saved_view=objects.saved_views.get(role, objects.saved_views[AGENT]),
    )
    name = ROUTES[route]
    url = reverse(name, kwargs=use.kwargs(objects) if use.kwargs else {}) if name else "/" + route
    client = Client()
    if role != ANONYMOUS:
        client.force_login(people[role])
    data = use.data(objects) if use.data else {}
    with transaction.atomic():
        if use.method == "GET":
            response = client.get(url, data, headers=use.headers)
        else:
            send = getattr(client, use.method.lower())
            response = send(url, data, content_type=use.content_type, headers=use.headers)
        transaction.set_rollback(True)
    return url, response


@pytest.mark.parametrize(("route", "use"), USES)
def test_each_role_is_let_in_or_refused_as_the_matrix_says(route, use, people, objects):
    for role in ROLES:
        url, response = use_as(role, route, use, people, objects)
        if role in use.allowed:
            assert not refused(response), f"{role} was refused {use.method} {url}: {response.status_code}"
        else:
            assert refused(response), f"{role} was let in to {use.method} {url}: {response.status_code}"


@pytest.mark.parametrize(("route", "use"), USES)
def test_every_url_works_while_the_cache_is_down(route, use, people, objects, dead_cache):
    """Redis is the cache, not the record: while it is down every page and endpoint still answers (view counts
    hidden, presence off, ingestion left to the sweep), never with a 500, for the most trusted role it serves."""
    role = next(role for role in (ADMIN, AGENT, EMPLOYEE, ANONYMOUS) if role in use.allowed)
    url, response = use_as(role, route, use, people, objects)
    assert response.status_code < 500, f"{role} {use.method} {url}: {response.status_code}"
