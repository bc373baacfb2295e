"""Test base for the Facebook Page and Instagram adapters: recorded payloads, wrapped into signed webhook bodies."""

import hashlib
import hmac
import json
import time
from pathlib import Path

from channel_adapters.meta.facebook import FacebookAdapter
from channel_adapters.meta.instagram import InstagramAdapter
from channels_ingest.models import Channel

FIXTURES = Path(__file__).parent / "fixtures"
APP_SECRET = "meta-app-secret"
VERIFY_TOKEN = "meta-verify-token"


def fixture(folder, name):
    """A recorded payload, named ``<event>__<variant>``, decoded."""
    return json.loads((FIXTURES / folder / f"{name}.json").read_text())


def sign(body: bytes, secret=APP_SECRET) -> dict:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def body_of(account_id, *items, field="messaging", obj="page", time=1491796363181) -> dict:
    """A whole webhook body around recorded single ``messaging[]`` or ``changes[]`` items (as Meta batches them)."""
    return {"object": obj, "entry": [{"id": account_id, "time": time, field: list(items)}]}


def deliver(adapter, body):
    """``body`` (a dict, or bytes as they came) signed with the channel's app secret and handed to the adapter."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return adapter.handle_webhook(headers=sign(raw), body=raw)


def facebook_adapter(page_id, **config):
    raw = {
        "page_id": page_id,
        "page_access_token": "page-token",
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        "base_url": "http://127.0.0.1:9/v25.0",  # nothing listens: these tests make no calls
        **config,
    }
    config, secrets = FacebookAdapter.split_config(raw)
    return FacebookAdapter(config=config, secrets=secrets, state={"page_id": page_id})


def instagram_adapter(ig_user_id, page_id="100200300", **config):
    raw = {
        "ig_user_id": ig_user_id,
        "page_id": page_id,
        "page_access_token": "page-token",
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        "base_url": "http://127.0.0.1:9/v25.0",
        **config,
    }
    config, secrets = InstagramAdapter.split_config(raw)
    return InstagramAdapter(config=config, secrets=secrets, state={"ig_user_id": ig_user_id, "username": "ithelp"})


# On the Meta emulator ------------------------------------------------------------------------------


def emulator_facebook(meta_emulator, page, **config) -> FacebookAdapter:
    """A Facebook adapter for an emulator Page, its state learned as when the channel is added."""
    raw = {
        "page_id": page["id"],
        "page_access_token": page["token"],
        "app_secret": page["app_secret"],
        "verify_token": page["verify_token"],
        "base_url": meta_emulator.base_url,
        **config,
    }
    config, secrets = FacebookAdapter.split_config(raw)
    adapter = FacebookAdapter(config=config, secrets=secrets)
    adapter.state = adapter.check_credentials()
    return adapter


def emulator_instagram(meta_emulator, account, page, **config) -> InstagramAdapter:
    raw = {
        "ig_user_id": account["id"],
        "page_id": page["id"],
        "page_access_token": page["token"],
        "app_secret": page["app_secret"],
        "verify_token": account["verify_token"],
        "base_url": meta_emulator.base_url,
        **config,
    }
    config, secrets = InstagramAdapter.split_config(raw)
    adapter = InstagramAdapter(config=config, secrets=secrets)
    adapter.state = adapter.check_credentials()
    return adapter


def channel_of(adapter, name):
    """The adapter's configuration as a stored channel (the pipeline's view of it)."""
    return Channel.objects.create(
        kind=adapter.kind, name=name, config=adapter.config, secrets=adapter.secrets, state=adapter.state
    )


def envelopes_of(pages):
    return [envelope for page in pages for envelope in page.envelopes]


def hours_ago(hours):
    return time.time() - hours * 3600
