"""Admins connect, edit, test, enable or disable and delete channels in the console; nobody else can."""

import pytest
from django.urls import reverse

from channels_ingest.models import Channel
from console.channel_admin_views import answer_in_words
from emulators.mail import DEFAULT_PASSWORD, DEFAULT_USER
from tests.helpers import flashes, poll_as_worker, text_of
from tickets.models import AuditEntry

pytestmark = pytest.mark.django_db

BOT_TOKEN = "xoxb-emulator"
SIGNING_SECRET = "emulator-signing-secret-9f3a"


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def slack_form(slack_emulator, **extra):
    """The Slack form as an admin fills it in, for the emulator."""
    return {
        "name": "it-help",
        "bot_token": BOT_TOKEN,
        "signing_secret": SIGNING_SECRET,
        "conversations": "C0GENERAL",
        "base_url": slack_emulator.base_url,
        "poll_interval_seconds": "60",
        "import_days": "14",
        **extra,
    }


def admin_urls(channel):
    """Every admin page and action: (method, URL)."""
    return [
        ("get", reverse("console:channel-kinds")),
        ("get", reverse("console:channel-create", args=["slack"])),
        ("post", reverse("console:channel-create", args=["slack"])),
        ("get", reverse("console:channel-edit", args=[channel.pk])),
        ("post", reverse("console:channel-edit", args=[channel.pk])),
        ("post", reverse("console:channel-test", args=[channel.pk])),
        ("post", reverse("console:channel-enabled", args=[channel.pk])),
        ("get", reverse("console:channel-delete", args=[channel.pk])),
        ("post", reverse("console:channel-delete", args=[channel.pk])),
    ]


# Who may ---------------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client, offline_x_channel):
    for method, url in admin_urls(offline_x_channel):
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


@pytest.mark.parametrize("who", ["agent", "employee"])
def test_agents_and_employees_are_refused(client, request, who, offline_x_channel):
    client.force_login(request.getfixturevalue(who))
    for method, url in admin_urls(offline_x_channel):
        assert getattr(client, method)(url).status_code == 403, url
    assert Channel.objects.filter(pk=offline_x_channel.pk, enabled=True).exists()


def test_the_channels_page_links_admins_to_add_and_edit(admin_client, agent, client, offline_x_channel):
    html = admin_client.get(reverse("console:channels")).content.decode()
    assert reverse("console:channel-kinds") in html
    assert reverse("console:channel-edit", args=[offline_x_channel.pk]) in html
    client.force_login(agent)
    html = client.get(reverse("console:channels")).content.decode()
    assert reverse("console:channel-kinds") not in html
    assert reverse("console:channel-edit", args=[offline_x_channel.pk]) not in html


def test_every_platform_is_offered_but_the_test_double(admin_client):
    html = admin_client.get(reverse("console:channel-kinds")).content.decode()
    for kind in ("slack", "x", "facebook", "instagram", "whatsapp", "email"):
        assert reverse("console:channel-create", args=[kind]) in html
    assert "locmem" not in html
    assert admin_client.get(reverse("console:channel-create", args=["locmem"])).status_code == 404
    assert admin_client.get(reverse("console:channel-create", args=["telegram"])).status_code == 404


# Connecting ------------------------------------------------------------------------------------------


def test_an_admin_connects_a_slack_channel_and_its_secrets_are_never_shown(admin_client, admin_user, slack_emulator):
    response = admin_client.post(reverse("console:channel-create", args=["slack"]), slack_form(slack_emulator))
    channel = Channel.objects.get(name="it-help")
    assert response["Location"] == reverse("console:channel-edit", args=[channel.pk])
    assert channel.config["conversations"] == ["C0GENERAL"]
    assert channel.config["import_days"] == 14
    assert channel.secrets == {"bot_token": BOT_TOKEN, "signing_secret": SIGNING_SECRET}

    assert channel.state["team"] == "Emulator"  # checked once saved
    page = admin_client.get(response["Location"])
    html = page.content.decode()
    assert "Channel it-help connected. The platform answered: team_id: T0EMU" in text_of(html)
    assert SIGNING_SECRET not in html
    assert BOT_TOKEN not in html
    assert "Stored: set (…9f3a)" in html
    assert "Stored: set (…ator)" in html
    assert f"/webhooks/{channel.public_id}" in html  # Slack pushes: the URL to paste

    entry = AuditEntry.objects.get(action="channel.create")
    assert entry.actor == admin_user
    assert entry.after["config"]["signing_secret"] == "set (…9f3a)"
    assert SIGNING_SECRET not in str(entry.after)


def test_test_connection_before_saving_shows_slacks_answer_and_saves_nothing(admin_client, slack_emulator):
    url = reverse("console:channel-create", args=["slack"])
    response = admin_client.post(url, {**slack_form(slack_emulator), "action": "test"})
    text = text_of(response.content.decode())
    assert "Connection works. The platform answered: team_id: T0EMU" in text
    assert "team: Emulator; bot_name: helpdesk" in text
    assert SIGNING_SECRET not in response.content.decode()
    assert not Channel.objects.exists()

    fragment = admin_client.post(url, {**slack_form(slack_emulator), "action": "test"}, headers={"HX-Request": "true"})
    assert fragment.content.decode().lstrip().startswith('<div class="channel-check check-ok"')


def test_test_connection_shows_the_platforms_refusal_in_its_words(admin_client, slack_emulator):
    slack_emulator.set_token(BOT_TOKEN, revoked=True)
    url = reverse("console:channel-create", args=["slack"])
    response = admin_client.post(url, {**slack_form(slack_emulator), "action": "test"})
    assert "Test connection failed: Slack error: token_revoked" in text_of(response.content.decode())

    saved = admin_client.post(url, slack_form(slack_emulator), follow=True)  # saved all the same, unhealthy
    assert flashes(saved) == ["Channel it-help saved, but the connection test failed: Slack error: token_revoked"]
    assert not Channel.objects.get(name="it-help").healthy


def test_test_connection_of_an_x_channel_says_who_we_are(admin_client, x_emulator):
    form = {"name": "x-help", "bearer_token": "x-emulator-bearer", "base_url": x_emulator.url}
    response = admin_client.post(
        reverse("console:channel-create", args=["x"]), {**form, "poll_interval_seconds": "60", "action": "test"}
    )
    assert "username: ithelp" in text_of(response.content.decode())


def test_test_connection_of_an_email_channel_logs_in_to_the_mailbox(admin_client, mail_emulator):
    form = {
        "name": "mail",
        "address": DEFAULT_USER,
        "username": DEFAULT_USER,
        "auth": "password",
        "password": "wrong-password",
        "imap_host": mail_emulator.imap_host,
        "imap_port": mail_emulator.imap_port,
        "imap_security": "none",
        "smtp_host": mail_emulator.smtp_host,
        "smtp_port": mail_emulator.smtp_port,
        "smtp_security": "none",
        "poll_interval_seconds": "60",
        "action": "test",
    }
    url = reverse("console:channel-create", args=["email"])
    refused = text_of(admin_client.post(url, form).content.decode())
    assert (
        f"Test connection failed: The IMAP server {mail_emulator.imap_host}:{mail_emulator.imap_port} refused"
        in refused
    )
    works = text_of(admin_client.post(url, {**form, "password": DEFAULT_PASSWORD}).content.decode())
    assert f"Connection works. The platform answered: address: {DEFAULT_USER}" in works
    assert DEFAULT_PASSWORD not in works


def test_a_facebook_page_is_tested_against_meta(admin_client, meta_emulator):
    page = meta_emulator.add_page(name="IT Help")
    form = {
        "name": "fb",
        "page_id": page["id"],
        "page_access_token": page["token"],
        "app_secret": page["app_secret"],
        "verify_token": page["verify_token"],
        "base_url": meta_emulator.base_url,
        "poll_interval_seconds": "60",
    }
    url = reverse("console:channel-create", args=["facebook"])
    response = admin_client.post(url, {**form, "action": "test"})
    assert "page_name: IT Help" in text_of(response.content.decode())
    admin_client.post(url, form)
    channel = Channel.objects.get(name="fb")
    html = admin_client.get(reverse("console:channel-edit", args=[channel.pk])).content.decode()
    assert "Not verified yet:" in text_of(html)  # Meta proves a webhook URL before it pushes
    assert page["token"] not in html


@pytest.mark.parametrize(
    ("kind", "form", "field", "words"),
    [
        ("slack", {"signing_secret": "s"}, "bot_token", "Slack needs a bot_token (xoxb-…)."),
        ("x", {"consumer_key": "k"}, "bearer_token", "X needs a bearer_token (OAuth 2.0 user context)"),
        ("facebook", {"page_id": "my page"}, "page_id", "Messenger needs page_id: the numeric id Meta shows"),
        ("instagram", {"page_id": "1"}, "ig_user_id", "Instagram needs ig_user_id"),
        ("whatsapp", {"waba_id": "2"}, "phone_number_id", "WhatsApp needs phone_number_id"),
        ("email", {"address": "not an address"}, "address", "address must be the mailbox's email address"),
        ("slack", {"bot_token": "xoxb-1", "import_days": "91"}, "import_days", "import_days must be a whole number"),
    ],
)
def test_each_platforms_form_shows_the_validators_words_on_the_field(admin_client, kind, form, field, words):
    response = admin_client.post(
        reverse("console:channel-create", args=[kind]), {"name": "new", "poll_interval_seconds": "60", **form}
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert any(words in error for error in errors.get(field, [])), errors
    assert not Channel.objects.exists()


def test_a_push_only_platform_has_no_polling_fields(admin_client):
    form = admin_client.get(reverse("console:channel-create", args=["whatsapp"])).context["form"]
    assert "poll_interval_seconds" not in form.fields
    assert "import_days" not in form.fields
    assert (
        "poll_interval_seconds"
        in admin_client.get(reverse("console:channel-create", args=["x"])).context["form"].fields
    )


# Editing ---------------------------------------------------------------------------------------------


@pytest.fixture
def slack_added(admin_client, slack_emulator):
    admin_client.post(reverse("console:channel-create", args=["slack"]), slack_form(slack_emulator))
    return Channel.objects.get(name="it-help")


def edit_form(channel, **changes):
    return {
        "name": channel.name,
        "conversations": "\n".join(channel.config["conversations"]),
        "base_url": channel.config["base_url"],
        "poll_interval_seconds": str(channel.poll_interval_seconds),
        **changes,
    }


def test_an_empty_secret_keeps_the_stored_one_and_a_typed_one_replaces_it(admin_client, slack_added):
    url = reverse("console:channel-edit", args=[slack_added.pk])
    admin_client.post(url, edit_form(slack_added, poll_interval_seconds="30"))
    slack_added.refresh_from_db()
    assert slack_added.poll_interval_seconds == 30
    assert slack_added.secrets == {"bot_token": BOT_TOKEN, "signing_secret": SIGNING_SECRET}

    admin_client.post(url, edit_form(slack_added, signing_secret="a-new-signing-secret-77b2"))
    slack_added.refresh_from_db()
    assert slack_added.secrets["signing_secret"] == "a-new-signing-secret-77b2"
    entry = AuditEntry.objects.filter(action="channel.update").latest("pk")
    assert entry.before["config"]["signing_secret"] == "set (…9f3a)"
    assert entry.after["config"]["signing_secret"] == "set (…77b2)"
    assert entry.before["poll_interval_seconds"] == 30


def test_a_new_base_url_needs_every_secret_typed_again(admin_client, slack_added):
    url = reverse("console:channel-edit", args=[slack_added.pk])
    moved = edit_form(slack_added, base_url="https://attacker.example/api/", bot_token=BOT_TOKEN)
    response = admin_client.post(url, moved)
    errors = response.context["form"].errors
    assert "signing_secret" in errors
    assert "bot_token" not in errors  # typed
    assert "never sent to a new address without being typed" in errors["signing_secret"][0]
    slack_added.refresh_from_db()
    assert slack_added.config["base_url"] != "https://attacker.example/api/"

    admin_client.post(url, {**moved, "signing_secret": SIGNING_SECRET})
    slack_added.refresh_from_db()
    assert slack_added.config["base_url"] == "https://attacker.example/api/"


def test_an_unchanged_base_url_written_differently_is_not_a_move(admin_client, slack_added):
    """The validator's own normal form decides (Slack's base URL ends with /)."""
    url = reverse("console:channel-edit", args=[slack_added.pk])
    response = admin_client.post(url, edit_form(slack_added, base_url=slack_added.config["base_url"].rstrip("/")))
    assert response.status_code == 302


def test_test_connection_on_a_saved_channel_records_its_health(admin_client, slack_added, slack_emulator):
    url = reverse("console:channel-test", args=[slack_added.pk])
    assert "Connection works. The platform answered: team_id: T0EMU" in flashes(admin_client.post(url, follow=True))[-1]
    slack_emulator.set_token(BOT_TOKEN, revoked=True)
    response = admin_client.post(url, follow=True)
    assert flashes(response)[-1] == "Test connection failed: Slack error: token_revoked"
    slack_added.refresh_from_db()
    assert not slack_added.healthy


def test_enabling_and_disabling_is_audited(admin_client, slack_added):
    url = reverse("console:channel-enabled", args=[slack_added.pk])
    admin_client.post(url, {"enabled": "0"})
    slack_added.refresh_from_db()
    assert not slack_added.enabled
    admin_client.post(url, {"enabled": "1"})
    slack_added.refresh_from_db()
    assert slack_added.enabled
    assert list(
        AuditEntry.objects.filter(target_id=str(slack_added.pk)).order_by("pk").values_list("action", flat=True)
    ) == [
        "channel.create",
        "channel.disable",
        "channel.enable",
    ]


def test_deleting_asks_first_then_deletes_and_audits(admin_client, slack_added):
    url = reverse("console:channel-delete", args=[slack_added.pk])
    confirm = text_of(admin_client.get(url).content.decode())
    assert "Delete channel it-help?" in confirm
    assert Channel.objects.filter(pk=slack_added.pk).exists()
    admin_client.post(url)
    assert not Channel.objects.filter(pk=slack_added.pk).exists()
    entry = AuditEntry.objects.get(action="channel.delete")
    assert entry.before["name"] == "it-help"
    assert entry.after is None
    assert SIGNING_SECRET not in str(entry.before)


# First import ---------------------------------------------------------------------------------------


def test_the_channels_page_says_what_the_first_import_brought(admin_client, slack_added, slack_emulator):
    slack_emulator.post_many("C0GENERAL", [{"user": "U0ANN", "text": f"issue {i}"} for i in range(3)])
    poll_as_worker(slack_added)
    assert slack_added.first_import["messages"] == 3
    text = text_of(admin_client.get(reverse("console:channels")).content.decode())
    assert "First import: 3 messages from" in text

    slack_emulator.post_many("C0GENERAL", [{"user": "U0ANN", "text": "later"}])
    poll_as_worker(slack_added)
    assert slack_added.first_import["messages"] == 3  # recorded once


def test_a_new_imap_host_needs_the_mailbox_password_typed_again(admin_client, mail_emulator):
    form = {
        "name": "mail",
        "address": DEFAULT_USER,
        "username": DEFAULT_USER,
        "auth": "password",
        "password": DEFAULT_PASSWORD,
        "imap_host": mail_emulator.imap_host,
        "imap_port": mail_emulator.imap_port,
        "imap_security": "none",
        "smtp_host": mail_emulator.smtp_host,
        "smtp_port": mail_emulator.smtp_port,
        "smtp_security": "none",
        "after_store": "seen",
        "poll_interval_seconds": "60",
    }
    admin_client.post(reverse("console:channel-create", args=["email"]), form)
    channel = Channel.objects.get(name="mail")
    url = reverse("console:channel-edit", args=[channel.pk])
    moved = {**form, "password": "", "imap_host": "imap.elsewhere.example"}
    assert "password" in admin_client.post(url, moved).context["form"].errors
    assert admin_client.post(url, {**form, "password": ""}).status_code == 302  # same host: the password is kept
    channel.refresh_from_db()
    assert channel.secrets == {"password": DEFAULT_PASSWORD}


def test_testing_an_incomplete_form_in_place_says_what_to_correct(admin_client, slack_emulator):
    """htmx swaps in only the answer, so what was typed stays; the validator's words say what is missing."""
    form = {**slack_form(slack_emulator), "bot_token": "", "action": "test"}
    fragment = admin_client.post(
        reverse("console:channel-create", args=["slack"]), form, headers={"HX-Request": "true"}
    ).content.decode()
    assert "Not tested:" in fragment
    assert "Bot token: Slack needs a bot_token (xoxb-…)." in text_of(fragment)
    assert "<form" not in fragment


def test_a_channel_of_a_kind_no_longer_configured_is_not_offered_for_editing(admin_client, settings, offline_x_channel):
    settings.CHANNEL_ADAPTERS = {k: v for k, v in settings.CHANNEL_ADAPTERS.items() if k != "x"}
    assert admin_client.get(reverse("console:channel-edit", args=[offline_x_channel.pk])).status_code == 404
    assert admin_client.post(reverse("console:channel-test", args=[offline_x_channel.pk])).status_code == 404


def test_the_edit_page_says_which_credentials_are_set(admin_client, offline_x_channel):
    form = admin_client.get(reverse("console:channel-edit", args=[offline_x_channel.pk])).context["form"]
    assert form.fields["bearer_token"].help_text.startswith("Stored: set. Leave empty to keep it.")  # too short to show
    assert form.fields["consumer_key"].help_text.startswith("Not set.")


def test_the_platforms_answer_never_shows_a_value_named_as_a_credential():
    state = {"team": "Acme", "refreshed_access_token": "tok-123", "templates": [{"name": "t"}], "idle": True}
    assert answer_in_words(state) == "team: Acme; idle: True"


def test_the_edit_page_shows_the_channels_health_and_the_platforms_last_words(
    admin_client, slack_added, slack_emulator
):
    slack_emulator.set_token(BOT_TOKEN, revoked=True)
    admin_client.post(reverse("console:channel-test", args=[slack_added.pk]))
    text = text_of(admin_client.get(reverse("console:channel-edit", args=[slack_added.pk])).content.decode())
    assert "Broken Re-authorize needed" in text
    assert "Last error: Credentials check failed: Slack error: token_revoked" in text
