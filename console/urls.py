from django.urls import path

from . import (
    bulk_views,
    channel_views,
    composer_views,
    file_views,
    live_views,
    macro_views,
    queue_views,
    saved_views,
    ticket_views,
    triage_views,
)

app_name = "console"
urlpatterns = [
    path("", queue_views.ticket_list, name="ticket-list"),
    path("rows/", queue_views.ticket_rows, name="ticket-rows"),
    path("views/", saved_views.saved_view_create, name="saved-view-create"),
    path("views/<int:pk>/delete/", saved_views.saved_view_delete, name="saved-view-delete"),
    path("tickets/bulk/", bulk_views.ticket_bulk, name="ticket-bulk"),
    path("tickets/merge/", bulk_views.ticket_merge, name="ticket-merge"),
    path("tickets/<int:pk>/", ticket_views.ticket_detail, name="ticket-detail"),
    path("tickets/<int:pk>/reply/", composer_views.ticket_reply, name="ticket-reply"),
    path("tickets/<int:pk>/note/", composer_views.ticket_note, name="ticket-note"),
    path("tickets/<int:pk>/update/", ticket_views.ticket_update, name="ticket-update"),
    path(
        "tickets/<int:pk>/followers/<int:follower_pk>/remove/", ticket_views.follower_remove, name="follower-remove"
    ),
    path("tickets/<int:pk>/earlier/", ticket_views.ticket_earlier, name="ticket-earlier"),
    path("tickets/<int:pk>/reply/length/", composer_views.reply_length, name="reply-length"),
    path("tickets/<int:pk>/live/", live_views.ticket_live, name="ticket-live"),
    path("tickets/<int:pk>/presence/", live_views.ticket_presence, name="ticket-presence"),
    path("tickets/<int:pk>/presence/leave/", live_views.ticket_presence_leave, name="ticket-presence-leave"),
    path("tickets/<int:pk>/reply/target/", composer_views.reply_conversation, name="reply-conversation"),
    path("messages/<int:pk>/status/", ticket_views.message_status, name="message-status"),
    path("messages/<int:pk>/retry/", ticket_views.message_retry, name="message-retry"),
    path("attachments/<int:pk>/", file_views.attachment_download, name="attachment"),
    path("attachments/<int:pk>/status/", file_views.attachment_status, name="attachment-status"),
    path("triage/", triage_views.triage, name="triage"),
    path("triage/accept/", triage_views.triage_accept, name="triage-accept"),
    path("triage/dismiss/", triage_views.triage_dismiss, name="triage-dismiss"),
    path("channels/", channel_views.channels, name="channels"),
    path("channels/<int:pk>/requeue-failed/", channel_views.channel_requeue_failed, name="channel-requeue-failed"),
    path("macros/", macro_views.macro_list, name="macro-list"),
    path("macros/new/", macro_views.macro_create, name="macro-create"),
    path("macros/<int:pk>/", macro_views.macro_edit, name="macro-edit"),
    path("macros/<int:pk>/delete/", macro_views.macro_delete, name="macro-delete"),
    path("tickets/<int:pk>/macro/", macro_views.macro_insert, name="macro-insert"),
    path("tickets/<int:pk>/macro/apply/", macro_views.macro_apply, name="macro-apply"),
]
