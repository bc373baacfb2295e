import pytest

from tickets.audit import record_change, redacted
from tickets.models import AuditEntry, Queue


@pytest.fixture
def queue(db):
    return Queue.objects.create(name="Network")


def test_an_entry_names_who_what_and_the_values_that_changed(queue, admin_user):
    entry = record_change(
        actor=admin_user,
        action="queue.update",
        target=queue,
        before={"name": "Net", "size": 1},
        after={"name": "Network", "size": 1},
    )
    entry.refresh_from_db()
    assert (entry.actor, entry.actor_label, entry.action) == (admin_user, "boss", "queue.update")
    assert (entry.target_type, entry.target_id, entry.target_label) == ("tickets.queue", str(queue.pk), "Network")
    assert entry.changes() == [("name", "Net", "Network")]


def test_a_command_is_named_when_there_is_no_user(queue):
    entry = record_change(
        actor=None,
        action="queue.create",
        target=queue,
        before=None,
        after={"name": "Network"},
        actor_label="manage.py channels add",
    )
    assert entry.actor is None
    assert entry.actor_label == "manage.py channels add"
    assert entry.changes() == [("name", None, "Network")]


def test_a_secret_a_caller_forgot_to_redact_is_never_stored(queue):
    token = "xoxb-1234567890-abcdefghijkl"
    record_change(
        actor=None,
        action="channel.update",
        target=queue,
        before={"secrets": {"bot_token": token}},
        after={"secrets": {"bot_token": redacted(token)}, "client_secret": "s3cr3t-value-9876", "api_key": ""},
    )
    stored = AuditEntry.objects.values_list("before", "after").get()
    assert token not in str(stored)
    assert "s3cr3t-value-9876" not in str(stored)
    assert stored[1] == {"secrets": {"bot_token": "set (…ijkl)"}, "client_secret": "set (…9876)", "api_key": "not set"}


@pytest.mark.parametrize(
    ("secret", "shown"), [("", "not set"), ("short", "set"), ("a-long-enough-secret", "set (…cret)")]
)
def test_redacted_shows_at_most_the_last_four_characters_of_a_long_secret(secret, shown):
    assert redacted(secret) == shown
