"""Every adapter's webhook and poll parsers fed mutated recorded payloads (hypothesis).

Seeds are the recorded payloads in ``fixtures/``: Slack's Events API bodies and documented
``conversations.history``/``replies`` pages; X's recorded mention and DM pages (``__recorded``, from tweepy's
cassettes) and the same pages with the fields our requests ask for (``__with_fields``); WhatsApp's recorded
webhooks and delivery reports (moved to the fuzzed channel's number); Facebook Page and Instagram webhooks
(``messenger``, ``facebook`` and ``instagram`` fixtures: whole bodies moved to the fuzzed account, single items
wrapped in a body) and Graph answers (conversations, messages, comments). Each example drops
fields or replaces them with other JSON types, huge or odd numbers, deep nesting or odd strings.

- Webhooks go through Django's test client to the real webhook URL, validly signed, so the whole view runs:
  the answer is a 200 (stored, or a known-but-ignored event) or a 4xx with a reason, never a crash, and what
  was accepted ingests without failing.
- Polls go through ``poll_channel`` with the real client libraries against a canned platform that serves the
  mutated page, then ingest: the poll ends without an error, and every item it could not interpret is a
  failed row that keeps the raw item. (Files are not downloaded: their addresses are X's real hosts.) Pagination is not mutated: the canned platform answers every page alike, so a next
  page would never end.

Deterministic (``derandomize``), bounded, no deadline, and nothing written into the checkout (no example
database; hypothesis's own files go to a temporary folder, see ``conftest.pytest_configure``).
"""

import copy
import json
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.db import transaction
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels_ingest.channel_config import clean_channel_config
from channels_ingest.models import Channel, InboundMessage
from tests.channel_adapters.meta_pages import body_of
from tests.channel_adapters.meta_pages import sign as sign_for_meta
from tests.channel_adapters.slack_events import sign
from tests.helpers import canned_slack_channel, canned_x_channel, poll_and_ingest

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
SLACK_EVENTS = [
    json.loads(path.read_text())
    for path in sorted((FIXTURES / "slack").glob("*__*.json"))
    if not path.name.startswith("conversations_")
]
SLACK_PAGES = [
    json.loads((FIXTURES / "slack" / f"conversations_{m}__documented.json").read_text()) for m in ("history", "replies")
]
X_MENTIONS = [json.loads(p.read_text()) for p in sorted((FIXTURES / "x").glob("mentions__*.json"))]
X_DMS = [json.loads(p.read_text()) for p in sorted((FIXTURES / "x").glob("dm_events__*.json"))]
WA_NUMBER_ID, WA_WABA_ID, WA_SECRET = "106540352242922", "102290129340398", "fuzz-app-secret"


def whatsapp_seed(path):
    """A recorded WhatsApp webhook, moved to the fuzzed channel's account and number (the sources use several),
    so that mutations reach the parsers rather than the "another number" check."""
    body = json.loads(path.read_text())
    for entry in body["entry"]:
        entry["id"] = WA_WABA_ID
        for change in entry["changes"]:
            if isinstance(change["value"].get("metadata"), dict):
                change["value"]["metadata"]["phone_number_id"] = WA_NUMBER_ID
    return body


WHATSAPP_WEBHOOKS = [
    whatsapp_seed(p)
    for p in sorted((FIXTURES / "whatsapp").glob("*.json"))
    if p.name.startswith(("webhook__", "status__"))
]

FUZZ = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

ODD_STRINGS = st.sampled_from(
    [
        "",
        "inf",
        "-inf",
        "nan",
        "1e300",
        "99999999999.000000",  # a Slack ts in the year 5138
        "0.000000",
        "-1",
        " 1764000000.000100",
        "1764000000.000100",
        "5138-11-16T09:46:40.000Z",
        "2022-10-07T22:47:41",  # no timezone
        "99999999999999999999",  # above a snowflake's 64 bits
        "C0GENERAL",
        "U0ANN",
        "\x00",
        "\ud83d",  # half of a surrogate pair
        "\u202eevil",
        "a\u200bb",
        "e\u0301\u0301\u0301",
        "🧑‍💻" * 3,
        "<script>alert(1)</script>",
        "x" * 5000,
    ]
) | st.text(max_size=20)
NUMBERS = (
    st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e300, -1e300, 2**63, 1e11, 0.1])
)
SCALARS = st.none() | st.booleans() | NUMBERS | ODD_STRINGS
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_STRINGS, inner, max_size=3), max_leaves=6
)


def nested(depth):
    value = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"deeper": value}
    return value


VALUES = JSON_VALUES | st.integers(min_value=2, max_value=400).map(nested)


def places(document):
    """Every (container, key) in a JSON document, in a stable order."""
    found = []
    stack = [document]
    while stack:
        container = stack.pop()
        keys = list(container) if isinstance(container, dict) else range(len(container))
        for key in keys:
            found.append((container, key))
            if isinstance(container[key], dict | list):
                stack.append(container[key])
    return found


@st.composite
def mutated(draw, seeds):
    document = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        spots = places(document)
        if not spots:
            break
        container, key = draw(st.sampled_from(spots))
        action = draw(st.sampled_from(["drop", "replace", "replace", "wrap"]))
        if action == "drop":
            del container[key]
        elif action == "replace":
            container[key] = draw(VALUES)
        else:
            container[key] = draw(st.sampled_from([[container[key]], {"value": container[key]}]))
    return document


def without_paging(page):
    """A page that says it is the last one (the canned platform answers every page alike)."""
    if isinstance(page, dict):
        page.pop("has_more", None)
        page.pop("response_metadata", None)
        page.pop("paging", None)
        if isinstance(page.get("meta"), dict):
            page["meta"].pop("next_token", None)
    return page


def rolled_back(check):
    """Run ``check`` in a transaction that is undone, so each example starts from the same database."""
    with transaction.atomic():
        check()
        transaction.set_rollback(True)


def assert_stored_well():
    """Everything stored either ingested, or failed with the raw data the adapter rejected."""
    for row in InboundMessage.objects.all():
        if row.status == InboundMessage.Status.FAILED:
            assert row.external_id.startswith("rejected:"), (row.error, row.payload)
            assert "raw" in row.payload
        else:
            assert row.status in (InboundMessage.Status.PROCESSED, InboundMessage.Status.SKIPPED), row.error


def assert_answered_200_or_a_clear_4xx(client, capture, channel, body, headers):
    """POST ``body`` to ``channel``'s webhook URL (ingesting what it stores): a 200, or a 4xx that says why."""
    url = reverse("channels_ingest:webhook", args=[channel.public_id])

    def check():
        with capture(execute=True):
            response = client.post(url, data=body, content_type="application/json", **headers)
        assert response.status_code == 200 or 400 <= response.status_code < 500, response.content
        if response.status_code != 200:
            assert response.json()["error"]
        assert_stored_well()

    rolled_back(check)


def meta_signature(body, secret):
    return {"HTTP_X_HUB_SIGNATURE_256": sign_for_meta(body, secret)["X-Hub-Signature-256"]}


@FUZZ
@given(payload=mutated(SLACK_EVENTS))
def test_slack_webhook_answers_200_or_a_clear_4xx(client, slack_channel, django_capture_on_commit_callbacks, payload):
    body = json.dumps(payload).encode()
    assert_answered_200_or_a_clear_4xx(client, django_capture_on_commit_callbacks, slack_channel, body, sign(body))


@FUZZ
@given(page=mutated(SLACK_PAGES))
def test_slack_poll_stores_what_it_cannot_interpret_as_failed_rows(canned_platform, page):
    page = without_paging(page)
    canned_platform.answer("conversations.history", {**page, "ok": True})
    canned_platform.answer("conversations.replies", {"ok": True, "messages": []})

    def check():
        channel = canned_slack_channel(canned_platform)
        # Lookback far enough for the documented pages' 2016-2017 messages, whatever today's date.
        channel.config["thread_lookback_hours"] = 10**6
        channel.save()
        outcome = poll_and_ingest(channel)
        assert not outcome.error
        assert_stored_well()

    rolled_back(check)


@FUZZ
@given(mentions=mutated(X_MENTIONS), dms=mutated(X_DMS))
def test_x_poll_stores_what_it_cannot_interpret_as_failed_rows(canned_platform, mentions, dms):
    canned_platform.answer("/2/users/1/mentions", without_paging(mentions))
    canned_platform.answer("/2/dm_events", without_paging(dms))

    def check():
        channel = canned_x_channel(canned_platform)
        channel.config["import_days"] = 10**5  # the recorded 2022 DMs are in the first poll's backfill
        channel.save()
        outcome = poll_and_ingest(channel)
        assert not outcome.error
        assert_stored_well()

    rolled_back(check)


@pytest.fixture
def fuzzed_whatsapp_channel(db):
    config, secrets = clean_channel_config(
        "whatsapp",
        {
            "phone_number_id": WA_NUMBER_ID,
            "waba_id": WA_WABA_ID,
            "access_token": "t",
            "app_secret": WA_SECRET,
            "verify_token": "v",
            "base_url": "http://127.0.0.1:9/v25.0",  # nothing is fetched: downloads fail fast, never hang
        },
    )
    return Channel.objects.create(kind="whatsapp", name="whatsapp-fuzz", config=config, secrets=secrets)


@FUZZ
@given(payload=mutated(WHATSAPP_WEBHOOKS))
def test_whatsapp_webhook_answers_200_or_a_clear_4xx(
    client, fuzzed_whatsapp_channel, django_capture_on_commit_callbacks, payload
):
    body = json.dumps(payload).encode()
    assert_answered_200_or_a_clear_4xx(
        client, django_capture_on_commit_callbacks, fuzzed_whatsapp_channel, body, meta_signature(body, WA_SECRET)
    )


# Facebook Page and Instagram ------------------------------------------------------------------------------

#: The Instagram account is not the recorded comment's author (the recording's own account): its own comments
#: are skipped.
FB_PAGE, IG_ACCOUNT, IG_PAGE, META_SECRET = "404217156637689", "17841400008460056", "100200300", "fuzz-meta-secret"


def recorded(folder, pattern):
    return [json.loads(path.read_text()) for path in sorted((FIXTURES / folder).glob(pattern))]


def moved(body, account, obj):
    """A recorded whole body addressed to the fuzzed account (the sources use several, or placeholders), so that
    mutations reach the parsers rather than the "another account" check. Chatwoot's Instagram bodies lack
    ``object``; Meta sends it."""
    body = copy.deepcopy(body)
    body["object"] = obj
    for entry in body["entry"]:
        entry["id"] = account
    return body


#: The recorded Graph comment as the ``comments`` webhook field carries one (only the dashboard's test event,
#: without ``from`` and ``media``, was found recorded): the same id, text, media and author.
IG_COMMENT = recorded("instagram", "graph__comment.json")[0]
IG_COMMENT_CHANGE = {
    "field": "comments",
    "value": {
        "id": IG_COMMENT["id"],
        "text": IG_COMMENT["text"],
        "from": {"id": IG_COMMENT["user"]["id"], "username": IG_COMMENT["username"]},
        "media": IG_COMMENT["media"],
    },
}
FACEBOOK_WEBHOOKS = (
    [moved(body, FB_PAGE, "page") for body in recorded("messenger", "webhook__*.json")]
    + [body_of(FB_PAGE, item) for item in recorded("messenger", "event__*.json")]
    + [moved(body, FB_PAGE, "page") for body in recorded("facebook", "webhook__*.json")]
    + [body_of(FB_PAGE, item, field="changes", time=1511951015) for item in recorded("facebook", "change__*.json")]
)
INSTAGRAM_WEBHOOKS = [moved(body, IG_ACCOUNT, "instagram") for body in recorded("instagram", "webhook__*.json")] + [
    body_of(IG_ACCOUNT, item, field="changes", obj="instagram", time=1582535716)
    for item in [*recorded("instagram", "change__*.json"), IG_COMMENT_CHANGE]
]


def with_comment_ids(comment):
    """A recorded comment of a Page's post (``fixtures/facebook/graph__post_comments_page1``), with the id and
    parent its permalink names: that recording asked for other fields."""
    query = dict(parse_qsl(urlsplit(comment["permalink_url"]).query))
    post = urlsplit(comment["permalink_url"]).path.split("/")[3]
    if "reply_comment_id" in query:
        return {
            **comment,
            "id": f"{post}_{query['reply_comment_id']}",
            "parent": {"id": f"{post}_{query['comment_id']}"},
        }
    return {**comment, "id": f"{post}_{query['comment_id']}"}


CONVERSATION_PAGES = [
    {
        "data": [
            *recorded("messenger", "graph__conversation.json"),
            *recorded("messenger", "graph__conversations_by_ids.json")[0].values(),
        ]
    }
]
MESSAGE_PAGES = [
    {
        "data": [
            *recorded("messenger", "graph__message*.json")[:2],
            *recorded("messenger", "graph__messages_by_ids.json")[0].values(),
        ]
    }
]
FACEBOOK_COMMENT_PAGES = [
    {
        "data": [
            *recorded("facebook", "graph__comment.json"),
            *(with_comment_ids(c) for c in recorded("facebook", "graph__post_comments_page1.json")[0]["data"]),
        ]
    }
]
#: The recorded comment with its author where our request asks for it (``from``; that recording asked for ``user``).
IG_POLLED_COMMENT = {**IG_COMMENT, "from": IG_COMMENT_CHANGE["value"]["from"]}
INSTAGRAM_COMMENT_PAGES = [
    {"data": [IG_POLLED_COMMENT, *recorded("instagram", "graph__media_comments_page1.json")[0]["data"]]},
    recorded("instagram", "graph__comment_replies.json")[0],
]


def meta_channel(kind, base_url, **fields):
    raw = {
        "page_id": IG_PAGE if kind == "instagram" else FB_PAGE,
        "page_access_token": "t",
        "app_secret": META_SECRET,
        "verify_token": "v",
        "base_url": base_url,
        "triage": {"auto_ticket": "all"},  # comments open tickets, so that ingesting them is fuzzed too
        **({"ig_user_id": IG_ACCOUNT} if kind == "instagram" else {}),
        **fields,
    }
    config, secrets = clean_channel_config(kind, raw)
    state = {"ig_user_id": IG_ACCOUNT, "username": "ithelp"} if kind == "instagram" else {"page_id": FB_PAGE}
    return Channel.objects.create(kind=kind, name=f"{kind}-fuzz", config=config, secrets=secrets, state=state)


@pytest.fixture(params=["facebook", "instagram"])
def fuzzed_meta_channel(request, db):
    return meta_channel(request.param, "http://127.0.0.1:9/v25.0")  # nothing is fetched: downloads fail fast


@FUZZ
@given(data=st.data())
def test_facebook_and_instagram_webhooks_answer_200_or_a_clear_4xx(
    client, fuzzed_meta_channel, django_capture_on_commit_callbacks, data
):
    seeds = INSTAGRAM_WEBHOOKS if fuzzed_meta_channel.kind == "instagram" else FACEBOOK_WEBHOOKS
    body = json.dumps(data.draw(mutated(seeds))).encode()
    assert_answered_200_or_a_clear_4xx(
        client, django_capture_on_commit_callbacks, fuzzed_meta_channel, body, meta_signature(body, META_SECRET)
    )


#: Each example is a whole poll, five Graph calls over HTTP (about 0.1 s): fewer examples, for each of two kinds.
FUZZ_META_POLLS = settings(FUZZ, max_examples=60)


@FUZZ_META_POLLS
@given(conversations=mutated(CONVERSATION_PAGES), messages=mutated(MESSAGE_PAGES), comments=st.data())
@pytest.mark.parametrize("kind", ["facebook", "instagram"])
def test_facebook_and_instagram_polls_store_what_they_cannot_interpret_as_failed_rows(
    canned_platform, kind, conversations, messages, comments
):
    """The Conversations API's conversations and messages, and the comments on the most recent post or media
    (one, whose id is the recorded comments'), mutated."""
    media = "19292868552_10158407654328553" if kind == "facebook" else IG_COMMENT["media"]["id"]
    seeds = INSTAGRAM_COMMENT_PAGES if kind == "instagram" else FACEBOOK_COMMENT_PAGES
    canned_platform.answer("/conversations", without_paging(conversations))
    canned_platform.answer("/messages", without_paging(messages))
    canned_platform.answer("/posts" if kind == "facebook" else "/media", {"data": [{"id": media}]})
    canned_platform.answer("/comments", without_paging(comments.draw(mutated(seeds))))

    def check():
        channel = meta_channel(kind, canned_platform.url.rstrip("/"), poll_media=1)
        channel.config["import_days"] = 10**4  # the recorded 2020-2021 messages and comments are in the backfill
        channel.save()
        outcome = poll_and_ingest(channel)
        assert not outcome.error
        assert_stored_well()

    rolled_back(check)
