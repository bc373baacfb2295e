"""Macros in the console: the Macros page and the composer's picker."""

import html as htmllib
import re

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from channel_adapters import locmem
from tests.factories import message
from tests.helpers import (
    detail_url,
    queries_for,
    receive,
    reply_url,
    shared_macro,
)
from tickets.macros import MacroError, reply_with_macro, usable_macro
from tickets.models import Macro, Message, Ticket, TicketEvent
from tickets.replies import ReplyError
from tickets.roles import AGENTS_GROUP


def flash(response):
    return " ".join(re.sub(r"<[^>]+>", "", response.content.decode()).split())


@pytest.fixture
def ticket(locmem_channel):
    receive(locmem_channel, [message("m0", text="My VPN drops every hour", name="Ann Employee")])
    return Ticket.objects.get()


@pytest.fixture
def other_agent(db):
    user = User.objects.create_user("bea", password="bea-pass-123", first_name="Bea", last_name="Backup")
    user.groups.add(Group.objects.get_or_create(name=AGENTS_GROUP)[0])
    return user


def insert_url(ticket, macro=None):
    return reverse("console:macro-insert", args=[ticket.pk]) + (f"?macro_pick={macro.pk}" if macro else "")


def picker_options(html):
    """(value, label) of each option in the composer's "Canned response" select."""
    select = re.search(r'<select id="macro-select".*?</select>', html, re.S).group(0)
    return re.findall(r'<option value="([^"]*)">([^<]*)</option>', select)


def inserted_text(response):
    """The text the composer would put in the reply box (the fragment's data-macro-text), unescaped."""
    assert response.status_code == 200
    found = re.search(r'data-macro-text="([^"]*)"', response.content.decode())
    return htmllib.unescape(found.group(1)) if found else None


def test_the_form_shows_the_placeholder_error_and_saves_nothing(agent_client):
    response = agent_client.post(reverse("console:macro-create"), {"name": "Bad", "body": "Hi {first_name} and {x}"})
    assert response.status_code == 200
    page = htmllib.unescape(flash(response))
    assert "Unknown placeholders {first_name}, {x}. Use only: {requester_name}" in page
    assert 'aria-invalid="true"' in response.content.decode()
    assert not Macro.objects.exists()


def test_personal_macros_are_invisible_to_other_agents(client, agent, other_agent, ticket):
    mine = Macro.objects.create(name="Alex's secret sauce", body="Hi {requester_name}", owner=agent)
    shared = shared_macro()
    client.force_login(other_agent)

    listing = client.get(reverse("console:macro-list")).content.decode()
    assert "Ask for details" in listing
    assert "secret sauce" not in listing
    options = picker_options(client.get(detail_url(ticket)).content.decode())
    assert options == [("", "None"), (str(shared.pk), shared.name)]
    assert client.get(insert_url(ticket, mine)).status_code == 404
    assert client.get(reverse("console:macro-edit", args=[mine.pk])).status_code == 404
    assert client.post(reverse("console:macro-delete", args=[mine.pk])).status_code == 404
    with pytest.raises(MacroError):
        usable_macro(other_agent, mine.pk)

    response = client.post(reply_url(ticket), {"body": "Hello", "macro": mine.pk}, follow=True)
    assert "That macro is no longer available to you. Nothing was sent" in flash(response)
    assert locmem.outbox == []
    assert not Message.objects.filter(direction="outbound").exists()
    assert Macro.objects.filter(pk=mine.pk).exists()


def test_agents_manage_their_own_macros_and_admins_the_shared_ones(client, agent, admin_user):
    client.force_login(agent)
    response = client.post(
        reverse("console:macro-create"),
        # An agent cannot make a macro shared: the field is not theirs, so it is ignored.
        {"name": "Mine", "body": "Thanks {requester_first_name}!", "status": "pending", "shared": "on"},
    )
    assert response.status_code == 302
    mine = Macro.objects.get()
    assert (mine.owner, mine.status, mine.assignee_action) == (agent, "pending", "")
    assert "Shared with all agents" not in client.get(reverse("console:macro-create")).content.decode()

    shared = shared_macro()
    assert client.get(reverse("console:macro-edit", args=[shared.pk])).status_code == 403
    assert client.post(reverse("console:macro-delete", args=[shared.pk])).status_code == 403
    listing = client.get(reverse("console:macro-list")).content.decode()
    assert reverse("console:macro-edit", args=[mine.pk]) in listing
    assert reverse("console:macro-edit", args=[shared.pk]) not in listing

    client.force_login(admin_user)
    edit = reverse("console:macro-edit", args=[shared.pk])
    assert 'name="shared" id="id_shared" checked' in client.get(edit).content.decode()
    response = client.post(edit, {"name": "Ask for more details", "body": "Hi {requester_name}", "shared": "on"})
    assert response.status_code == 302
    shared.refresh_from_db()
    assert (shared.name, shared.owner) == ("Ask for more details", None)
    client.post(reverse("console:macro-create"), {"name": "Team", "body": "Hello", "shared": "on"})
    assert Macro.objects.get(name="Team").is_shared
    assert client.post(reverse("console:macro-delete", args=[shared.pk])).status_code == 302
    assert not Macro.objects.filter(pk=shared.pk).exists()


def test_the_macros_page_query_count_does_not_grow(client, admin_user, other_agent):
    client.force_login(admin_user)
    shared_macro(assignee_action=Macro.AssigneeAction.AGENT, assignee=other_agent)
    Macro.objects.create(name="Mine", body="Hi", owner=admin_user)
    few = queries_for(client, reverse("console:macro-list"))
    for n in range(10):
        shared_macro(name=f"Shared {n}", assignee_action=Macro.AssigneeAction.AGENT, assignee=other_agent)
        Macro.objects.create(name=f"Mine {n}", body="Hi", owner=admin_user)
    page = client.get(reverse("console:macro-list")).content.decode()
    assert page.count("Assign to Bea Backup") == 11
    assert page.count(">Edit<") == 22
    assert queries_for(client, reverse("console:macro-list")) == few


def test_employees_and_anonymous_users_cannot_use_macros(client, employee, ticket):
    macro = shared_macro(status="resolved")
    urls = [
        reverse("console:macro-list"),
        reverse("console:macro-create"),
        reverse("console:macro-edit", args=[macro.pk]),
        reverse("console:macro-delete", args=[macro.pk]),
        insert_url(ticket, macro),
    ]
    for url in urls:
        assert client.get(url).status_code == 302  # to the login page
    client.force_login(employee)
    for url in urls:
        assert client.get(url).status_code == 403
    assert client.post(reverse("console:macro-create"), {"name": "x", "body": "y"}).status_code == 403
    assert client.post(reverse("console:macro-delete", args=[macro.pk])).status_code == 403
    apply = reverse("console:macro-apply", args=[ticket.pk])
    assert client.post(apply, {"macro": macro.pk}).status_code == 403
    assert client.post(reply_url(ticket), {"body": "hi", "macro": macro.pk}).status_code == 403
    ticket.refresh_from_db()
    assert ticket.status == "new"
    assert Macro.objects.count() == 1
    assert not TicketEvent.objects.exists()


def test_macro_forms_need_the_csrf_token(agent):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.post(reverse("console:macro-create"), {"name": "x", "body": "y"}).status_code == 403
    page = client.get(reverse("console:macro-create")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(reverse("console:macro-create"), {"name": "x", "body": "y", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Macro.objects.get().owner == agent


def test_the_picker_is_labelled_and_the_page_query_count_does_not_grow(agent_client, agent, other_agent, ticket):
    shared_macro()
    few = queries_for(agent_client, detail_url(ticket))
    for n in range(12):
        Macro.objects.create(name=f"Macro {n}", body="Hello {requester_name}", owner=agent if n % 2 else other_agent)
    page = agent_client.get(detail_url(ticket)).content.decode()
    assert '<label for="macro-select">Canned response</label>' in page
    assert '<optgroup label="Shared">' in page
    assert '<optgroup label="Mine">' in page
    assert len(picker_options(page)) == 1 + 1 + 6  # None, the shared macro, my six; not Bea's six
    assert queries_for(agent_client, detail_url(ticket)) == few


def test_inserting_a_macro_fills_it_in_for_this_ticket_escaped(agent_client, agent, ticket):
    ticket.requester.display_name = '<script>alert("x")</script> ‏مريم'
    ticket.requester.save()
    macro = shared_macro(name="<b>Details</b>", body="Hi {requester_name},\nabout #{ticket_number}: {ticket_subject}")
    response = agent_client.get(insert_url(ticket, macro))
    body = response.content.decode()
    assert "<script>" not in body
    assert "<b>Details</b>" not in body
    assert "&lt;b&gt;Details&lt;/b&gt;" in body
    assert inserted_text(response) == (
        f'Hi <script>alert("x")</script> ‏مريم,\nabout #{ticket.pk}: My VPN drops every hour'
    )
    assert f'<input type="hidden" name="macro" value="{macro.pk}">' in body
    # Choosing "None" again answers an empty fragment: no hidden field, no macro applied.
    empty = agent_client.get(insert_url(ticket))
    assert empty.status_code == 200
    assert 'name="macro"' not in empty.content.decode()
    assert agent_client.get(insert_url(ticket) + "?macro_pick=999999").status_code == 404


def test_insert_shows_what_sending_will_also_do(agent_client, other_agent, ticket):
    macro = shared_macro(status="pending", assignee_action=Macro.AssigneeAction.AGENT, assignee=other_agent)
    text = flash(agent_client.get(insert_url(ticket, macro)))
    assert "Sending the reply also applies: Status: Pending (waiting on requester); Assign to Bea Backup." in text
    assert "Apply actions without replying" in text


def test_sending_with_a_macro_replies_and_applies_its_actions(
    agent_client, agent, ticket, django_capture_on_commit_callbacks
):
    macro = shared_macro(status="pending", assignee_action=Macro.AssigneeAction.APPLIER)
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(
            reply_url(ticket), {"body": "Hi Ann,\r\nplease send us a screenshot.", "macro": macro.pk}
        )
    assert response.status_code == 302
    assert response.url == detail_url(ticket)
    assert locmem.outbox == [{"thread_key": "m0", "text": "Hi Ann,\nplease send us a screenshot."}]
    reply = Message.objects.get(direction="outbound")
    assert reply.delivery_status == "sent"
    assert reply.author_user == agent
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee) == ("pending", agent)
    events = [(e.kind, e.old_value, e.new_value, e.actor) for e in TicketEvent.objects.order_by("id")]
    # The reply itself opened the ticket (new → open), then the macro moved it on.
    assert events == [
        ("status", "new", "open", agent),
        ("status", "open", "pending", agent),
        ("assignee", "", "Alex Agent", agent),
    ]
    page = flash(agent_client.get(detail_url(ticket)))
    assert "Reply queued for delivery. Macro “Ask for details” applied." in page
    assert "Status New → Open · Alex Agent (replied)" in page
    assert "Status Open → Pending (waiting on requester) · Alex Agent (macro “Ask for details”)" in page
    assert "Assignee nobody → Alex Agent · Alex Agent (macro “Ask for details”)" in page


def test_unassign_and_specific_agent_actions(ticket, agent, other_agent):
    to_bea = shared_macro(assignee_action=Macro.AssigneeAction.AGENT, assignee=other_agent)
    reply_with_macro(ticket=ticket, author=agent, body="Bea takes over", macro=to_bea)
    assert Ticket.objects.get().assignee == other_agent
    unassign = shared_macro(name="Back to the pool", assignee_action=Macro.AssigneeAction.UNASSIGN)
    reply_with_macro(ticket=ticket, author=agent, body="Back to the team", macro=unassign)
    assert Ticket.objects.get().assignee is None
    assert list(TicketEvent.objects.order_by("id").values_list("kind", "old_value", "new_value")) == [
        ("status", "new", "open"),  # the first reply
        ("assignee", "", "Bea Backup"),
        ("assignee", "Bea Backup", ""),
    ]


def test_a_refused_reply_applies_nothing(agent_client, agent, ticket, django_capture_on_commit_callbacks):
    macro = shared_macro(status="resolved", assignee_action=Macro.AssigneeAction.APPLIER)
    with django_capture_on_commit_callbacks() as callbacks:
        response = agent_client.post(
            reply_url(ticket), {"body": "x" * (Message.MAX_BODY_LENGTH + 1), "macro": macro.pk}, follow=True
        )
        with pytest.raises(ReplyError):
            reply_with_macro(ticket=ticket, author=agent, body="  ", macro=macro)
    assert callbacks == []  # nothing handed to delivery
    assert "Nothing was sent and the macro was not applied." in flash(response)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee, ticket.resolved_at) == ("new", None, None)
    assert not TicketEvent.objects.exists()
    assert not Message.objects.filter(direction="outbound").exists()
    assert locmem.outbox == []


def test_a_refused_action_sends_nothing(agent_client, other_agent, ticket, django_capture_on_commit_callbacks):
    """The macro's agent lost the agent role: the assignment is refused, and so is the reply with it."""
    macro = shared_macro(assignee_action=Macro.AssigneeAction.AGENT, assignee=other_agent, status="pending")
    other_agent.groups.clear()
    with django_capture_on_commit_callbacks() as callbacks:
        response = agent_client.post(reply_url(ticket), {"body": "Bea will help", "macro": macro.pk}, follow=True)
    assert callbacks == []
    assert "Bea Backup is not an agent" in flash(response)
    assert not Message.objects.filter(direction="outbound").exists()
    assert locmem.outbox == []
    ticket.refresh_from_db()
    assert ticket.status == "new"
    assert not TicketEvent.objects.exists()


def test_apply_actions_without_replying(agent_client, agent, ticket):
    macro = shared_macro(status="resolved", assignee_action=Macro.AssigneeAction.APPLIER)
    response = agent_client.post(
        reverse("console:macro-apply", args=[ticket.pk]), {"macro": macro.pk, "body": "ignored"}, follow=True
    )
    assert "Macro “Ask for details” applied." in flash(response)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee) == ("resolved", agent)
    assert ticket.resolved_at is not None
    assert TicketEvent.objects.count() == 2
    assert not Message.objects.filter(direction="outbound").exists()
    assert locmem.outbox == []


def test_the_macros_page_escapes_what_agents_wrote(agent_client, agent):
    Macro.objects.create(name="<img src=x onerror=alert(1)>", body="<script>alert(2)</script>", owner=agent)
    page = agent_client.get(reverse("console:macro-list")).content.decode()
    assert "<img src=x" not in page
    assert "<script>alert(2)" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page
