"""The form an admin connects or edits a channel with: one per platform, from a short list of its fields.

Each platform's fields are listed here (what an admin types, labelled and explained); which of them are
credentials comes from the adapter itself (``ChannelAdapter.secret_fields``), and whether the channel can be
polled from its capabilities. The form only gathers the values: ``clean_channel_config`` stays the one
validator, and its refusal is shown on the field it names, in its own words.
"""

import re
from dataclasses import dataclass

from django import forms

from channel_adapters.base import DEFAULT_IMPORT_DAYS, ConfigError
from channels_ingest.channel_config import MAX_IMPORT_DAYS, clean_channel_config
from channels_ingest.models import Channel
from channels_ingest.registry import adapter_class, can_poll

#: Seconds between polls for a new channel that can be polled.
DEFAULT_POLL_INTERVAL = 60


@dataclass(frozen=True)
class Field:
    """One config key as the form asks for it.

    ``type``: text, number (whole), list (one per line or comma-separated), checkbox, or choice (``choices``).
    ``connects_to``: the key names where the channel connects (a base URL, a host); changing it requires every
    stored credential to be typed again, so a token is never sent to a new host without the admin's say.
    """

    key: str
    label: str
    help: str = ""
    type: str = "text"
    choices: tuple[str, ...] = ()
    connects_to: bool = False


META_BASE_URL = Field(
    "base_url", "Graph API base URL", "Leave empty for https://graph.facebook.com/v25.0.", connects_to=True
)
META_WEBHOOK_SECRETS = (
    Field("app_secret", "App secret", "The Meta app's secret, which signs its webhooks."),
    Field("verify_token", "Verify token", "Any string; Meta sends it back when you register the webhook URL."),
)

#: Each offered kind's fields, in the order the form shows them. ``locmem`` (the tests' double) is not offered.
PLATFORM_FIELDS: dict[str, tuple[Field, ...]] = {
    "slack": (
        Field("bot_token", "Bot token", "The app's Bot User OAuth Token (xoxb-…)."),
        Field("signing_secret", "Signing secret", "Basic Information → App Credentials; signs the Events API pushes."),
        Field("conversations", "Conversations to poll", "Slack conversation ids (C0…), one per line.", type="list"),
        Field("base_url", "API base URL", "Leave empty for https://slack.com/api/.", connects_to=True),
    ),
    "x": (
        Field("bearer_token", "OAuth 2.0 user token", "A user-context token; or give the four OAuth 1.0a keys."),
        Field("consumer_key", "API key (OAuth 1.0a)"),
        Field("consumer_secret", "API key secret (OAuth 1.0a)"),
        Field("access_token", "Access token (OAuth 1.0a)"),
        Field("access_token_secret", "Access token secret (OAuth 1.0a)"),
        Field("base_url", "API base URL", "Leave empty for https://api.x.com.", connects_to=True),
        Field(
            "dm_poll_interval_seconds",
            "Seconds between DM reads",
            "Default 60: X allows 15 DM reads per 15 minutes.",
            type="number",
        ),
    ),
    "facebook": (
        Field("page_id", "Page id", "The numeric id Meta shows for the Page."),
        Field("page_access_token", "Page access token", "A Page access token with the messaging permissions."),
        *META_WEBHOOK_SECRETS,
        Field("human_agent", "Human Agent permission", "Replies up to 7 days after the last message.", "checkbox"),
        META_BASE_URL,
    ),
    "instagram": (
        Field("ig_user_id", "Instagram account id", "The numeric id of the Instagram professional account."),
        Field("page_id", "Page id", "The numeric id of the Facebook Page linked to the account."),
        Field("page_access_token", "Page access token", "A Page access token with the Instagram permissions."),
        *META_WEBHOOK_SECRETS,
        Field("human_agent", "Human Agent permission", "Replies up to 7 days after the last message.", "checkbox"),
        META_BASE_URL,
    ),
    "whatsapp": (
        Field("phone_number_id", "Phone number id", "WhatsApp Manager → API Setup: the number's id, not the number."),
        Field("waba_id", "WhatsApp Business Account id"),
        Field("access_token", "Access token", "A system user token with whatsapp_business_messaging and _management."),
        *META_WEBHOOK_SECRETS,
        META_BASE_URL,
    ),
    "email": (
        Field("address", "Address", "The mailbox's email address (help@example.com)."),
        Field("username", "User name", "For IMAP (and SMTP unless an SMTP user name is given)."),
        Field("auth", "Sign-in", type="choice", choices=("password", "oauth2")),
        Field("password", "Password"),
        Field("imap_host", "IMAP host", connects_to=True),
        Field("imap_port", "IMAP port", "Leave empty for the usual port of the security chosen.", type="number"),
        Field("imap_security", "IMAP security", type="choice", choices=("ssl", "starttls", "none")),
        Field("mailbox", "Folder", "Leave empty for INBOX."),
        Field("smtp_host", "SMTP host", "Leave empty for the IMAP host.", connects_to=True),
        Field("smtp_port", "SMTP port", type="number"),
        Field("smtp_security", "SMTP security", type="choice", choices=("starttls", "ssl", "none")),
        Field("smtp_username", "SMTP user name", "Leave empty for the IMAP user name."),
        Field("smtp_password", "SMTP password", "Leave empty for the IMAP password."),
        Field("access_token", "OAuth access token", "For sign-in oauth2, without a refresh token."),
        Field("refresh_token", "OAuth refresh token"),
        Field("client_secret", "OAuth client secret"),
        Field("oauth_token_url", "OAuth token URL", connects_to=True),
        Field("oauth_client_id", "OAuth client id"),
        Field("oauth_scope", "OAuth scope"),
        Field(
            "after_store",
            "After storing a message",
            "Mark it seen, or move it to a folder.",
            "choice",
            ("seen", "move"),
        ),
        Field("move_to", "Move to folder", "Where processed mail goes, when it is moved."),
        Field("aliases", "Other addresses", "The mailbox's other addresses, one per line.", type="list"),
        Field("sent_folder", "Sent folder", "Where replies are looked for after an unknown outcome (optional)."),
        Field("idle", "Watch with IDLE", "Poll as soon as mail arrives (needs manage.py watch_mailboxes).", "checkbox"),
    ),
    # The portal is this site: nothing to connect to, only a name.
    "portal": (),
}

KIND_LABELS = {
    "slack": "Slack",
    "x": "X",
    "facebook": "Facebook Messenger",
    "instagram": "Instagram",
    "whatsapp": "WhatsApp",
    "email": "Email",
    "portal": "Employee portal",
}


def offered_kinds() -> list[tuple[str, str]]:
    """(kind, label) of every kind an admin may add: configured in ``settings.CHANNEL_ADAPTERS`` and described here."""
    kinds = []
    for kind, label in KIND_LABELS.items():
        try:
            adapter_class(kind)
        except LookupError:
            continue
        kinds.append((kind, label))
    return kinds


def secret_keys(kind: str) -> tuple[str, ...]:
    return adapter_class(kind).secret_fields


def _form_field(spec: Field, *, secret: bool, stored: str | None) -> forms.Field:
    """The form field for ``spec``; a credential's help says how it is stored (``stored``: its mask, "" when
    not set, None on a new channel)."""
    if secret:
        help_text = spec.help
        if stored:
            help_text = f"Stored: {stored}. Leave empty to keep it. " + help_text
        elif stored is not None:
            help_text = "Not set. " + help_text
        # render_value=False: a stored or typed credential is never written back into the page.
        return forms.CharField(
            label=spec.label, required=False, help_text=help_text, widget=forms.PasswordInput(render_value=False)
        )
    if spec.type == "number":
        return forms.IntegerField(label=spec.label, required=False, help_text=spec.help)
    if spec.type == "checkbox":
        return forms.BooleanField(label=spec.label, required=False, help_text=spec.help)
    if spec.type == "choice":
        return forms.ChoiceField(
            label=spec.label, required=False, help_text=spec.help, choices=[(c, c) for c in spec.choices]
        )
    if spec.type == "list":
        return forms.CharField(
            label=spec.label, required=False, help_text=spec.help, widget=forms.Textarea({"rows": 3})
        )
    return forms.CharField(label=spec.label, required=False, help_text=spec.help)


def _initial(spec: Field, value):
    if spec.type == "list" and isinstance(value, list):
        return "\n".join(str(item) for item in value)
    return value


class ChannelForm(forms.Form):
    """A channel of one kind: its name, polling, first import and its platform's fields.

    ``channel`` is the stored channel when editing: its other settings (triage, acknowledgements, budget) are kept,
    and an empty credential field keeps the stored credential. ``cleaned_config`` and ``cleaned_secrets`` hold
    what ``clean_channel_config`` returned once the form is valid.
    """

    name = forms.SlugField(max_length=64, help_text="Letters, digits, - and _; how the console names the channel.")

    def __init__(self, kind: str, *args, channel: Channel | None = None, **kwargs):
        self.kind, self.channel = kind, channel
        self.specs = PLATFORM_FIELDS[kind]
        self.secrets = secret_keys(kind)
        config = channel.config if channel else {}
        initial = {"name": channel.name} if channel else {}
        initial.update({spec.key: _initial(spec, config[spec.key]) for spec in self.specs if spec.key in config})
        super().__init__(*args, initial=initial, **kwargs)
        stored = channel.masked_secrets() if channel else {}
        for spec in self.specs:
            secret = spec.key in self.secrets
            shown = stored.get(spec.key, "") if secret and channel else None
            self.fields[spec.key] = _form_field(spec, secret=secret, stored=shown)
        if can_poll(kind):
            self.fields["poll_interval_seconds"] = forms.IntegerField(
                label="Seconds between polls",
                min_value=0,
                initial=channel.poll_interval_seconds if channel else DEFAULT_POLL_INTERVAL,
                help_text="0 turns polling off (webhooks only).",
            )
            if channel is None:  # how far back the first poll reaches: asked when connecting only
                self.fields["import_days"] = forms.IntegerField(
                    label="Import history (days)",
                    required=False,
                    initial=DEFAULT_IMPORT_DAYS,
                    help_text=f"How far back the first poll imports messages: 0 (none) to {MAX_IMPORT_DAYS} days.",
                )

    def clean_name(self):
        name = self.cleaned_data["name"]
        others = Channel.objects.filter(name=name).exclude(pk=self.channel.pk if self.channel else None)
        if others.exists():
            raise forms.ValidationError("A channel with this name exists already.")
        return name

    def raw_config(self) -> dict:
        """The config as ``clean_channel_config`` takes it: the stored one (when editing), then what was typed;
        an empty field removes its key (so the platform's default applies), an empty credential keeps it."""
        data = self.cleaned_data
        raw = dict(self.channel.config) if self.channel else {}
        typed_secrets = {key: data[key] for key in self.secrets if key in self.fields and data.get(key)}
        raw.update(self.channel.secrets if self.channel else {})
        raw.update(typed_secrets)
        for spec in self.specs:
            if spec.key in self.secrets:
                continue
            value = data.get(spec.key)
            if spec.type == "list":
                value = [item for item in re.split(r"[\s,]+", value or "") if item]
            if value in (None, "", []) and spec.type != "checkbox":
                raw.pop(spec.key, None)
            else:
                raw[spec.key] = value
        if data.get("import_days") is not None:
            raw["import_days"] = data["import_days"]
        self.typed_secrets = set(typed_secrets)
        return raw

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            self.cleaned_config, self.cleaned_secrets = clean_channel_config(self.kind, self.raw_config())
        except ConfigError as exc:
            self.add_error(self._field_named_in(str(exc)), str(exc))
            return data
        self._require_secrets_for_new_host()
        return data

    def _field_named_in(self, message: str) -> str | None:
        """The field a validator's message is about: the first of the form's keys it names (None: the form)."""
        found = [(match.start(), key) for key in self.fields if (match := re.search(rf"\b{key}\b", message))]
        return min(found)[1] if found else None

    def _require_secrets_for_new_host(self):
        if self.channel is None:
            return
        moved = [
            spec
            for spec in self.specs
            if spec.connects_to and self.cleaned_config.get(spec.key) != self.channel.config.get(spec.key)
        ]
        if not moved:
            return
        where = ", ".join(spec.label for spec in moved)
        for key in self.channel.secrets:
            if key in self.fields and key not in self.typed_secrets:
                self.add_error(
                    key,
                    f"Type this again: the channel now connects elsewhere ({where}), and a stored credential "
                    "is never sent to a new address without being typed.",
                )

    def platform_fields(self):
        return [self[spec.key] for spec in self.specs]

    def channel_fields(self):
        return [self[key] for key in ("poll_interval_seconds", "import_days") if key in self.fields]
