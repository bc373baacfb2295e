"""A price row for media objects that expansions return (counted since X media became attachments).

X's price list has "Media: Read $0.005 per resource"; whether media in ``includes`` of a mentions or
DM answer are billed that way is not documented, so this starts at 0 like expanded users, and
admins set it if their bill shows them.
"""

from decimal import Decimal

from django.db import migrations

OPERATION = "expanded_media_read"
DESCRIPTION = "A media item returned by expansions (photo, video, GIF); X lists Media: Read at $0.005, set it if billed"


def add_price(apps, schema_editor):
    PriceRule = apps.get_model("channels_ingest", "PriceRule")
    PriceRule.objects.get_or_create(
        kind="x", operation=OPERATION, defaults={"unit_price": Decimal(0), "description": DESCRIPTION}
    )


def remove_price(apps, schema_editor):
    apps.get_model("channels_ingest", "PriceRule").objects.filter(kind="x", operation=OPERATION).delete()


class Migration(migrations.Migration):
    dependencies = [("channels_ingest", "0002_default_x_prices")]
    operations = [migrations.RunPython(add_price, remove_price)]
