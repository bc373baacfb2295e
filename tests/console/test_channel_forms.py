"""The channel forms' field lists stay in step with the adapters they describe."""

import pytest
from django.conf import settings

from channels_ingest.registry import adapter_class
from console.channel_forms import PLATFORM_FIELDS, ChannelForm, offered_kinds

pytestmark = pytest.mark.django_db


def test_every_configured_platform_but_the_test_double_has_a_form():
    assert sorted(kind for kind, _ in offered_kinds()) == sorted(set(settings.CHANNEL_ADAPTERS) - {"locmem"})


@pytest.mark.parametrize("kind", sorted(PLATFORM_FIELDS))
def test_every_credential_the_adapter_takes_is_asked_for_and_write_only(kind):
    form = ChannelForm(kind)
    for key in adapter_class(kind).secret_fields:
        assert key in form.fields, key
        assert form.fields[key].widget.input_type == "password"
        assert form.fields[key].widget.render_value is False


@pytest.mark.parametrize("kind", sorted(PLATFORM_FIELDS))
def test_a_base_url_or_host_field_counts_as_where_the_channel_connects(kind):
    for spec in PLATFORM_FIELDS[kind]:
        names_a_place = spec.key == "base_url" or spec.key.endswith(("_host", "_url"))
        assert spec.connects_to == names_a_place, spec.key
