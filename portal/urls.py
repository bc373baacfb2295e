from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.ticket_list, name="tickets"),
    path("sign-in/", views.sign_in, name="sign-in"),
    path("sign-in/sent/", views.sign_in_sent, name="sign-in-sent"),
    path("sign-in/link/", views.sign_in_link, name="sign-in-link"),
    path("tickets/new/", views.ticket_new, name="ticket-new"),
    path("tickets/<int:pk>/", views.ticket_detail, name="ticket"),
    path("tickets/<int:pk>/reply/", views.ticket_reply, name="ticket-reply"),
    path("files/<int:pk>/", views.attachment_download, name="attachment"),
]
