"""Django's /admin/ for channels: credentials write-only, and every change in the audit log."""

import json

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from channels_ingest.models import Channel
from tickets.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    client.force_login(User.objects.create_superuser("root", password="root-pass-123"))
    return client


def test_changes_made_in_django_admin_are_audited_without_secrets(superuser_client, offline_x_channel):
    url = reverse("admin:channels_ingest_channel_change", args=[offline_x_channel.pk])
    form = {
        "kind": "x",
        "name": "x-help",
        "config": json.dumps(offline_x_channel.config),
        "enabled": "on",
        "poll_interval_seconds": "120",
        "new_secrets": json.dumps({"bearer_token": "a-new-bearer-token-c0de"}),
    }
    assert superuser_client.post(url, form).status_code == 302
    entry = AuditEntry.objects.get(action="channel.update")
    assert entry.before["poll_interval_seconds"] == 60
    assert entry.after["poll_interval_seconds"] == 120
    assert entry.after["config"]["bearer_token"] == "set (…c0de)"
    assert "a-new-bearer-token-c0de" not in json.dumps(entry.after)

    delete = reverse("admin:channels_ingest_channel_delete", args=[offline_x_channel.pk])
    superuser_client.post(delete, {"post": "yes"})
    assert not Channel.objects.exists()
    assert AuditEntry.objects.get(action="channel.delete").before["name"] == "x-help"
