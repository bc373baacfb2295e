from django.urls import path

from . import webhooks

app_name = "channels_ingest"
urlpatterns = [
    path("<uuid:public_id>/", webhooks.receive, name="webhook"),
]
