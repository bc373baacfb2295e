from django.db import migrations, models


def mark_past_first_imports_unknown(apps, schema_editor):
    """Channels polled before this field existed: their first import is long over and was not recorded ({} says
    so), rather than counting everything they ever stored as their first import at their next poll."""
    Channel = apps.get_model("channels_ingest", "Channel")
    Channel.objects.filter(last_success_at__isnull=False).update(first_import={})


class Migration(migrations.Migration):
    dependencies = [
        ("channels_ingest", "0006_channel_health_and_alerts"),
    ]

    operations = [
        migrations.AddField(
            model_name="channel",
            name="first_import",
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(mark_past_first_imports_unknown, migrations.RunPython.noop),
    ]
