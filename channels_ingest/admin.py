from django import forms
from django.contrib import admin
from django.db import transaction

from channel_adapters.base import ConfigError
from tickets.audit import record_change

from .channel_config import clean_channel_config
from .models import ApiUsage, Channel, InboundMessage, PriceRule


class ChannelForm(forms.ModelForm):
    """Credentials are write-only: a blank field keeps the stored value."""

    new_secrets = forms.JSONField(
        required=False, help_text="Replace credentials (JSON). Stored encrypted; never shown back in full."
    )

    class Meta:
        model = Channel
        fields = ["kind", "name", "config", "enabled", "poll_interval_seconds"]

    def clean(self):
        data = super().clean()
        raw = {**self.instance.secrets, **(data.get("config") or {}), **(data.get("new_secrets") or {})}
        try:
            data["config"], self.instance.secrets = clean_channel_config(data.get("kind", ""), raw)
        except (ConfigError, LookupError) as exc:
            raise forms.ValidationError(str(exc)) from None
        return data


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    """Every change is in the audit log too, as the console's and the command's are."""

    form = ChannelForm
    list_display = [
        "name",
        "kind",
        "enabled",
        "healthy",
        "consecutive_failures",
        "last_poll_at",
        "last_poll_stored",
        "last_error",
    ]
    readonly_fields = [
        "public_id",
        "masked_secrets",
        "state",
        "cursor",
        "last_poll_at",
        "last_success_at",
        "last_error",
        "last_error_kind",
        "consecutive_failures",
        "broken_since",
    ]

    def save_model(self, request, obj, form, change):
        before = Channel.objects.get(pk=obj.pk).audited() if change else None
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            action = "channel.update" if change else "channel.create"
            record_change(actor=request.user, action=action, target=obj, before=before, after=obj.audited())

    def delete_model(self, request, obj):
        with transaction.atomic():
            record_change(actor=request.user, action="channel.delete", target=obj, before=obj.audited(), after=None)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for channel in queryset:
                record_change(
                    actor=request.user, action="channel.delete", target=channel, before=channel.audited(), after=None
                )
            super().delete_queryset(request, queryset)


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    list_display = ["channel", "external_id", "status", "attempts", "received_at", "error"]
    list_filter = ["status", "channel"]
    list_select_related = ["channel"]
    readonly_fields = ["channel", "external_id", "payload", "received_at", "processed_at"]


@admin.register(PriceRule)
class PriceRuleAdmin(admin.ModelAdmin):
    list_display = ["kind", "operation", "unit_price", "description"]
    list_editable = ["unit_price"]
    list_filter = ["kind"]


@admin.register(ApiUsage)
class ApiUsageAdmin(admin.ModelAdmin):
    list_display = ["channel", "month", "operation", "units", "cost"]
    list_filter = ["month", "channel"]
    list_select_related = ["channel"]
    readonly_fields = ["channel", "month", "operation", "units", "cost"]
