"""Saved views: an agent names the queue's current filters and gets them back in one click."""

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from console.saved_views import MAX_SAVED_VIEWS
from tests.helpers import (
    queries_for,
)
from tickets.models import SavedView
from tickets.roles import AGENTS_GROUP

LIST = reverse("console:ticket-list")


CREATE = reverse("console:saved-view-create")


def save(client, name, query):
    return client.post(CREATE, {"name": name, "query": query}, follow=True)


@pytest.fixture
def other_agent_client(client, db):
    user = User.objects.create_user("dana", password="dana-pass-123")
    user.groups.add(Group.objects.get_or_create(name=AGENTS_GROUP)[0])
    other = Client()
    other.force_login(user)
    return other


def test_saving_keeps_the_filters_without_paging(agent_client, agent):
    """The list posts its own query string; what is kept is the filters, in a fixed order, without paging."""
    response = save(agent_client, "Urgent VPN", "after=2026-01-01T00:00:00Z,5&q=vpn&priority=4&page=3&view=open&age=")
    saved = SavedView.objects.get(owner=agent)
    assert (saved.name, saved.query) == ("Urgent VPN", "view=open&q=vpn&priority=4")
    # Saving lands on the saved view itself, which is marked current in the list of views.
    assert response.redirect_chain[-1][0] == f"{LIST}?view=open&q=vpn&priority=4"
    html = response.content.decode()
    assert f'href="{LIST}?view=open&amp;q=vpn&amp;priority=4" aria-current="page"' in html
    assert "Saved view “Urgent VPN”." in html


def test_the_list_offers_to_save_only_filtered_queues(agent_client):
    assert 'id="saved-view-name"' not in agent_client.get(LIST).content.decode()
    html = agent_client.get(LIST, {"channel": "3", "page": "2"}).content.decode()
    assert '<input type="hidden" name="query" value="channel=3">' in html
    response = save(agent_client, "Everything", "page=2")
    assert "the default queue needs no saving" in response.content.decode()
    assert not SavedView.objects.exists()


def test_saving_a_name_again_replaces_its_filters(agent_client, agent):
    save(agent_client, "Mine", "view=mine")
    save(agent_client, "Mine", "view=mine&sort=priority")
    assert list(SavedView.objects.filter(owner=agent).values_list("name", "query")) == [
        ("Mine", "view=mine&sort=priority")
    ]


def test_saved_views_are_personal(agent_client, other_agent_client, agent):
    save(agent_client, "Mine only", "view=mine")
    saved = SavedView.objects.get(owner=agent)
    assert "Mine only" not in other_agent_client.get(LIST).content.decode()
    delete = reverse("console:saved-view-delete", args=[saved.pk])
    assert other_agent_client.post(delete).status_code == 404
    assert SavedView.objects.filter(pk=saved.pk).exists()
    agent_client.post(delete)
    assert not SavedView.objects.filter(pk=saved.pk).exists()


def test_names_are_escaped(agent_client):
    save(agent_client, '<script>alert("x")</script>', "q=x")
    html = agent_client.get(LIST).content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_an_agent_keeps_at_most_the_cap(agent_client, agent):
    SavedView.objects.bulk_create(SavedView(owner=agent, name=f"v{n}", query=f"q={n}") for n in range(MAX_SAVED_VIEWS))
    response = save(agent_client, "one more", "q=more")
    assert f"You have {MAX_SAVED_VIEWS} saved views already" in response.content.decode()
    assert SavedView.objects.filter(owner=agent).count() == MAX_SAVED_VIEWS
    save(agent_client, "v1", "q=replaced")  # replacing one is still allowed
    assert SavedView.objects.get(owner=agent, name="v1").query == "q=replaced"


def test_one_query_however_many_saved_views(agent_client, agent):
    save(agent_client, "first", "q=a")
    one = queries_for(agent_client, LIST)
    SavedView.objects.bulk_create(SavedView(owner=agent, name=f"v{n}", query=f"q={n}") for n in range(20))
    assert queries_for(agent_client, LIST) == one
    # The polled rows do not carry the saved views at all.
    assert "saved-view" not in agent_client.get(reverse("console:ticket-rows")).content.decode()


def test_employees_cannot_save_views(client, employee):
    client.force_login(employee)
    assert client.post(CREATE, {"name": "x", "query": "q=x"}).status_code == 403
    assert not SavedView.objects.exists()
