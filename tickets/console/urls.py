from django.urls import path

from . import views

app_name = "console"
urlpatterns = [
    path("", views.ticket_list, name="ticket-list"),
    path("rows/", views.ticket_rows, name="ticket-rows"),
    path("tickets/<int:pk>/", views.ticket_detail, name="ticket-detail"),
    path("tickets/<int:pk>/reply/", views.ticket_reply, name="ticket-reply"),
    path("tickets/<int:pk>/note/", views.ticket_note, name="ticket-note"),
    path("tickets/<int:pk>/update/", views.ticket_update, name="ticket-update"),
    path("tickets/<int:pk>/earlier/", views.ticket_earlier, name="ticket-earlier"),
    path("tickets/<int:pk>/reply/length/", views.reply_length, name="reply-length"),
    path("messages/<int:pk>/status/", views.message_status, name="message-status"),
    path("messages/<int:pk>/retry/", views.message_retry, name="message-retry"),
    path("attachments/<int:pk>/", views.attachment_download, name="attachment"),
    path("attachments/<int:pk>/status/", views.attachment_status, name="attachment-status"),
    path("triage/", views.triage, name="triage"),
    path("triage/accept/", views.triage_accept, name="triage-accept"),
    path("triage/dismiss/", views.triage_dismiss, name="triage-dismiss"),
    path("channels/", views.channels, name="channels"),
]
