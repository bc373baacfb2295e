from django.urls import path

from . import bulk, channel_health, files, live, macros, saved_views, triage, views

app_name = "console"
urlpatterns = [
    path("", views.ticket_list, name="ticket-list"),
    path("rows/", views.ticket_rows, name="ticket-rows"),
    path("views/", saved_views.saved_view_create, name="saved-view-create"),
    path("views/<int:pk>/delete/", saved_views.saved_view_delete, name="saved-view-delete"),
    path("tickets/bulk/", bulk.ticket_bulk, name="ticket-bulk"),
    path("tickets/merge/", bulk.ticket_merge, name="ticket-merge"),
    path("tickets/<int:pk>/", views.ticket_detail, name="ticket-detail"),
    path("tickets/<int:pk>/reply/", views.ticket_reply, name="ticket-reply"),
    path("tickets/<int:pk>/note/", views.ticket_note, name="ticket-note"),
    path("tickets/<int:pk>/update/", views.ticket_update, name="ticket-update"),
    path("tickets/<int:pk>/earlier/", views.ticket_earlier, name="ticket-earlier"),
    path("tickets/<int:pk>/reply/length/", views.reply_length, name="reply-length"),
    path("tickets/<int:pk>/live/", live.ticket_live, name="ticket-live"),
    path("tickets/<int:pk>/presence/", live.ticket_presence, name="ticket-presence"),
    path("tickets/<int:pk>/presence/leave/", live.ticket_presence_leave, name="ticket-presence-leave"),
    path("tickets/<int:pk>/reply/target/", views.reply_conversation, name="reply-conversation"),
    path("messages/<int:pk>/status/", views.message_status, name="message-status"),
    path("messages/<int:pk>/retry/", views.message_retry, name="message-retry"),
    path("attachments/<int:pk>/", files.attachment_download, name="attachment"),
    path("attachments/<int:pk>/status/", files.attachment_status, name="attachment-status"),
    path("triage/", triage.triage, name="triage"),
    path("triage/accept/", triage.triage_accept, name="triage-accept"),
    path("triage/dismiss/", triage.triage_dismiss, name="triage-dismiss"),
    path("channels/", channel_health.channels, name="channels"),
    path("macros/", macros.macro_list, name="macro-list"),
    path("macros/new/", macros.macro_create, name="macro-create"),
    path("macros/<int:pk>/", macros.macro_edit, name="macro-edit"),
    path("macros/<int:pk>/delete/", macros.macro_delete, name="macro-delete"),
    path("tickets/<int:pk>/macro/", macros.macro_insert, name="macro-insert"),
    path("tickets/<int:pk>/macro/apply/", macros.macro_apply, name="macro-apply"),
]
