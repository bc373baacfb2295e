"""The ticket page's followers: listed with the people, and removable by an agent."""

from dataclasses import replace

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import message, sender
from tests.helpers import detail_url, flashes, queries_for, receive, text_of
from tickets.models import Ticket, TicketEvent, TicketFollower
from tickets.replies import reply_target


@pytest.fixture
def followed(locmem_channel):
    """Ann's ticket, with Carol and Dan copied on her message."""
    receive(locmem_channel, [replace(message("a"), copied=(sender("carol", "Carol <C>"), sender("dan", "Dan")))])
    return Ticket.objects.get()


def remove_url(follower):
    return reverse("console:follower-remove", args=[follower.ticket_id, follower.pk])


def carol_of(ticket):
    return TicketFollower.objects.get(ticket=ticket, identity__external_id="carol")


@pytest.mark.django_db
def test_the_page_lists_the_followers(agent_client, followed):
    html = agent_client.get(detail_url(followed)).content.decode()
    panel = html[html.index('class="followers"') :]
    assert "Locmem · carol (Carol &lt;C&gt;)" in text_of(panel)
    assert "Locmem · dan (Dan)" in text_of(panel)
    assert f'action="{remove_url(carol_of(followed))}"' in panel


@pytest.mark.django_db
def test_an_agent_removes_a_follower_and_the_timeline_says_so(agent_client, followed):
    response = agent_client.post(remove_url(carol_of(followed)))
    assert response.status_code == 302
    assert flashes(agent_client.get(response.url)) == ["Carol <C> no longer follows this ticket."]
    assert list(TicketFollower.objects.values_list("identity__external_id", flat=True)) == ["dan"]
    assert reply_target(followed.threads.get()).followers == ("dan",)
    event = TicketEvent.objects.get(kind="follower")
    assert (event.old_value, event.actor.username) == ("Carol <C>", "agent")
    page = text_of(agent_client.get(detail_url(followed)).content.decode())
    assert "Change: Follower Carol &lt;C&gt; → removed · Alex Agent" in page


@pytest.mark.django_db
def test_removing_is_for_agents_by_post_with_csrf(client, agent, employee, followed):
    carol = carol_of(followed)
    client.force_login(employee)
    assert client.post(remove_url(carol)).status_code == 403
    checked = Client(enforce_csrf_checks=True)
    checked.force_login(agent)
    assert checked.get(remove_url(carol)).status_code == 405
    assert checked.post(remove_url(carol)).status_code == 403
    assert TicketFollower.objects.filter(pk=carol.pk).exists()
    assert not TicketEvent.objects.exists()


@pytest.mark.django_db
def test_a_follower_of_another_ticket_is_not_removed_here(agent_client, followed, locmem_channel):
    receive(locmem_channel, [message("b", user="bob", name="Bob", minute=1)])
    bobs = Ticket.objects.exclude(pk=followed.pk).get()
    carol = carol_of(followed)
    agent_client.post(reverse("console:follower-remove", args=[bobs.pk, carol.pk]))
    assert TicketFollower.objects.filter(pk=carol.pk).exists()


@pytest.mark.django_db
def test_the_page_costs_the_same_for_two_or_many_followers(agent_client, followed, locmem_channel):
    few = queries_for(agent_client, detail_url(followed))
    copied = tuple(sender(f"cc{n}", f"Copied {n}") for n in range(10))
    receive(locmem_channel, [replace(message("a.1", thread="a", minute=1), copied=copied)])
    assert followed.followers.count() == 12
    assert queries_for(agent_client, detail_url(followed)) == few
