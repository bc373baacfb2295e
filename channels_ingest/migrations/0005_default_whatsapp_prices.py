"""WhatsApp Cloud API prices per delivered message (Meta's per-message pricing since 2025-07-01); admins set
their market's rates in /admin/. Service replies (free text inside the 24-hour window) cost nothing; templates
are billed by category, and the rates below are Meta's for the United States, a placeholder for others."""

from decimal import Decimal

from django.db import migrations

WHATSAPP_PRICES = [
    ("service_message", "0", "A free-text reply inside the 24-hour customer-service window (free)"),
    ("template_utility", "0.0034", "A utility template (e.g. a ticket update); US rate, set your market's"),
    ("template_authentication", "0.0034", "An authentication template; US rate, set your market's"),
    ("template_marketing", "0.0250", "A marketing template; US rate, set your market's"),
    ("template_unknown", "0.0250", "A template whose category Meta did not say; priced as marketing"),
]


def add_prices(apps, schema_editor):
    PriceRule = apps.get_model("channels_ingest", "PriceRule")
    for operation, price, description in WHATSAPP_PRICES:
        PriceRule.objects.get_or_create(
            kind="whatsapp", operation=operation, defaults={"unit_price": Decimal(price), "description": description}
        )


class Migration(migrations.Migration):
    dependencies = [("channels_ingest", "0004_channel_push_times_credentials_check")]
    operations = [migrations.RunPython(add_prices, migrations.RunPython.noop)]
