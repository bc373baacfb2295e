from django.db import migrations, models

#: What the sweep wrote on a reply whose worker died mid-send, before such replies were checked on Retry.
STALLED_SEND_ERROR = (
    "The worker sending this reply stopped mid-send; it may or may not have arrived. "
    "Check the conversation before retrying."
)


def mark_stalled_sends_unconfirmed(apps, schema_editor):
    """Replies already failed that way may have arrived: their Retry looks first, where the channel can."""
    Message = apps.get_model("tickets", "Message")
    Message.objects.filter(
        delivery_status="failed", delivery_error=STALLED_SEND_ERROR, delivery_unconfirmed_since=None
    ).update(delivery_unconfirmed_since=models.F("delivery_started_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0010_live_marks"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="delivery_unconfirmed_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(mark_stalled_sends_unconfirmed, migrations.RunPython.noop),
    ]
