"""The Meta emulator, driven through the Graph client the adapters use (channel_adapters.meta.graph.Graph) and a
stand-in for the helpdesk's webhook URL. Shapes are checked against the recorded payloads in
/work/shared/fixtures/meta (same keys, same JSON types)."""

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from channel_adapters.base import CredentialsError, OutcomeUnknown, RateLimited, TransientError
from channel_adapters.meta.graph import Graph, GraphError, verify_signature
from emulators.meta import EmulatorControlError, MetaEmulator

FIXTURES = Path("/work/shared/fixtures/meta")
REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE, IG, PHONE, WABA = "1001", "2002", "3003", "4004"
SECRET, VERIFY = "s3cret", "v3rify"
FAST_RETRIES = (0.05, 0.1)
DAY = 24 * 3600


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def shape(value):
    """The JSON types of a value, keys kept: what "same shape" compares."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__


def drop_keys(value, *names):
    """The fixture without keys the emulator leaves out on purpose (deprecated or newer optional fields)."""
    if isinstance(value, dict):
        return {key: drop_keys(item, *names) for key, item in value.items() if key not in names}
    if isinstance(value, list):
        return [drop_keys(item, *names) for item in value]
    return value


class Helpdesk:
    """A stand-in for the helpdesk's webhook URL: answers the GET handshake with the verify token, records
    POSTs (headers, raw body) and answers them as scripted: (status, delay) per request, then 200."""

    def __init__(self, verify_token: str = VERIFY):
        self.verify_token = verify_token
        self.posts: list[tuple[dict, bytes]] = []
        self.script: list[tuple[int, float]] = []
        self._arrived = threading.Condition()
        helpdesk = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                ok = params.get("hub.mode") == "subscribe" and params.get("hub.verify_token") == helpdesk.verify_token
                self._answer(200 if ok else 403, params.get("hub.challenge", "").encode() if ok else b"no")

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with helpdesk._arrived:
                    status, delay = helpdesk.script.pop(0) if helpdesk.script else (200, 0)
                    helpdesk.posts.append((dict(self.headers), body))
                    helpdesk._arrived.notify_all()
                time.sleep(delay)
                self._answer(status, b"ok")

            def _answer(self, status, data):
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the emulator gave up waiting
                    pass

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/meta"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        with self._arrived:
            assert self._arrived.wait_for(lambda: len(self.posts) >= count, timeout), self.bodies()
        return self.bodies()

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.posts]

    def close(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def emulator():
    with MetaEmulator(webhook_retry_delays=FAST_RETRIES, webhook_timeout=1.0) as emu:
        yield emu


@pytest.fixture
def helpdesk():
    app = Helpdesk()
    yield app
    app.close()


@pytest.fixture
def meta(emu, helpdesk):
    """A Page with a linked Instagram account and a WhatsApp number, all pushing to the helpdesk; no receipts
    unless a test switches them on (they would interleave with the pushes a test counts)."""
    emu.add_page(PAGE, token="page-token", app_secret=SECRET, verify_token=VERIFY, webhook_url=helpdesk.url)
    emu.add_instagram(PAGE, IG, username="ithelp", verify_token=VERIFY, webhook_url=helpdesk.url)
    emu.add_whatsapp(
        PHONE, WABA, "15550001111", token="wa-token", app_secret=SECRET, verify_token=VERIFY, webhook_url=helpdesk.url
    )
    emu.set_receipts(enabled=False)
    return emu


@pytest.fixture
def page_graph(meta):
    return Graph(base_url=meta.base_url, token="page-token", timeout=5, product="Facebook")


@pytest.fixture
def wa_graph(meta):
    return Graph(base_url=meta.base_url, token="wa-token", timeout=5, product="WhatsApp")


def raw_graph(emu, verb, path, token="page-token", **kwargs):
    """A Graph call without the client's error mapping: (status, body, headers)."""
    response = requests.request(
        verb, f"{emu.base_url}/{path}", headers={"Authorization": f"Bearer {token}"}, timeout=5, **kwargs
    )
    return response.status_code, response.json(), response.headers


def graph_error(emu, verb, path, token="page-token", **kwargs) -> dict:
    status, body, _ = raw_graph(emu, verb, path, token, **kwargs)
    assert status >= 400, body
    return body["error"]


# -- accounts and the handshake ---------------------------------------------------------------------------------


def test_registering_a_webhook_url_runs_the_hub_challenge_handshake(emu, helpdesk):
    page = emu.add_page(PAGE, verify_token=VERIFY, webhook_url=helpdesk.url)
    assert page["handshake"]["passed"] is True
    assert page["webhook_url"] == helpdesk.url

    wrong = emu.add_whatsapp(PHONE, WABA, verify_token="not-the-helpdesks", webhook_url=helpdesk.url)
    assert wrong["handshake"]["passed"] is False
    assert wrong["handshake"]["status"] == 403
    assert wrong["webhook_url"] is None  # like the App Dashboard, a URL that fails the handshake is not saved

    assert emu.set_webhook(PHONE, "http://127.0.0.1:9/nothing")["handshake"]["error"]
    assert emu.set_webhook(PHONE, helpdesk.url, handshake=False)["url"] == helpdesk.url


def test_get_id_answers_for_each_account_kind(page_graph, wa_graph):
    assert page_graph.get(PAGE) == {"name": "IT Help", "id": PAGE}
    assert page_graph.get(PAGE, {"fields": "instagram_business_account"}) == {
        "instagram_business_account": {"id": IG},
        "id": PAGE,
    }
    assert page_graph.get(IG, {"fields": "id,username"}) == {"id": IG, "username": "ithelp"}
    number = wa_graph.get(PHONE)
    assert number["display_phone_number"] == "15550001111"
    assert number["verified_name"] == "IT Help"
    assert wa_graph.get(WABA)["id"] == WABA


def test_a_person_who_wrote_has_a_profile_for_the_accounts_token_only(meta, page_graph, wa_graph):
    """Meta's User Profile API (Messenger ``GET /{PSID}``, Instagram ``GET /{IGSID}``): a webhook carries no name,
    so the helpdesk asks for it."""
    psid = meta.dm(PAGE, "hi", name="Ann Employee")["sender_id"]
    igsid = meta.dm(IG, "hi", name="Maya Patel", username="maya.dev")["sender_id"]
    assert page_graph.get(psid, {"fields": "name"}) == {"name": "Ann Employee", "id": psid}
    assert page_graph.get(psid, {"fields": "first_name,last_name"}) == {
        "first_name": "Ann",
        "last_name": "Employee",
        "id": psid,
    }
    assert page_graph.get(igsid, {"fields": "name,username"}) == {
        "name": "Maya Patel",
        "username": "maya.dev",
        "id": igsid,
    }
    error = graph_error(meta, "GET", psid, token="wa-token")  # another account's token
    assert (error["code"], error["error_subcode"]) == (100, 33)


def test_tokens_unknown_foreign_and_missing(meta, page_graph):
    with pytest.raises(CredentialsError, match="190"):
        Graph(base_url=meta.base_url, token="nope").get(PAGE)
    error = graph_error(meta, "GET", PHONE, token="page-token")  # a real token, not this number's
    assert (error["code"], error["error_subcode"]) == (100, 33)
    status, body, _ = raw_graph(meta, "GET", PAGE, token="")
    assert (status, body["error"]["code"]) == (400, 104)
    error = graph_error(meta, "GET", "999999")
    assert (error["code"], error["error_subcode"], error["type"]) == (100, 33, "GraphMethodException")


def test_error_bodies_have_graphs_shape(meta):
    recorded = fixture("messenger/error__invalid_token_190.json")
    _, body, _ = raw_graph(meta, "GET", PAGE, token="nope")
    assert shape(body) == shape(drop_keys(recorded, "error_subcode"))  # subcode only when Meta gives one
    error = graph_error(meta, "GET", "1001/nonsense")
    assert error["code"] == 100
    assert set(error) == {"message", "type", "code", "fbtrace_id"}


# -- Messenger and Instagram DMs -------------------------------------------------------------------------------


def test_a_dm_is_pushed_signed_and_shaped_like_the_recorded_messenger_webhook(meta, helpdesk):
    sent = meta.dm(PAGE, "my laptop won't boot", name="Ann")
    helpdesk.wait_for(1)
    headers, raw = helpdesk.posts[0]
    body = json.loads(raw)
    assert shape(body) == shape(drop_keys(fixture("messenger/webhook__text.json"), "seq"))
    event = body["entry"][0]["messaging"][0]
    assert body["object"] == "page"
    assert body["entry"][0]["id"] == PAGE
    assert event["sender"]["id"] == sent["sender_id"]
    assert event["recipient"]["id"] == PAGE
    assert event["message"] == {"mid": sent["mid"], "text": "my laptop won't boot"}
    expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature-256"] == expected
    verify_signature(SECRET, headers, raw)  # what the adapters check


def test_instagram_dms_go_to_the_instagram_account(meta, helpdesk):
    sent = meta.dm(IG, "hi from insta", username="maya")
    body = helpdesk.wait_for(1)[0]
    assert body["object"] == "instagram"
    assert body["entry"][0]["id"] == IG
    assert body["entry"][0]["messaging"][0]["message"]["mid"] == sent["mid"]
    assert isinstance(body["entry"][0]["messaging"][0]["timestamp"], int)  # ms, unlike the Chatwoot fixtures


def test_dm_attachments_are_served_at_their_payload_url(meta, helpdesk):
    meta.dm(PAGE, attachments=[{"content": b"PNGDATA", "mime_type": "image/png", "filename": "shot.png"}])
    message = helpdesk.wait_for(1)[0]["entry"][0]["messaging"][0]["message"]
    assert (
        shape(message)
        == shape(drop_keys(fixture("messenger/webhook__image_two_attachments.json"), "seq"))["entry"][0]["messaging"][
            0
        ]["message"]
    )
    url = message["attachments"][0]["payload"]["url"]
    assert message["attachments"][0]["type"] == "image"
    assert requests.get(url, timeout=5).content == b"PNGDATA"  # public, like Meta's signed CDN URLs


def test_send_api_replies_within_24_hours(meta, page_graph):
    person = meta.dm(PAGE, "help", name="Ann")["sender_id"]
    answer = page_graph.post(
        f"{PAGE}/messages",
        json_body={"recipient": {"id": person}, "messaging_type": "RESPONSE", "message": {"text": "On it"}},
    )
    assert shape(answer) == shape(fixture("messenger/send__response.json"))
    assert answer["recipient_id"] == person
    [sent] = meta.sent(PAGE)
    assert (sent["kind"], sent["id"], sent["text"], sent["recipient_id"]) == (
        "dm",
        answer["message_id"],
        "On it",
        person,
    )


def test_send_api_enforces_the_24_hour_and_human_agent_windows(meta, page_graph):
    two_days_ago = time.time() - 2 * DAY
    person = meta.dm(PAGE, "old", name="Ann", at=two_days_ago)["sender_id"]
    reply = {"recipient": {"id": person}, "messaging_type": "RESPONSE", "message": {"text": "late"}}
    with pytest.raises(GraphError) as refused:
        page_graph.post(f"{PAGE}/messages", json_body=reply)
    assert (refused.value.code, refused.value.subcode) == (10, 2018278)
    tagged = {**reply, "messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    assert page_graph.post(f"{PAGE}/messages", json_body=tagged)["recipient_id"] == person

    stale = meta.dm(PAGE, "ancient", name="Bo", at=time.time() - 8 * DAY)["sender_id"]
    with pytest.raises(GraphError) as refused:
        page_graph.post(f"{PAGE}/messages", json_body={**tagged, "recipient": {"id": stale}})
    assert (refused.value.code, refused.value.subcode) == (10, 2018278)


def test_human_agent_needs_the_permission(emu, helpdesk):
    emu.add_page(PAGE, token="page-token", human_agent=False)
    person = emu.dm(PAGE, "old", name="Ann", at=time.time() - 2 * DAY)["sender_id"]
    error = graph_error(
        emu,
        "POST",
        f"{PAGE}/messages",
        json={
            "recipient": {"id": person},
            "messaging_type": "MESSAGE_TAG",
            "tag": "HUMAN_AGENT",
            "message": {"text": "x"},
        },
    )
    assert error["code"] == 200


def test_instagram_replies_go_through_the_page_with_instagrams_limits(meta, page_graph):
    person = meta.dm(IG, "hi", username="maya")["sender_id"]
    answer = page_graph.post(f"{PAGE}/messages", json_body={"recipient": {"id": person}, "message": {"text": "hey"}})
    assert meta.sent(IG)[0]["id"] == answer["message_id"]
    with pytest.raises(GraphError) as refused:
        page_graph.post(f"{PAGE}/messages", json_body={"recipient": {"id": person}, "message": {"text": "x" * 1001}})
    assert refused.value.code == 100
    old = meta.dm(IG, "old", username="leo", at=time.time() - 2 * DAY)["sender_id"]
    with pytest.raises(GraphError) as refused:
        page_graph.post(f"{PAGE}/messages", json_body={"recipient": {"id": old}, "message": {"text": "late"}})
    assert (refused.value.code, refused.value.subcode) == (10, 2534022)


def test_send_api_form_posts_and_unknown_recipients(meta, page_graph):
    person = meta.dm(PAGE, "help", name="Ann")["sender_id"]
    form = {"recipient": json.dumps({"id": person}), "message": json.dumps({"text": "form"})}
    assert page_graph.post(f"{PAGE}/messages", data=form)["recipient_id"] == person
    with pytest.raises(GraphError) as refused:
        page_graph.post(f"{PAGE}/messages", json_body={"recipient": {"id": "404"}, "message": {"text": "x"}})
    assert (refused.value.code, refused.value.subcode) == (100, 2018001)
    with pytest.raises(GraphError):
        page_graph.post(f"{PAGE}/messages", json_body={"recipient": {"id": person}, "message": {"text": "x" * 2001}})


def test_conversations_and_messages_page_newest_first(meta, page_graph):
    base = time.time() - 3600
    people = [meta.dm(PAGE, f"hello {n}", name=f"P{n}", at=base + n)["sender_id"] for n in range(30)]
    conversations = [
        c
        for page in page_graph.pages(
            f"{PAGE}/conversations", {"platform": "messenger", "fields": "id,updated_time,participants", "limit": 25}
        )
        for c in page
    ]
    assert len(conversations) == 30
    assert [c["participants"]["data"][0]["id"] for c in conversations] == people[::-1]
    assert all(set(c) == {"id", "updated_time", "participants"} for c in conversations)

    for n in range(3):
        meta.dm(PAGE, f"more {n}", sender_id=people[0], at=base + 100 + n)
    page_graph.post(f"{PAGE}/messages", json_body={"recipient": {"id": people[0]}, "message": {"text": "answer"}})
    [conversation] = page_graph.get(f"{PAGE}/conversations", {"platform": "messenger", "user_id": people[0]})["data"]
    first = page_graph.get(
        f"{conversation['id']}/messages", {"fields": "id,message,from,to,created_time,attachments", "limit": 2}
    )
    assert [m["message"] for m in first["data"]] == ["answer", "more 2"]
    assert first["data"][0]["from"]["id"] == PAGE
    recorded = fixture("messenger/graph__message.json")
    assert shape(first["data"][1]) == shape({k: recorded[k] for k in ("id", "message", "from", "to", "created_time")})
    rest = requests.get(first["paging"]["next"], headers={"Authorization": "Bearer page-token"}, timeout=5).json()
    assert [m["message"] for m in rest["data"]] == ["more 1", "more 0"]
    assert "next" in rest["paging"]


def test_instagram_conversations_through_the_page(meta, page_graph):
    person = meta.dm(IG, "hi", username="maya")["sender_id"]
    meta.dm(PAGE, "messenger one", name="Ann")
    [conversation] = page_graph.get(f"{PAGE}/conversations", {"platform": "instagram", "fields": "participants"})[
        "data"
    ]
    assert conversation["participants"]["data"][0] == {"username": "maya", "id": person}


def test_a_dropped_push_is_found_by_a_poll(meta, helpdesk, page_graph):
    assert meta.drop_webhooks(1) == 1
    lost = meta.dm(PAGE, "lost", name="Ann")
    kept = meta.dm(PAGE, "kept", name="Bo")
    bodies = helpdesk.wait_for(1)
    assert meta.wait_for_webhooks(5)
    assert [b["entry"][0]["messaging"][0]["message"]["mid"] for b in bodies] == [kept["mid"]]
    outcomes = [p["outcome"] for p in meta.webhooks()["pushes"]]
    assert outcomes == ["dropped", "delivered"]
    [conversation] = page_graph.get(f"{PAGE}/conversations", {"user_id": lost["sender_id"]})["data"]
    messages = page_graph.get(f"{conversation['id']}/messages", {"fields": "id,message"})["data"]
    assert messages == [{"id": lost["mid"], "message": "lost"}]


# -- comments --------------------------------------------------------------------------------------------------


def test_a_page_comment_is_pushed_like_the_recorded_feed_change(meta, helpdesk):
    post = meta.add_post(PAGE, "Outage update")["id"]
    top = meta.comment(PAGE, post, "Still down?", name="Ann")
    reply = meta.comment(PAGE, post, "Same here", name="Bo", parent_id=top["comment_id"])
    first, second = helpdesk.wait_for(2)
    change = first["entry"][0]["changes"][0]
    assert shape(change) == shape(fixture("facebook/change__feed_comment_add.json"))
    assert first["object"] == "page"
    assert change["value"]["comment_id"] == top["comment_id"]
    assert change["value"]["post_id"] == post
    assert change["value"]["parent_id"] == post  # a top-level comment's parent is the post
    assert second["entry"][0]["changes"][0]["value"]["parent_id"] == top["comment_id"]
    assert reply["parent_id"] == top["comment_id"]
    deeper = meta.comment(PAGE, post, "me too", name="Cy", parent_id=reply["comment_id"])
    assert deeper["parent_id"] == top["comment_id"]  # Facebook keeps comments two levels deep


def test_an_instagram_comment_has_from_and_media(meta, helpdesk):
    media = meta.add_post(IG, "new office")["id"]
    comment = meta.comment(IG, media, "where is it?", username="maya")
    body = helpdesk.wait_for(1)[0]
    change = body["entry"][0]["changes"][0]
    recorded = fixture("instagram/change__comments_dashboard_test.json")
    assert change["field"] == recorded["field"]
    assert set(recorded["value"]) <= set(change["value"])
    assert change["value"] == {
        "from": {"id": comment["sender_id"], "username": "maya"},
        "media": {"id": media, "media_product_type": "FEED"},
        "id": comment["comment_id"],
        "text": "where is it?",
    }
    assert body["object"] == "instagram"
    assert body["entry"][0]["id"] == IG


def test_comment_reads_and_public_replies(meta, page_graph):
    post = meta.add_post(PAGE, "Outage update")["id"]
    top = meta.comment(PAGE, post, "Still down?", name="Ann")["comment_id"]
    answer = page_graph.post(f"{top}/comments", data={"message": "Back at 5"})
    assert meta.sent(PAGE)[0]["kind"] == "comment_reply"
    posts = page_graph.get(f"{PAGE}/posts", {"fields": "id,created_time"})["data"]
    assert [p["id"] for p in posts] == [post]
    fields = "id,message,from,created_time,parent{id},attachment"
    stream = page_graph.get(
        f"{post}/comments", {"fields": fields, "filter": "stream", "order": "reverse_chronological"}
    )
    assert [c["id"] for c in stream["data"]] == [answer["id"], top]
    assert stream["data"][0]["parent"] == {"id": top}
    assert stream["data"][0]["from"]["id"] == PAGE
    assert "parent" not in stream["data"][1]
    recorded = fixture("facebook/graph__comment.json")
    assert shape(stream["data"][1]) == shape({k: recorded[k] for k in ("id", "message", "from", "created_time")})
    toplevel = page_graph.get(f"{post}/comments")["data"]
    assert [c["id"] for c in toplevel] == [top]
    with pytest.raises(GraphError) as refused:
        page_graph.post(f"{top}/comments", data={"message": "x" * 8001})
    assert refused.value.code == 100


def test_instagram_comment_reads_and_replies(meta, page_graph):
    media = meta.add_post(IG, "new office")["id"]
    top = meta.comment(IG, media, "where?", username="maya")["comment_id"]
    reply = page_graph.post(f"{top}/replies", data={"message": "Floor 3"})
    fields = "id,text,timestamp,from{id,username},username,parent_id,replies{id,text,timestamp,from,username}"
    [comment] = page_graph.get(f"{media}/comments", {"fields": fields})["data"]
    assert comment["from"]["username"] == "maya"
    assert [r["id"] for r in comment["replies"]["data"]] == [reply["id"]]
    assert page_graph.get(f"{top}/replies")["data"][0]["text"] == "Floor 3"
    assert [m["id"] for m in page_graph.get(f"{IG}/media", {"fields": "id,timestamp"})["data"]] == [media]
    recorded = fixture("instagram/graph__media_comments_page1.json")["data"][0]
    assert shape(page_graph.get(f"{media}/comments")["data"][0]) == shape(recorded)
    with pytest.raises(GraphError):  # the Facebook edge on an Instagram comment
        page_graph.post(f"{top}/comments", data={"message": "no"})


def test_a_private_reply_is_allowed_once_within_7_days(meta, page_graph):
    post = meta.add_post(PAGE, "Outage update")["id"]
    comment = meta.comment(PAGE, post, "I need help", name="Ann")
    answer = page_graph.post(
        f"{PAGE}/messages",
        json_body={"recipient": {"comment_id": comment["comment_id"]}, "message": {"text": "Let's talk here"}},
    )
    assert answer["recipient_id"] == comment["sender_id"]
    assert meta.sent(PAGE)[0]["kind"] == "private_reply"
    with pytest.raises(GraphError) as refused:
        page_graph.post(
            f"{PAGE}/messages",
            json_body={"recipient": {"comment_id": comment["comment_id"]}, "message": {"text": "again"}},
        )
    assert refused.value.code == 10
    # The reply opened no window: only the person's answer does.
    with pytest.raises(GraphError):
        page_graph.post(
            f"{PAGE}/messages", json_body={"recipient": {"id": comment["sender_id"]}, "message": {"text": "x"}}
        )
    meta.dm(PAGE, "ok", sender_id=comment["sender_id"])
    page_graph.post(f"{PAGE}/messages", json_body={"recipient": {"id": comment["sender_id"]}, "message": {"text": "x"}})

    old = meta.comment(PAGE, post, "last week", name="Bo", at=time.time() - 8 * DAY)
    with pytest.raises(GraphError) as refused:
        page_graph.post(
            f"{PAGE}/messages", json_body={"recipient": {"comment_id": old["comment_id"]}, "message": {"text": "late"}}
        )
    assert (refused.value.code, refused.value.subcode) == (10, 2018278)
    ig_media = meta.add_post(IG, "pic")["id"]
    ig_comment = meta.comment(IG, ig_media, "dm me", username="maya")
    page_graph.post(
        f"{PAGE}/messages", json_body={"recipient": {"comment_id": ig_comment["comment_id"]}, "message": {"text": "hi"}}
    )
    assert meta.sent(IG)[0]["kind"] == "private_reply"


# -- WhatsApp --------------------------------------------------------------------------------------------------


def test_a_whatsapp_text_is_pushed_like_the_recorded_webhook(meta, helpdesk):
    sent = meta.whatsapp(PHONE, "Body Text", wa_id="15551234567", name="Test Name")
    body = helpdesk.wait_for(1)[0]
    recorded = drop_keys(fixture("whatsapp/webhook__text.json"), "user_id", "parent_user_id")
    assert shape(body) == shape(recorded)
    value = body["entry"][0]["changes"][0]["value"]
    assert body["entry"][0]["id"] == WABA
    assert value["metadata"] == {"display_phone_number": "15550001111", "phone_number_id": PHONE}
    assert value["contacts"] == [{"profile": {"name": "Test Name"}, "wa_id": "15551234567"}]
    assert value["messages"][0]["id"] == sent["wamid"]
    assert value["messages"][0]["text"] == {"body": "Body Text"}


@pytest.mark.parametrize(
    ("kwargs", "recorded"),
    [
        ({"type": "image", "mime_type": "image/jpeg"}, "webhook__image.json"),
        ({"type": "audio", "voice": True}, "webhook__voice.json"),
        ({"type": "document", "filename": "filename.pdf", "caption": "caption"}, "webhook__document_forwarded.json"),
    ],
)
def test_whatsapp_media_is_pushed_and_downloadable_with_the_token(meta, helpdesk, wa_graph, kwargs, recorded):
    sent = meta.whatsapp(PHONE, wa_id="15551234567", content=b"media bytes", **kwargs)
    message = helpdesk.wait_for(1)[0]["entry"][0]["changes"][0]["value"]["messages"][0]
    expected = fixture(f"whatsapp/{recorded}")["entry"][0]["changes"][0]["value"]["messages"][0]
    assert shape(message) == shape(drop_keys(expected, "context"))
    media = wa_graph.get(sent["media_id"])
    assert set(fixture("whatsapp/media__url_response.json")) <= set(media)
    assert media["sha256"] == message[kwargs["type"]]["sha256"]
    assert media["file_size"] == len(b"media bytes")
    assert requests.get(media["url"], timeout=5).status_code == 401
    download = requests.get(media["url"], headers={"Authorization": "Bearer wa-token"}, timeout=5)
    assert download.content == b"media bytes"
    assert Graph(base_url=meta.base_url, token="wa-token").stream(media["url"]).content == b"media bytes"


def test_whatsapp_send_window_and_templates(meta, wa_graph):
    meta.whatsapp(PHONE, "hi", wa_id="15551234567")
    message = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+1 555 123 4567",
        "type": "text",
        "text": {"body": "Hello"},
        "context": {"message_id": "wamid.x"},
    }
    answer = wa_graph.post(f"{PHONE}/messages", json_body=message)
    assert shape(answer) == shape(fixture("whatsapp/send__response.json"))
    assert answer["contacts"][0]["wa_id"] == "15551234567"
    [sent] = meta.sent(PHONE)
    assert (sent["id"], sent["text"], sent["context_id"]) == (answer["messages"][0]["id"], "Hello", "wamid.x")

    meta.whatsapp(PHONE, "old", wa_id="15559990000", at=time.time() - 25 * 3600)
    with pytest.raises(GraphError) as refused:
        wa_graph.post(f"{PHONE}/messages", json_body={**message, "to": "15559990000"})
    assert refused.value.code == 131047
    meta.add_template(WABA, "ticket_update", "Your ticket {{1}} was updated: {{2}}")
    template = {
        "messaging_product": "whatsapp",
        "to": "15559990000",
        "type": "template",
        "template": {
            "name": "ticket_update",
            "language": {"code": "en_US"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "#42"}, {"type": "text", "text": "fixed"}]}
            ],
        },
    }
    wa_graph.post(f"{PHONE}/messages", json_body=template)
    assert meta.sent(PHONE)[-1]["text"] == "Your ticket #42 was updated: fixed"
    template["template"]["components"][0]["parameters"].pop()
    with pytest.raises(GraphError) as refused:
        wa_graph.post(f"{PHONE}/messages", json_body=template)
    assert refused.value.code == 132000
    template["template"]["name"] = "nope"
    with pytest.raises(GraphError) as refused:
        wa_graph.post(f"{PHONE}/messages", json_body=template)
    assert refused.value.code == 132001
    with pytest.raises(GraphError):
        wa_graph.post(f"{PHONE}/messages", json_body={**message, "to": "15551234567", "text": {"body": "x" * 4097}})


def test_whatsapp_media_upload_and_send(meta, wa_graph):
    meta.whatsapp(PHONE, "hi", wa_id="15551234567")
    upload = wa_graph.post(
        f"{PHONE}/media",
        data={"messaging_product": "whatsapp", "type": "image/png"},
        files={"file": ("a.png", b"PNG", "image/png")},
    )
    assert set(upload) == set(fixture("whatsapp/media__upload_response.json"))
    image = {"messaging_product": "whatsapp", "to": "15551234567", "type": "image", "image": {"id": upload["id"]}}
    wa_graph.post(f"{PHONE}/messages", json_body=image)
    assert meta.sent(PHONE)[0]["content"] == {"id": upload["id"]}
    with pytest.raises(GraphError):
        wa_graph.post(f"{PHONE}/messages", json_body={**image, "image": {"id": "404"}})


def test_message_templates_are_listed_and_paged(meta, wa_graph):
    for n in range(3):
        meta.add_template(WABA, f"t{n}", f"Body {n} {{{{1}}}}")
    meta.add_template(WABA, "draft", "x", status="PENDING")
    pages = list(wa_graph.pages(f"{WABA}/message_templates", {"status": "APPROVED", "limit": 2}))
    assert [[t["name"] for t in page] for page in pages] == [["t0", "t1"], ["t2"]]
    assert pages[0][0]["components"] == [{"type": "BODY", "text": "Body 0 {{1}}"}]
    assert pages[0][0]["language"] == "en_US"


# -- usage headers, control ------------------------------------------------------------------------------------


def test_every_answer_carries_usage_headers(meta):
    for token, path in (("page-token", PAGE), ("nope", PAGE), ("wa-token", PHONE)):
        _, _, headers = raw_graph(meta, "GET", path, token=token)
        assert set(json.loads(headers["X-App-Usage"])) == {"call_count", "total_cputime", "total_time"}
    _, _, headers = raw_graph(meta, "GET", PAGE)
    [usage] = json.loads(headers["X-Business-Use-Case-Usage"])[PAGE]
    assert usage["type"] == "pages"
    assert usage["estimated_time_to_regain_access"] == 0


def test_reset_forgets_everything(meta, page_graph):
    meta.dm(PAGE, "x", name="Ann")
    meta.reset()
    assert meta.accounts() == []
    assert meta.sent() == []
    with pytest.raises(CredentialsError):
        page_graph.get(PAGE)


def test_bad_control_requests_are_refused(meta):
    with pytest.raises(EmulatorControlError) as refused:
        meta.dm("404", "x")
    assert refused.value.status == 404
    with pytest.raises(EmulatorControlError):
        meta.dm(PAGE, "")
    with pytest.raises(EmulatorControlError):
        meta.add_page(PAGE)  # exists
    with pytest.raises(EmulatorControlError):
        meta.unsend_dm(PAGE, "m_nothing")


def test_cli_serves_until_terminated():
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.meta", "--port", "0", "--page-id", "77"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = process.stdout.readline()
        base_url = banner.split("base_url=")[1].split()[0]
        assert Graph(base_url=base_url, token="page-token-77").get("77")["id"] == "77"
    finally:
        process.terminate()
    assert process.wait(timeout=5) == 0


# -- receipts after a business send ----------------------------------------------------------------------------


def test_a_messenger_reply_is_followed_by_delivery_and_read(meta, helpdesk, page_graph):
    meta.set_receipts(enabled=True, delivered_delay=0.01, read_delay=0.02)
    person = meta.dm(PAGE, "help", name="Ann")["sender_id"]
    mid = page_graph.post(f"{PAGE}/messages", json_body={"recipient": {"id": person}, "message": {"text": "ok"}})[
        "message_id"
    ]
    _, delivery, read = helpdesk.wait_for(3)
    assert shape(delivery) == shape(drop_keys(fixture("messenger/webhook__delivery.json"), "seq"))
    assert shape(read) == shape(drop_keys(fixture("messenger/webhook__read.json"), "seq"))
    delivered = delivery["entry"][0]["messaging"][0]
    assert delivered["sender"]["id"] == person
    assert delivered["delivery"]["mids"] == [mid]
    assert read["entry"][0]["messaging"][0]["read"]["watermark"] == delivered["delivery"]["watermark"]


def test_an_instagram_reply_is_followed_by_a_read_naming_the_message(meta, helpdesk, page_graph):
    meta.set_receipts(enabled=True, read_delay=0.01)
    person = meta.dm(IG, "hi", username="maya")["sender_id"]
    mid = page_graph.post(f"{PAGE}/messages", json_body={"recipient": {"id": person}, "message": {"text": "ok"}})[
        "message_id"
    ]
    _, read = helpdesk.wait_for(2)
    event = read["entry"][0]["messaging"][0]
    assert set(event) == set(fixture("instagram/webhook__messaging_seen.json")["entry"][0]["messaging"][0])
    assert event["read"] == {"mid": mid}
    assert read["object"] == "instagram"


def test_a_whatsapp_send_is_followed_by_sent_delivered_and_read(meta, helpdesk, wa_graph):
    meta.set_receipts(enabled=True, sent_delay=0, delivered_delay=0.01, read_delay=0.02)
    meta.whatsapp(PHONE, "hi", wa_id="15551234567", name="Test Name")
    text = {"messaging_product": "whatsapp", "to": "15551234567", "type": "text", "text": {"body": "ok"}}
    wamid = wa_graph.post(f"{PHONE}/messages", json_body=text)["messages"][0]["id"]
    bodies = helpdesk.wait_for(4)[1:]
    statuses = [body["entry"][0]["changes"][0]["value"]["statuses"][0] for body in bodies]
    assert [(s["id"], s["status"]) for s in statuses] == [(wamid, "sent"), (wamid, "delivered"), (wamid, "read")]
    for body, name in zip(bodies, ("sent", "delivered", "read"), strict=True):
        assert shape(body) == shape(drop_keys(fixture(f"whatsapp/status__{name}.json"), "user_id", "parent_user_id"))


def test_a_whatsapp_send_armed_to_fail_reports_failed_with_the_error(meta, helpdesk, wa_graph):
    meta.whatsapp(PHONE, "hi", wa_id="15551234567")
    meta.fail_next_whatsapp(PHONE, code=131026)
    text = {"messaging_product": "whatsapp", "to": "15551234567", "type": "text", "text": {"body": "ok"}}
    wamid = wa_graph.post(f"{PHONE}/messages", json_body=text)["messages"][0]["id"]  # accepted first
    failed = helpdesk.wait_for(2)[1]
    recorded = drop_keys(fixture("whatsapp/status__failed.json"), "user_id", "parent_user_id")
    assert shape(failed) == shape(recorded)
    [status] = failed["entry"][0]["changes"][0]["value"]["statuses"]
    assert (status["id"], status["status"], status["errors"][0]["code"]) == (wamid, "failed", 131026)
    wa_graph.post(f"{PHONE}/messages", json_body=text)  # the next one is not armed: no receipts, no failure
    assert meta.wait_for_webhooks(5)
    assert len(helpdesk.posts) == 2
    with pytest.raises(EmulatorControlError):
        meta.fail_next_whatsapp(PHONE, code=1)


def test_receipts_can_be_switched_off(meta, helpdesk, page_graph):
    person = meta.dm(PAGE, "help", name="Ann")["sender_id"]
    page_graph.post(f"{PAGE}/messages", json_body={"recipient": {"id": person}, "message": {"text": "ok"}})
    assert meta.wait_for_webhooks(5)
    assert len(helpdesk.posts) == 1  # the DM only


# -- reactions, edits, unsends ---------------------------------------------------------------------------------


def test_messenger_reactions_and_edits(meta, helpdesk, page_graph):
    sent = meta.dm(PAGE, "helo", name="Ann")
    reply = page_graph.post(
        f"{PAGE}/messages", json_body={"recipient": {"id": sent["sender_id"]}, "message": {"text": "hi"}}
    )
    meta.react(PAGE, reply["message_id"], sent["sender_id"], emoji="❤️")
    meta.react(PAGE, reply["message_id"], sent["sender_id"], emoji="❤️", remove=True)
    assert meta.edit_dm(PAGE, sent["mid"], "hello")["num_edit"] == 1
    _, react, unreact, edit = (body["entry"][0]["messaging"][0] for body in helpdesk.wait_for(4))
    assert shape(react) == shape(fixture("messenger/event__reaction_react.json"))
    assert (react["reaction"]["action"], react["reaction"]["mid"]) == ("react", reply["message_id"])
    assert unreact["reaction"]["action"] == "unreact"
    assert set(edit) == {"sender", "recipient", "timestamp", "message_edit"}
    assert edit["message_edit"] == {"mid": sent["mid"], "text": "hello", "num_edit": 1}
    messages = page_graph.get(f"{sent['conversation_id']}/messages", {"fields": "message"})["data"]
    assert messages[-1]["message"] == "hello"
    with pytest.raises(EmulatorControlError):
        meta.unsend_dm(PAGE, sent["mid"])  # Messenger tells a business nothing about unsent messages


def test_an_instagram_unsend_is_pushed_and_hides_the_message(meta, helpdesk, page_graph):
    sent = meta.dm(IG, "oops", username="maya")
    meta.unsend_dm(IG, sent["mid"])
    unsent = helpdesk.wait_for(2)[1]["entry"][0]["messaging"][0]
    recorded = fixture("instagram/webhook__unsend_is_deleted.json")["entry"][0]["messaging"][0]
    assert set(unsent) == set(recorded)
    assert unsent["message"] == {"mid": sent["mid"], "is_deleted": True}
    assert page_graph.get(f"{sent['conversation_id']}/messages")["data"] == []


def test_page_comment_edits_and_removals(meta, helpdesk, page_graph):
    post = meta.add_post(PAGE, "news")["id"]
    comment = meta.comment(PAGE, post, "Great", name="Ann")["comment_id"]
    meta.edit_comment(PAGE, comment, "Great!")
    meta.remove_comment(PAGE, comment)
    _, edited, removed = (body["entry"][0]["changes"][0] for body in helpdesk.wait_for(3))
    assert shape(edited) == shape(fixture("facebook/change__feed_comment_edited.json"))
    assert shape(removed) == shape(fixture("facebook/change__feed_comment_remove.json"))
    assert (edited["value"]["verb"], edited["value"]["message"]) == ("edited", "Great!")
    assert removed["value"]["verb"] == "remove"
    assert page_graph.get(f"{post}/comments")["data"] == []


def test_whatsapp_reactions_edits_and_revokes(meta, helpdesk, wa_graph):
    first = meta.whatsapp(PHONE, "helo", wa_id="15551234567")
    text = {"messaging_product": "whatsapp", "to": "15551234567", "type": "text", "text": {"body": "hi"}}
    ours = wa_graph.post(f"{PHONE}/messages", json_body=text)["messages"][0]["id"]
    meta.whatsapp_react(PHONE, "15551234567", ours, "👍")
    meta.whatsapp_react(PHONE, "15551234567", ours, "")
    meta.whatsapp_edit(PHONE, "15551234567", first["wamid"], "hello")
    meta.whatsapp_revoke(PHONE, "15551234567", first["wamid"])
    bodies = helpdesk.wait_for(5)[1:]
    react, unreact, edit, revoke = (b["entry"][0]["changes"][0]["value"]["messages"][0] for b in bodies)
    messages = {
        name: fixture(f"whatsapp/webhook__{name}.json")["entry"][0]["changes"][0]["value"]["messages"][0]
        for name in ("reaction", "reaction_removed", "edit_image_caption", "revoke_deleted")
    }
    assert shape(react) == shape(messages["reaction"])
    assert react["reaction"] == {"message_id": ours, "emoji": "👍"}
    assert unreact["reaction"] == {"message_id": ours, "emoji": ""}
    assert set(edit) == set(messages["edit_image_caption"])
    assert edit["edit"]["original_message_id"] == first["wamid"]
    assert edit["edit"]["message"] == {"type": "text", "text": {"body": "hello"}}
    assert shape(revoke) == shape(messages["revoke_deleted"])
    assert revoke["revoke"] == {"original_message_id": first["wamid"]}
    with pytest.raises(EmulatorControlError):
        meta.whatsapp_edit(PHONE, "15551234567", ours, "people edit only their own")


# -- usage, throttling, tokens ---------------------------------------------------------------------------------


def test_usage_headers_count_calls_in_a_sliding_window(meta, page_graph):
    meta.set_budget("app", 4, window_seconds=0.5)
    seen = []
    for _ in range(4):
        _, _, headers = raw_graph(meta, "GET", PAGE)
        seen.append(json.loads(headers["X-App-Usage"])["call_count"])
    assert seen == [25, 50, 75, 100]
    with pytest.raises(RateLimited) as throttled:
        page_graph.get(PAGE)
    assert "(#4)" in str(throttled.value)
    assert 0 < throttled.value.retry_after <= 1
    time.sleep(0.55)  # the window slides past the four calls
    assert page_graph.get(PAGE)["id"] == PAGE
    _, _, headers = raw_graph(meta, "GET", PAGE)
    assert json.loads(headers["X-App-Usage"])["call_count"] == 50


@pytest.mark.parametrize(
    ("scope", "path", "token", "code"),
    [
        (PAGE, PAGE, "page-token", 80001),
        (IG, IG, "page-token", 80002),
        (WABA, PHONE, "wa-token", 80007),
        ("conversations", f"{PAGE}/conversations", "page-token", 613),
    ],
)
def test_a_spent_budget_throttles_with_the_scopes_code(meta, scope, path, token, code):
    meta.set_budget(scope, 1, window_seconds=60)
    assert raw_graph(meta, "GET", path, token=token)[0] == 200
    status, body, headers = raw_graph(meta, "GET", path, token=token)
    assert (status, body["error"]["code"], body["error"]["is_transient"]) == (400, code, True)
    if code != 613:
        [usage] = json.loads(headers["X-Business-Use-Case-Usage"])[scope]
        assert usage["call_count"] == 100
        assert usage["estimated_time_to_regain_access"] == 1  # minutes, rounded up
    with pytest.raises(RateLimited):
        Graph(base_url=meta.base_url, token=token).get(path)


def test_pinned_usage_makes_a_poll_back_off_then_throttles(meta, page_graph):
    meta.set_usage(PAGE, 95)
    page_graph.get(f"{PAGE}/conversations")
    assert page_graph.usage == 95
    meta.set_usage(PAGE, 100, regain_minutes=7)
    with pytest.raises(RateLimited) as throttled:
        page_graph.get(PAGE)
    assert throttled.value.retry_after == 7 * 60
    meta.set_usage(PAGE, None)
    assert page_graph.get(PAGE)["id"] == PAGE
    assert meta.usage()["scopes"]["app"]["calls"] >= 2


def test_a_revoked_or_expired_token_answers_190(meta, page_graph, wa_graph):
    meta.revoke_token("page-token")
    with pytest.raises(CredentialsError, match="re-authorize"):
        page_graph.get(PAGE)
    assert graph_error(meta, "GET", PAGE)["error_subcode"] == 460
    meta.revoke_token("wa-token", expired=True)
    status, body, _ = raw_graph(meta, "GET", PHONE, token="wa-token")
    assert (status, body["error"]["code"], body["error"]["error_subcode"]) == (401, 190, 463)
    meta.restore_token("page-token")
    assert page_graph.get(PAGE)["id"] == PAGE


# -- push retries ----------------------------------------------------------------------------------------------


def test_a_push_answered_non_2xx_is_retried_with_the_same_signed_bytes(meta, helpdesk):
    helpdesk.script = [(500, 0), (503, 0)]
    meta.dm(PAGE, "help", name="Ann")
    helpdesk.wait_for(3)
    assert meta.wait_for_webhooks(5)
    assert len({body for _, body in helpdesk.posts}) == 1
    assert len({headers["X-Hub-Signature-256"] for headers, _ in helpdesk.posts}) == 1
    [push] = meta.webhooks()["pushes"]
    assert (push["attempts"], push["outcome"]) == (3, "delivered")
    assert [a["status"] for a in meta.webhooks()["attempts"]] == [500, 503, 200]


def test_a_slow_helpdesk_times_out_and_is_retried_then_given_up(meta, helpdesk):
    meta.configure_webhooks(timeout=0.2)
    helpdesk.script = [(200, 0.4)] * 3  # slower than the timeout, every time
    meta.dm(PAGE, "help", name="Ann")
    assert meta.wait_for_webhooks(5)
    [push] = meta.webhooks()["pushes"]
    assert (push["attempts"], push["outcome"]) == (3, "failed")  # the first try and two retries
    assert {a.get("error") for a in meta.webhooks()["attempts"]} == {"timeout"}


def test_an_unreachable_helpdesk_is_retried_without_holding_back_later_pushes(meta, helpdesk):
    meta.set_webhook(PHONE, "http://127.0.0.1:9/gone", handshake=False)
    meta.whatsapp(PHONE, "lost", wa_id="15551234567")
    meta.dm(PAGE, "arrives", name="Ann")
    assert helpdesk.wait_for(1)[0]["object"] == "page"
    assert meta.wait_for_webhooks(5)
    outcomes = {p["account_id"]: p["outcome"] for p in meta.webhooks()["pushes"]}
    assert outcomes == {PHONE: "failed", PAGE: "delivered"}
    assert {a["error"] for a in meta.webhooks(PHONE)["attempts"]} == {"connection_failed"}


# -- faults and storms -----------------------------------------------------------------------------------------


def test_armed_faults_and_writes_answered_late_or_not_at_all(meta, page_graph):
    person = meta.dm(PAGE, "help", name="Ann")["sender_id"]
    reply = {"recipient": {"id": person}, "message": {"text": "ok"}}
    meta.fault("send", status=503)
    with pytest.raises(TransientError):
        page_graph.post(f"{PAGE}/messages", json_body=reply)
    assert meta.sent() == []
    meta.fault_after_write("send", reset=True)
    with pytest.raises(OutcomeUnknown):
        page_graph.post(f"{PAGE}/messages", json_body=reply)
    assert len(meta.sent()) == 1  # applied, though never answered
    with pytest.raises(EmulatorControlError):
        meta.fault("nonsense")
    assert meta.stats()["calls"]["POST send"] == 2


def test_a_storm_strikes_graph_calls_like_meta_outages_and_throttling(meta, page_graph):
    meta.start_storm(rate=1.0, kinds=["5xx"], keys=["conversations"])
    with pytest.raises(TransientError):
        page_graph.get(f"{PAGE}/conversations")
    assert page_graph.get(PAGE)["id"] == PAGE  # not in the storm's keys
    meta.start_storm(rate=1.0, kinds=["429"], keys=["conversations"], retry_after=3)
    with pytest.raises(RateLimited) as throttled:
        page_graph.get(f"{PAGE}/conversations")
    assert throttled.value.retry_after == 3
    assert meta.stop_storm()["hits"] == {"429": 1}
    assert page_graph.get(f"{PAGE}/conversations")["data"] == []


def test_any_recorded_body_can_be_pushed_signed(meta, helpdesk):
    recorded = fixture("whatsapp/webhook__unsupported.json")
    meta.push_raw(PHONE, recorded)
    helpdesk.wait_for(1)
    headers, raw = helpdesk.posts[0]
    assert json.loads(raw) == recorded
    verify_signature(SECRET, headers, raw)
    with pytest.raises(EmulatorControlError):
        meta.push_raw("404", recorded)
