"""Files in the Slack emulator: files[] on messages, url_private downloads, and the real
slack_sdk files_upload_v2 flow (getUploadURLExternal → POST upload_url → completeUploadExternal)."""

import json
import urllib.error

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from emulators.slack import EmulatorControlError, SlackEmulator

BOT_TOKEN = "xoxb-test"
CHANNEL = "C0GENERAL"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


@pytest.fixture(scope="module")
def emulator():
    with SlackEmulator(bot_token=BOT_TOKEN) as emu:
        yield emu


@pytest.fixture
def slack(emu):
    return WebClient(token=BOT_TOKEN, base_url=emu.base_url)


def post_with_file(emu, text="see the screenshot", **extra):
    return emu.post(
        CHANNEL, "U0ANN", text, files=[{"name": "screen.png", "content": PNG, "mimetype": "image/png"}], **extra
    )


def test_a_person_shares_a_file_and_history_lists_it(emu, slack):
    ts = post_with_file(emu)["ts"]
    [message] = slack.conversations_history(channel=CHANNEL)["messages"]
    assert message["ts"] == ts
    assert message["subtype"] == "file_share"
    assert message["text"] == "see the screenshot"
    [file] = message["files"]
    assert file["id"].startswith("F")
    assert file["name"] == "screen.png"
    assert file["mimetype"] == "image/png"
    assert file["size"] == len(PNG)
    assert file["mode"] == "hosted"
    assert file["url_private"].startswith(emu.url + "/files-pri/T0EMU-")
    assert file["url_private_download"].startswith(emu.url + "/files-pri/T0EMU-")


def test_files_in_thread_replies_and_with_no_text(emu, slack):
    parent = emu.post(CHANNEL, "U0ANN", "printer broken")["ts"]
    post_with_file(emu, text="", thread_ts=parent)
    replies = slack.conversations_replies(channel=CHANNEL, ts=parent)["messages"]
    assert replies[1]["text"] == ""
    assert replies[1]["files"][0]["name"] == "screen.png"


def test_url_private_needs_the_bearer_token(emu):
    url = post_with_file(emu)["files"][0]["url_private"]
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer xoxb-wrong"}, timeout=5).status_code == 403
    emu.set_token("xoxb-revoked", revoked=True)
    assert requests.get(url, headers={"Authorization": "Bearer xoxb-revoked"}, timeout=5).status_code == 403
    response = requests.get(url, headers={"Authorization": f"Bearer {BOT_TOKEN}"}, timeout=5)
    assert response.status_code == 200
    assert response.content == PNG
    assert response.headers["Content-Type"] == "image/png"
    missing = url.replace("-F", "-FNOPE")
    assert requests.get(missing, headers={"Authorization": f"Bearer {BOT_TOKEN}"}, timeout=5).status_code == 404


def test_files_upload_v2_into_a_thread(emu, slack):
    parent = emu.post(CHANNEL, "U0ANN", "printer broken")["ts"]
    response = slack.files_upload_v2(
        channel=CHANNEL,
        thread_ts=parent,
        file=b"log line\n",
        filename="log.txt",
        title="log.txt",
        initial_comment="Here is the log",
    )
    assert response["file"]["name"] == "log.txt"
    assert response["file"]["id"].startswith("F")
    [reply] = slack.conversations_replies(channel=CHANNEL, ts=parent)["messages"][1:]
    assert reply["text"] == "Here is the log"
    assert reply["bot_id"]
    assert reply["files"][0]["id"] == response["file"]["id"]
    download = requests.get(
        reply["files"][0]["url_private"], headers={"Authorization": f"Bearer {BOT_TOKEN}"}, timeout=5
    )
    assert download.content == b"log line\n"
    calls = emu.stats()["calls"]
    assert calls["files.getUploadURLExternal"] == 1
    assert calls["upload"] == 1
    assert calls["files.completeUploadExternal"] == 1


def test_upload_steps_refuse_what_slack_refuses(emu, slack):
    with pytest.raises(SlackApiError) as refused:
        slack.api_call("files.getUploadURLExternal", params={"filename": "x.txt"})
    assert refused.value.response["error"] == "invalid_arguments"
    started = slack.files_getUploadURLExternal(filename="x.txt", length=3)
    # Completing before the bytes arrived, or a file nobody started, is file_not_found.
    for file_id in (started["file_id"], "FNOPE"):
        with pytest.raises(SlackApiError) as refused:
            slack.files_completeUploadExternal(files=[{"id": file_id}], channel_id=CHANNEL)
        assert refused.value.response["error"] == "file_not_found"
    assert requests.post(started["upload_url"], data=b"abc", timeout=5).text == "OK - 3"
    with pytest.raises(SlackApiError) as refused:
        slack.files_completeUploadExternal(files=[{"id": started["file_id"]}], channel_id="CNOPE")
    assert refused.value.response["error"] == "channel_not_found"
    with pytest.raises(SlackApiError) as refused:
        slack.api_call("files.completeUploadExternal", params={"files": "not json", "channel_id": CHANNEL})
    assert refused.value.response["error"] == "invalid_arguments"
    # A refused completion used nothing up; a second completion of the same file is refused.
    assert slack.files_completeUploadExternal(files=[{"id": started["file_id"]}], channel_id=CHANNEL)["ok"]
    with pytest.raises(SlackApiError):
        slack.files_completeUploadExternal(files=[{"id": started["file_id"]}], channel_id=CHANNEL)
    assert requests.post(started["upload_url"], data=b"again", timeout=5).status_code == 404


def test_the_upload_url_takes_multipart_too(emu, slack):
    started = slack.files_getUploadURLExternal(filename="a.csv", length=4)
    response = requests.post(started["upload_url"], files={"file": ("a.csv", b"a,b\n")}, timeout=5)
    assert response.status_code == 200
    [file] = slack.files_completeUploadExternal(files=[{"id": started["file_id"], "title": "A"}], channel_id=CHANNEL)[
        "files"
    ]
    assert file["title"] == "A"
    assert file["size"] == 4


def test_upload_faults_reach_the_client(emu, slack):
    emu.fault("upload", status=500)
    with pytest.raises(urllib.error.HTTPError) as refused:  # slack_sdk posts the bytes with plain urllib
        slack.files_upload_v2(channel=CHANNEL, file=b"x", filename="x.txt")
    assert refused.value.code == 500
    emu.fault("files.completeUploadExternal", status=503)
    with pytest.raises(SlackApiError):
        slack.files_upload_v2(channel=CHANNEL, file=b"x", filename="x.txt")
    assert not [m for m in emu.messages(CHANNEL) if m.get("files")]


def test_control_api_refuses_bad_files(emu):
    with pytest.raises(EmulatorControlError, match="base64"):
        emu._call(
            "POST",
            "messages",
            {"channel": CHANNEL, "user": "U0ANN", "text": "x", "files": [{"name": "a", "content_base64": "!!"}]},
        )
    assert json.dumps(emu.messages(CHANNEL)) == "[]"
