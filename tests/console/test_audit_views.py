import pytest
from django.urls import reverse

from tickets.audit import record_change
from tickets.models import AuditEntry, Macro

pytestmark = pytest.mark.django_db


def test_only_admins_read_the_audit_log(client, agent, admin_user):
    url = reverse("console:audit-log")
    assert client.get(url).status_code == 302
    client.force_login(agent)
    assert client.get(url).status_code == 403
    client.force_login(admin_user)
    assert client.get(url).status_code == 200


def test_the_log_lists_changes_escaped_with_one_query_for_the_page(client, admin_user, django_assert_max_num_queries):
    for number in range(30):
        macro = Macro.objects.create(name=f"<b>Macro {number}</b>", body="Hi")
        record_change(
            actor=admin_user,
            action="macro.update",
            target=macro,
            before={"text": "Hi"},
            after={"text": "<script>x</script>"},
        )
    client.force_login(admin_user)
    client.get(reverse("console:audit-log"))  # warm the session and role lookups
    with django_assert_max_num_queries(8):
        response = client.get(reverse("console:audit-log"))
    body = response.content.decode()
    assert body.count("macro.update") == 30
    assert "<script>x</script>" not in body
    assert "&lt;script&gt;x&lt;/script&gt;" in body
    assert "&lt;b&gt;Macro 29&lt;/b&gt;" in body


def test_the_log_filters_by_what_changed(client, admin_user, agent):
    macro = Macro.objects.create(name="Greeting", body="Hi")
    record_change(actor=admin_user, action="macro.update", target=macro, before=None, after={"text": "Hi"})
    record_change(actor=admin_user, action="user.update", target=agent, before=None, after={"role": "agent"})
    client.force_login(admin_user)
    body = client.get(reverse("console:audit-log"), {"type": "auth.user"}).content.decode()
    assert "user.update" in body
    assert "macro.update" not in body


def test_changing_a_shared_macro_is_logged_and_a_personal_one_is_not(client, admin_user):
    client.force_login(admin_user)
    client.post(reverse("console:macro-create"), {"name": "Mine", "body": "Hello", "assignee_action": ""})
    assert not AuditEntry.objects.exists()
    client.post(
        reverse("console:macro-create"), {"name": "Ours", "body": "Hello", "assignee_action": "", "shared": "on"}
    )
    shared = Macro.objects.get(name="Ours")
    client.post(
        reverse("console:macro-edit", args=[shared.pk]),
        {"name": "Ours", "body": "Hello all", "assignee_action": "", "shared": "on"},
    )
    client.post(reverse("console:macro-delete", args=[shared.pk]))
    entries = list(AuditEntry.objects.order_by("id"))
    assert [entry.action for entry in entries] == ["macro.create", "macro.update", "macro.delete"]
    assert entries[1].changes() == [("text", "Hello", "Hello all")]
    assert entries[2].after is None
    assert entries[2].before["name"] == "Ours"
