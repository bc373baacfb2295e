from django.contrib import admin
from django.utils import timezone

from .models import Contact, Identity, Macro, Message, Queue, Ticket


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ["id", "subject", "status", "priority", "requester", "channel", "last_activity_at"]
    list_filter = ["status", "priority", "kind"]
    list_select_related = ["requester", "channel"]
    raw_id_fields = ["requester", "assignee"]

    def save_model(self, request, obj, form, change):
        """A status edited here changes like any other (``Ticket.set_status``) and shows on the timeline."""
        status_change = None
        if change and "status" in form.changed_data:
            edited, obj.status = obj.status, form.initial["status"]
            status_change = obj.set_status(edited, at=timezone.now(), actor=request.user, reason="edited in the admin")
        super().save_model(request, obj, form, change)
        if status_change:
            status_change.save()


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["display_name", "email", "created_at"]
    search_fields = ["display_name", "email"]


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    list_display = ["display_name", "handle", "namespace", "external_id", "contact"]
    list_select_related = ["contact"]
    raw_id_fields = ["contact"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "ticket", "direction", "delivery_status", "created_at"]
    list_select_related = ["ticket"]
    raw_id_fields = ["ticket", "thread", "author_identity", "author_user"]


@admin.register(Macro)
class MacroAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "status", "assignee_action", "updated_at"]
    list_filter = ["status", "assignee_action"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner", "assignee"]
    search_fields = ["name", "body"]


admin.site.register(Queue)
