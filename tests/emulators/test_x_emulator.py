"""The X emulator, driven through the real tweepy.Client (no Django needed)."""

import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import time_machine
import tweepy

from emulators.x import EmulatorControlError, XEmulator

ACCOUNT_ID = "9000000000000000001"
BEARER = "x-emulator-bearer"
OAUTH1 = {"consumer_key": "ck", "consumer_secret": "cs", "access_token": "at", "access_token_secret": "ats"}
REPO_ROOT = Path(__file__).resolve().parents[2]
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def redirect(client: tweepy.Client, url: str) -> tweepy.Client:
    """Point tweepy's hard-coded https://api.twitter.com (or api.x.com) at the emulator, as the app does."""

    class RedirectingSession(requests.Session):
        def request(self, method, target, *args, **kwargs):
            for host in ("https://api.twitter.com", "https://api.x.com"):
                if target.startswith(host):
                    target = url + target[len(host) :]
            return super().request(method, target, *args, **kwargs)

    client.session = RedirectingSession()
    client.session.trust_env = False  # loopback never goes through a proxy
    return client


@pytest.fixture(scope="module")
def emulator():
    with XEmulator(
        account_id=ACCOUNT_ID, account_username="ithelp", account_name="IT Help", bearer_token=BEARER, **OAUTH1
    ) as emu:
        yield emu


@pytest.fixture
def bearer(emu):
    """The app's OAuth 2.0 user-context client; every call passes user_auth=False."""
    return redirect(tweepy.Client(bearer_token=BEARER), emu.url)


@pytest.fixture
def raw(emu):
    """Same token, raw JSON answers, for checking exact shapes."""
    return redirect(tweepy.Client(bearer_token=BEARER, return_type=dict), emu.url)


@pytest.fixture
def oauth1(emu):
    return redirect(tweepy.Client(**OAUTH1), emu.url)


@pytest.fixture
def alice(emu):
    return emu.add_user("alice", "Alice A")["id"]


def mentions(client, **params):
    params.setdefault(
        "tweet_fields", ["author_id", "conversation_id", "created_at", "in_reply_to_user_id", "referenced_tweets"]
    )
    return client.get_users_mentions(ACCOUNT_ID, user_auth=False, **params)


# Auth


def test_get_me_with_bearer_and_with_oauth1(bearer, oauth1):
    for response in (bearer.get_me(user_auth=False), oauth1.get_me()):
        assert (response.data.id, response.data.username, response.data.name) == (int(ACCOUNT_ID), "ithelp", "IT Help")


@pytest.mark.parametrize(
    "client",
    [
        tweepy.Client(bearer_token="wrong"),
        tweepy.Client(**{**OAUTH1, "consumer_key": "other"}),
        tweepy.Client(**{**OAUTH1, "access_token": "other"}),
    ],
    ids=["bearer", "consumer_key", "access_token"],
)
def test_wrong_credentials_get_401_problem_json(emu, client):
    redirect(client, emu.url)
    with pytest.raises(tweepy.Unauthorized) as caught:
        client.get_me(user_auth=client.bearer_token is None)
    response = caught.value.response
    assert response.json() == {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
    assert int(response.headers["x-rate-limit-reset"]) > time.time()


def test_revoked_tokens_get_401_until_restored(emu, bearer, oauth1):
    emu.set_tokens(revoked=True)
    with pytest.raises(tweepy.Unauthorized):
        mentions(bearer)
    with pytest.raises(tweepy.Unauthorized):
        oauth1.get_me()
    emu.set_tokens(revoked=False)
    assert mentions(bearer).meta == {"result_count": 0}
    emu.set_tokens(revoked=True, token="at")  # only the OAuth 1.0a access token
    assert bearer.get_me(user_auth=False).data.username == "ithelp"
    with pytest.raises(tweepy.Unauthorized):
        oauth1.get_me()


# Users


def test_user_lookup_hides_suspended_and_unknown_users(emu, raw, alice):
    suspended = emu.add_user("mallory", "Mallory", suspended=True)["id"]
    assert raw.get_user(id=alice) == {"data": {"id": alice, "name": "Alice A", "username": "alice"}}
    answer = raw.get_users(ids=[alice, suspended, "123"])
    assert answer["data"] == [{"id": alice, "name": "Alice A", "username": "alice"}]
    assert [error["resource_id"] for error in answer["errors"]] == [suspended, "123"]
    assert answer["errors"][0] == {
        "value": suspended,
        "detail": f"Could not find user with id: [{suspended}].",
        "title": "Not Found Error",
        "resource_type": "user",
        "parameter": "id",
        "resource_id": suspended,
        "type": "https://api.twitter.com/2/problems/resource-not-found",
    }
    assert "data" not in raw.get_user(id=suspended)
    assert raw.get_user(username="ALICE")["data"]["id"] == alice


# Mentions


def test_mentions_page_newest_first_with_since_id_and_expansions(emu, bearer, alice):
    bob = emu.add_user("bob", "Bob B")["id"]
    account_post = emu.post(ACCOUNT_ID, "Planned maintenance tonight")["id"]
    posted = [emu.post(alice if n % 2 else bob, f"@IThelp printer {n} is down")["id"] for n in range(11)]
    emu.post(alice, "no mention here, and @ithelpdesk is another account")
    reply = emu.post(bob, "will the VPN be up?", in_reply_to_tweet_id=account_post)["id"]  # a reply is a mention
    expected = [*posted, reply]
    assert [int(post_id) for post_id in expected] == sorted(int(post_id) for post_id in expected)

    pages, token = [], None
    while True:
        page = mentions(bearer, max_results=5, expansions="author_id", pagination_token=token)
        pages.append(page)
        token = page.meta.get("next_token")
        if not token:
            break
    assert [page.meta["result_count"] for page in pages] == [5, 5, 2]
    seen = [str(post.id) for page in pages for post in page.data]
    assert seen == expected[::-1]
    first = pages[0]
    assert (first.meta["newest_id"], first.meta["oldest_id"]) == (expected[-1], expected[-5])
    assert {user.username for user in first.includes["users"]} == {"alice", "bob"}

    newest = first.data[0]
    assert newest.text == "will the VPN be up?"
    assert newest.edit_history_tweet_ids == [int(reply)]
    assert newest.author_id == int(bob)
    assert newest.in_reply_to_user_id == int(ACCOUNT_ID)
    assert newest.conversation_id == int(account_post)
    assert newest.referenced_tweets[0].type == "replied_to"
    assert newest.referenced_tweets[0].id == int(account_post)
    assert ISO_MS.match(newest.data["created_at"])

    later = emu.post(alice, "@ithelp still down")["id"]
    since = mentions(bearer, since_id=reply)
    assert [str(post.id) for post in since.data] == [later]
    assert mentions(bearer, since_id=later).meta == {"result_count": 0}
    until = mentions(bearer, until_id=posted[2], max_results=5)
    assert [str(post.id) for post in until.data] == posted[1::-1]
    hour_ago, soon = (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + delta)) for delta in (-3600, 60))
    assert mentions(bearer, start_time=hour_ago, max_results=100).meta["result_count"] == 13
    assert mentions(bearer, start_time=soon).meta == {"result_count": 0}


def test_empty_mentions_have_only_meta(raw):
    assert raw.get_users_mentions(ACCOUNT_ID) == {"meta": {"result_count": 0}}


def test_suspended_author_is_left_out_of_includes(emu, raw, alice):
    mallory = emu.add_user("mallory", "Mallory")["id"]
    emu.post(mallory, "@ithelp hello")
    emu.post(alice, "@ithelp hi")
    emu.add_user(user_id=mallory, suspended=True)
    answer = raw.get_users_mentions(ACCOUNT_ID, expansions="author_id", tweet_fields="author_id")
    assert [post["author_id"] for post in answer["data"]] == [alice, mallory]
    assert answer["includes"]["users"] == [{"id": alice, "name": "Alice A", "username": "alice"}]
    assert [(error["resource_id"], error["parameter"]) for error in answer["errors"]] == [(mallory, "author_id")]


def test_max_results_out_of_range_is_400(bearer):
    for max_results in (4, 101):
        with pytest.raises(tweepy.BadRequest) as caught:
            mentions(bearer, max_results=max_results)
        assert caught.value.response.json()["title"] == "Invalid Request"
        assert f"[{max_results}] is not between 5 and 100" in caught.value.api_messages[0]


def test_long_withheld_and_deleted_mentions(emu, raw, alice):
    long_text = "@ithelp " + "x" * 300
    long_id = emu.post(alice, long_text)["id"]
    withheld_id = emu.post(alice, "@ithelp something only some countries may see")["id"]
    deleted_id = emu.post(alice, "@ithelp oops")["id"]
    emu.withhold_post(withheld_id)
    assert emu.delete_post(deleted_id) is True
    by_id = {post["id"]: post for post in raw.get_users_mentions(ACCOUNT_ID)["data"]}
    assert set(by_id) == {long_id, withheld_id}
    assert by_id[long_id]["text"] == long_text[:280]
    assert by_id[long_id]["note_tweet"] == {"text": long_text}
    assert by_id[withheld_id]["text"] == ""
    assert by_id[withheld_id]["withheld"] == {"copyright": False, "country_codes": ["DE"]}
    assert raw.get_tweet(long_id)["data"]["note_tweet"] == {"text": long_text}
    assert raw.get_tweet(deleted_id)["errors"][0]["title"] == "Not Found Error"


def test_bulk_posts_are_fast_and_only_the_last_800_mentions_are_reachable(emu, bearer, alice):
    started = time.monotonic()
    ids = emu.post_many({"author_id": alice, "text": f"@ithelp ticket {n}"} for n in range(10_000))
    assert time.monotonic() - started < 1.0
    assert len(ids) == 10_000
    assert [int(i) for i in ids] == sorted({int(i) for i in ids})
    reached = [post.id for response in tweepy.Paginator(mentions, bearer, max_results=100) for post in response.data]
    assert reached == [int(post_id) for post_id in ids[-800:][::-1]]


def test_repeated_page_fault_repeats_the_previous_ids_once(emu, bearer, alice):
    ids = [emu.post(alice, f"@ithelp {n}")["id"] for n in range(12)]
    emu.fault("mentions", repeat_ids_once=True)
    first = mentions(bearer, max_results=5)
    repeated = mentions(bearer, max_results=5, pagination_token=first.meta["next_token"])
    assert [post.id for post in repeated.data] == [post.id for post in first.data]
    second = mentions(bearer, max_results=5, pagination_token=repeated.meta["next_token"])
    assert [str(post.id) for post in second.data] == ids[6:1:-1]


# Posting


def test_reply_is_allowed_only_when_the_account_was_summoned(emu, bearer, alice):
    root = emu.post(alice, "Is the wifi down for anyone else?")["id"]
    mention = emu.post(alice, "@ithelp the wifi is down", in_reply_to_tweet_id=root)["id"]
    created = bearer.create_tweet(text="@alice we are on it", in_reply_to_tweet_id=mention, user_auth=False)
    assert created.data["text"] == "@alice we are on it"
    assert created.data["edit_history_tweet_ids"] == [created.data["id"]]
    [stored] = emu.account_posts()
    assert stored["id"] == created.data["id"]
    assert (stored["in_reply_to_tweet_id"], stored["conversation_id"], stored["in_reply_to_user_id"]) == (
        mention,
        root,
        alice,
    )

    with pytest.raises(tweepy.Forbidden) as caught:
        bearer.create_tweet(text="hello", in_reply_to_tweet_id=root, user_auth=False)
    assert caught.value.response.json() == {
        "title": "Forbidden",
        "type": "about:blank",
        "status": 403,
        "detail": "Reply to this post is not allowed because the author has not mentioned or engaged with you.",
    }
    follow_up = emu.post(alice, "any news?", in_reply_to_tweet_id=created.data["id"])["id"]
    with pytest.raises(tweepy.Forbidden):  # a reply to the account that does not @mention it does not summon
        bearer.create_tweet(text="not yet", in_reply_to_tweet_id=follow_up, user_auth=False)
    quote = emu.post(alice, "see this", quote_tweet_id=created.data["id"])["id"]
    bearer.create_tweet(text="thanks for sharing", in_reply_to_tweet_id=quote, user_auth=False)
    assert len(emu.account_posts()) == 2


def test_create_tweet_text_and_target_checks(emu, oauth1):
    url = "https://example.com/" + "a" * 300  # weighs 23, like a t.co link
    assert oauth1.create_tweet(text="x" * 256 + " " + url).data["id"]
    with pytest.raises(tweepy.BadRequest):
        oauth1.create_tweet(text="x" * 281)
    assert oauth1.create_tweet(text="❤️" * 140).data["id"]  # an emoji with its variation selector weighs 2
    with pytest.raises(tweepy.BadRequest):
        oauth1.create_tweet(text="😀" * 141)
    with pytest.raises(tweepy.BadRequest):
        oauth1.create_tweet(text="hi", in_reply_to_tweet_id="1234")


def test_delete_tweet_only_the_accounts_own(emu, oauth1, alice):
    own = oauth1.create_tweet(text="temporary").data["id"]
    assert oauth1.delete_tweet(own).data == {"deleted": True}
    assert emu.account_posts() == []
    other = emu.post(alice, "@ithelp mine")["id"]
    with pytest.raises(tweepy.Forbidden):
        oauth1.delete_tweet(other)


# Direct messages


def test_dm_events_newest_first_paged_with_sender_expansion(emu, bearer, raw, alice):
    received = [emu.dm_from(alice, f"message {n}") for n in range(3)]
    conversation = f"{alice}-{ACCOUNT_ID}" if int(alice) < int(ACCOUNT_ID) else f"{ACCOUNT_ID}-{alice}"
    assert {dm["dm_conversation_id"] for dm in received} == {conversation}
    sent = bearer.create_direct_message(participant_id=alice, text="on it", user_auth=False).data
    assert sent["dm_conversation_id"] == conversation

    params = {
        "dm_event_fields": ["sender_id", "dm_conversation_id", "created_at"],
        "expansions": "sender_id",
        "user_auth": False,
    }
    first = bearer.get_direct_message_events(max_results=3, **params)
    assert [event.text for event in first.data] == ["on it", "message 2", "message 1"]
    assert first.data[0].sender_id == int(ACCOUNT_ID)
    assert first.data[1].sender_id == int(alice)
    assert first.data[0].event_type == "MessageCreate"
    assert first.data[0].dm_conversation_id == conversation
    assert ISO_MS.match(first.data[0].data["created_at"])
    assert {user.username for user in first.includes["users"]} == {"ithelp", "alice"}
    second = bearer.get_direct_message_events(max_results=3, pagination_token=first.meta["next_token"], **params)
    assert [event.text for event in second.data] == ["message 0"]
    assert second.meta == {"result_count": 1}

    plain = raw.get_direct_message_events(max_results=1, user_auth=False)["data"][0]
    assert set(plain) == {"id", "event_type", "text"}  # the other fields only on request


def test_reads_are_billed_once_per_resource_per_utc_day(emu, bearer, alice):
    """As X bills pay-per-use reads: every resource returned is counted, but billed only the first time in a
    UTC day; the expanded users too. Writes are not resources."""
    for n in range(3):
        emu.dm_from(alice, f"message {n}")
    params = {"expansions": "sender_id", "user_auth": False}
    bearer.get_direct_message_events(max_results=2, **params)
    bearer.get_direct_message_events(max_results=3, **params)
    bearer.create_direct_message(participant_id=alice, text="on it", user_auth=False)
    assert emu.billing() == {"returned": {"dm_event": 5, "user": 2}, "billed": {"dm_event": 3, "user": 1}}

    tomorrow = datetime.now(UTC) + timedelta(days=1)
    with time_machine.travel(tomorrow.replace(hour=0, minute=1), tick=False):
        bearer.get_direct_message_events(max_results=2, **params)  # "on it" (the account's) and "message 2"
    assert emu.billing()["billed"] == {"dm_event": 5, "user": 3}


def test_create_direct_message_by_participant_and_conversation(emu, oauth1, alice):
    first = oauth1.create_direct_message(participant_id=alice, text="Hello").data
    second = oauth1.create_direct_message(dm_conversation_id=first["dm_conversation_id"], text="Again").data
    assert second["dm_conversation_id"] == first["dm_conversation_id"]
    assert int(second["dm_event_id"]) > int(first["dm_event_id"])
    assert [(dm["recipient_id"], dm["text"]) for dm in emu.account_dms()] == [(alice, "Hello"), (alice, "Again")]
    with pytest.raises(tweepy.BadRequest):
        oauth1.create_direct_message(participant_id=alice, text="x" * 10_001)
    with pytest.raises(tweepy.Forbidden):
        oauth1.create_direct_message(participant_id="42", text="who?")


def test_the_accounts_own_posts_newest_first_from_a_start_time(emu, oauth1, raw, alice):
    mention = emu.post(alice, "@ithelp help")["id"]
    texts = [f"reply {n}" for n in range(7)]
    for text in texts:
        oauth1.create_tweet(text=text, in_reply_to_tweet_id=mention)
    params = {"tweet_fields": ["conversation_id", "created_at"], "user_auth": False}

    first = raw.get_users_tweets(ACCOUNT_ID, max_results=5, **params)
    assert [post["text"] for post in first["data"]] == texts[:1:-1]
    assert {post["conversation_id"] for post in first["data"]} == {mention}
    second = raw.get_users_tweets(ACCOUNT_ID, max_results=5, pagination_token=first["meta"]["next_token"], **params)
    assert [post["text"] for post in second["data"]] == ["reply 1", "reply 0"]
    assert "next_token" not in second["meta"]
    later = raw.get_users_tweets(ACCOUNT_ID, start_time="2999-01-01T00:00:00Z", **params)
    assert later == {"meta": {"result_count": 0}}
    assert raw.get_users_tweets(alice, **params) == {"meta": {"result_count": 0}}
    assert emu.stats()["calls"]["GET /2/users/:id/tweets"] == 4


def test_dm_events_of_one_conversation_by_id_or_participant(emu, oauth1, raw, alice):
    bob = emu.add_user("bob", "Bob B")["id"]
    emu.dm_from(alice, "from alice")
    emu.dm_from(bob, "from bob")
    conversation = oauth1.create_direct_message(participant_id=alice, text="to alice").data["dm_conversation_id"]
    params = {"dm_event_fields": ["sender_id", "dm_conversation_id", "created_at"], "user_auth": False}

    by_id = raw.get_direct_message_events(dm_conversation_id=conversation, **params)
    assert [event["text"] for event in by_id["data"]] == ["to alice", "from alice"]
    by_participant = raw.get_direct_message_events(participant_id=alice, max_results=1, **params)
    assert [event["text"] for event in by_participant["data"]] == ["to alice"]
    rest = raw.get_direct_message_events(
        participant_id=alice, pagination_token=by_participant["meta"]["next_token"], **params
    )
    assert [event["text"] for event in rest["data"]] == ["from alice"]
    assert emu.stats()["rate_limits"]["dm_conversation_events"]["remaining"] == 12


def test_a_write_can_be_applied_then_answered_late_or_not_at_all(emu, alice):
    impatient = redirect(tweepy.Client(**OAUTH1), emu.url)
    impatient.session.request = _with_timeout(impatient.session.request, 0.3)
    mention = emu.post(alice, "@ithelp help")["id"]
    emu.fault_after_write("create_tweet", delay=1)
    with pytest.raises(requests.ReadTimeout):
        impatient.create_tweet(text="late", in_reply_to_tweet_id=mention)
    emu.fault_after_write("dm_send", reset=True)
    with pytest.raises(requests.ConnectionError):
        impatient.create_direct_message(participant_id=alice, text="lost")
    assert [post["text"] for post in emu.account_posts()] == ["late"]
    assert [dm["text"] for dm in emu.account_dms()] == ["lost"]


def _with_timeout(request, seconds):
    def timed(*args, **kwargs):
        return request(*args, timeout=seconds, **kwargs)

    return timed


# Media

PHOTO = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
MEDIA_FIELDS = ["url", "preview_image_url", "variants", "alt_text", "width", "height"]
VIDEO = {
    "type": "video",
    "preview": b"still",
    "width": 1280,
    "height": 720,
    "variants": [
        {"content": b"playlist", "content_type": "application/x-mpegURL"},
        {"content": b"low", "content_type": "video/mp4", "bit_rate": 256000},
        {"content": b"high", "content_type": "video/mp4", "bit_rate": 2176000},
    ],
}


def test_mention_media_are_expanded_into_includes_and_served(emu, raw, alice):
    posted = emu.post(
        alice,
        "@ithelp see",
        media=[
            {
                "type": "photo",
                "content": PHOTO,
                "content_type": "image/png",
                "alt_text": "Error 0x80070005",
                "width": 640,
            },
            VIDEO,
        ],
    )
    photo_key, video_key = posted["media_keys"]
    assert photo_key.startswith("3_")
    assert video_key.startswith("7_")

    answer = mentions(raw, expansions=["attachments.media_keys"], media_fields=MEDIA_FIELDS)
    assert answer["data"][0]["attachments"] == {"media_keys": [photo_key, video_key]}
    photo, video = answer["includes"]["media"]
    assert photo == {
        "media_key": photo_key,
        "type": "photo",
        "url": photo["url"],
        "alt_text": "Error 0x80070005",
        "width": 640,
    }
    assert photo["url"].startswith(emu.url + "/media/")
    assert photo["url"].endswith(".png")
    assert (video["type"], video["width"], video["height"]) == ("video", 1280, 720)
    assert "url" not in video
    assert [(v["content_type"], v.get("bit_rate")) for v in video["variants"]] == [
        ("application/x-mpegURL", None),
        ("video/mp4", 256000),
        ("video/mp4", 2176000),
    ]

    downloaded = requests.get(photo["url"], timeout=5)  # public media need no credentials, as on pbs.twimg.com
    assert (downloaded.status_code, downloaded.content) == (200, PHOTO)
    assert downloaded.headers["Content-Type"] == "image/png"
    assert "x-rate-limit-reset" in downloaded.headers
    assert requests.get(video["variants"][2]["url"], timeout=5).content == b"high"
    assert requests.get(video["preview_image_url"], timeout=5).content == b"still"

    plain = mentions(raw)
    assert "attachments" not in plain["data"][0]
    assert "includes" not in plain
    keys_only = mentions(raw, expansions=["attachments.media_keys"])["includes"]["media"]
    assert keys_only == [{"media_key": photo_key, "type": "photo"}, {"media_key": video_key, "type": "video"}]


def test_deleted_media_is_missing_from_includes_and_answers_404(emu, raw, alice):
    posted = emu.post(alice, "@ithelp", media=[{"type": "photo", "content": PHOTO}])
    url = mentions(raw, expansions=["attachments.media_keys"], media_fields=["url"])["includes"]["media"][0]["url"]
    assert emu.delete_media(posted["media_keys"][0]) is True
    answer = mentions(raw, expansions=["attachments.media_keys"], media_fields=["url"])
    assert answer["data"][0]["attachments"]["media_keys"] == posted["media_keys"]
    assert "includes" not in answer
    gone = requests.get(url, timeout=5)
    assert gone.status_code == 404
    assert gone.json()["title"] == "Not Found"
    assert "x-rate-limit-limit" in gone.headers


def test_dm_media_are_served_only_to_oauth1_signed_requests(emu, raw, alice):
    sent = emu.dm_from(alice, "", media=[{"type": "photo", "content": PHOTO, "content_type": "image/png"}])
    answer = raw.get_direct_message_events(expansions=["attachments.media_keys"], media_fields=["url"], user_auth=False)
    [event] = answer["data"]
    assert event["attachments"] == {"media_keys": sent["media_keys"]}
    assert event["text"] == ""
    url = answer["includes"]["media"][0]["url"]
    assert url.startswith(emu.url + f"/1.1/ton/data/dm/{sent['dm_event_id']}/")
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, headers={"Authorization": f"Bearer {BEARER}"}, timeout=5).status_code == 401
    signed = requests.get(url, auth=tweepy.OAuth1UserHandler(*OAUTH1.values()).apply_auth(), timeout=5)
    assert (signed.status_code, signed.content) == (200, PHOTO)
    with pytest.raises(EmulatorControlError):
        emu.dm_from(alice, "two", media=[{"type": "photo", "content": PHOTO}] * 2)  # a DM carries one item


def test_media_downloads_answer_faults_and_limits_like_the_api(emu, alice):
    url = (
        emu.url
        + "/media/"
        + emu.post(alice, "@ithelp", media=[{"type": "photo", "content": PHOTO}])["media_keys"][0].partition("_")[2]
        + ".jpg"
    )
    emu.fault("media", status=429)
    limited = requests.get(url, timeout=5)
    assert limited.status_code == 429
    assert limited.json()["title"] == "Too Many Requests"
    assert limited.headers["x-rate-limit-remaining"] == "0"
    assert int(limited.headers["x-rate-limit-reset"]) > time.time()
    emu.set_rate_limit("media", limit=1, window_seconds=60)
    assert requests.get(url, timeout=5).status_code == 200
    assert requests.get(url, timeout=5).status_code == 429
    assert emu.stats()["calls"]["GET media"] == 3


# Rate limits, faults, stats


def test_exhausted_window_raises_too_many_requests_with_reset(emu, bearer):
    emu.set_rate_limit("mentions", limit=2, window_seconds=60)
    first = mentions(bearer)
    assert first.meta == {"result_count": 0}
    mentions(bearer)
    with pytest.raises(tweepy.TooManyRequests) as caught:
        mentions(bearer)
    headers = caught.value.response.headers
    assert headers["x-rate-limit-limit"] == "2"
    assert headers["x-rate-limit-remaining"] == "0"
    assert time.time() < int(headers["x-rate-limit-reset"]) <= time.time() + 61
    assert caught.value.reset_time == int(headers["x-rate-limit-reset"])
    assert caught.value.response.json() == {
        "title": "Too Many Requests",
        "type": "about:blank",
        "status": 429,
        "detail": "Too Many Requests",
    }
    assert bearer.get_me(user_auth=False).data  # other endpoints have their own windows
    assert emu.stats()["calls"]["GET /2/users/:id/mentions"] == 3


def test_default_windows_and_headers_on_every_answer(emu, bearer):
    session = bearer.session
    auth = {"Authorization": f"Bearer {BEARER}"}
    for path, limit in [
        ("/2/users/me", "75"),
        ("/2/dm_events", "15"),
        (f"/2/users/{ACCOUNT_ID}/mentions", "300"),
        ("/2/nowhere", "300"),
    ]:
        response = session.get(emu.url + path, headers=auth)
        assert response.headers["x-rate-limit-limit"] == limit, path
        assert int(response.headers["x-rate-limit-reset"]) > time.time()
    assert response.status_code == 404
    assert response.json()["title"] == "Not Found"
    sent = session.post(emu.url + "/2/tweets", json={"text": "hi"}, headers=auth)
    assert sent.status_code == 201
    assert sent.headers["x-rate-limit-limit"] == "100"
    assert sent.headers["x-rate-limit-remaining"] == "99"


def test_injected_faults_then_recovery(emu, bearer):
    emu.fault("mentions", status=503, count=2)
    for _ in range(2):
        with pytest.raises(tweepy.TwitterServerError):
            mentions(bearer)
    assert mentions(bearer).meta == {"result_count": 0}
    emu.fault("dm_send", status=401)
    with pytest.raises(tweepy.Unauthorized):
        bearer.create_direct_message(participant_id="1", text="x", user_auth=False)
    with pytest.raises(EmulatorControlError) as caught:
        emu.fault("nonsense", status=500)
    assert caught.value.status == 400


# CLI


def test_cli_serves_until_terminated():
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.x", "--port", "0", "--account-username", "desk"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = re.search(r"url=(\S+)", process.stdout.readline()).group(1)
        client = redirect(tweepy.Client(bearer_token=BEARER), url)
        assert client.get_me(user_auth=False).data.username == "desk"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
