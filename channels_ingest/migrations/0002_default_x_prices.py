"""X's pay-per-use prices as of 2026 (docs.x.com pricing); admins edit them in /admin/."""

from decimal import Decimal

from django.db import migrations

X_PRICES = [
    ("post_read_owned", "0.001", "A post returned by the account's own mentions timeline (owned read)"),
    ("dm_event_read", "0.010", "A DM event returned by /2/dm_events"),
    ("user_read", "0.010", "A user returned by a user lookup"),
    ("expanded_user_read", "0", "An author returned by expansions; set a price if X bills these"),
    ("post_create", "0.015", "A post created (public reply)"),
    ("post_create_with_url", "0.200", "A post created that contains a URL"),
    ("dm_create", "0.015", "A DM sent"),
]


def add_prices(apps, schema_editor):
    PriceRule = apps.get_model("channels_ingest", "PriceRule")
    for operation, price, description in X_PRICES:
        PriceRule.objects.get_or_create(
            kind="x", operation=operation, defaults={"unit_price": Decimal(price), "description": description}
        )


class Migration(migrations.Migration):
    dependencies = [("channels_ingest", "0001_initial")]
    operations = [migrations.RunPython(add_prices, migrations.RunPython.noop)]
