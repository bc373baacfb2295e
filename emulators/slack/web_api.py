"""Slack Web API methods (https://api.slack.com/methods) on top of the workspace.

Each method takes the request parameters as strings or JSON values and returns
the response body; failures raise SlackError and become {"ok": false, "error"}.
"""

import json
from collections.abc import Callable

from .workspace import (
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    MAX_TEXT_CHARS,
    TEAM_NAME,
    TEAM_URL,
    SlackError,
    Workspace,
    ts_to_micros,
)

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999


def is_truthy(value) -> bool:
    """Slack booleans arrive as true/1 (JSON) or "true"/"1" (form fields)."""
    return str(value).lower() in ("1", "true")


def _page_size(params: dict) -> int:
    raw = params.get("limit")
    if raw in (None, ""):
        return DEFAULT_PAGE_SIZE
    try:
        limit = int(raw)
    except (TypeError, ValueError) as exc:
        raise SlackError("invalid_limit") from exc
    return min(limit, MAX_PAGE_SIZE) if limit > 0 else DEFAULT_PAGE_SIZE


def _ts_bound(params: dict, name: str) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return ts_to_micros(raw)
    except ValueError as exc:
        raise SlackError(f"invalid_ts_{name}") from exc


def _required(params: dict, name: str, error: str) -> str:
    value = params.get(name)
    if value in (None, ""):
        raise SlackError(error)
    return str(value)


def _page_response(messages: list[dict], next_cursor: str | None) -> dict:
    response = {"ok": True, "messages": messages, "has_more": next_cursor is not None, "pin_count": 0}
    # Real Slack leaves response_metadata out on the last page.
    if next_cursor:
        response["response_metadata"] = {"next_cursor": next_cursor}
    return response


class WebApi:
    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self._methods: dict[str, Callable[[dict], dict]] = {
            "auth.test": self.auth_test,
            "users.info": self.users_info,
            "conversations.info": self.conversations_info,
            "conversations.history": self.conversations_history,
            "conversations.replies": self.conversations_replies,
            "chat.postMessage": self.chat_post_message,
            "files.getUploadURLExternal": self.files_get_upload_url_external,
            "files.completeUploadExternal": self.files_complete_upload_external,
        }

    def knows(self, method: str) -> bool:
        return method in self._methods

    def call(self, method: str, params: dict) -> dict:
        return self._methods[method](params)

    def auth_test(self, params: dict) -> dict:
        return {
            "ok": True,
            "url": TEAM_URL,
            "team": TEAM_NAME,
            "user": BOT_NAME,
            "team_id": self.workspace.team_id,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def users_info(self, params: dict) -> dict:
        return {"ok": True, "user": self.workspace.user_info(_required(params, "user", "user_not_found"))}

    def conversations_info(self, params: dict) -> dict:
        channel = _required(params, "channel", "channel_not_found")
        return {"ok": True, "channel": self.workspace.conversation_info(channel)}

    def conversations_history(self, params: dict) -> dict:
        messages, next_cursor = self.workspace.history(
            _required(params, "channel", "channel_not_found"),
            oldest=_ts_bound(params, "oldest"),
            latest=_ts_bound(params, "latest"),
            inclusive=is_truthy(params.get("inclusive")),
            limit=_page_size(params),
            cursor=params.get("cursor") or None,
            with_metadata=is_truthy(params.get("include_all_metadata")),
        )
        return _page_response(messages, next_cursor)

    def conversations_replies(self, params: dict) -> dict:
        messages, next_cursor = self.workspace.replies(
            _required(params, "channel", "channel_not_found"),
            _required(params, "ts", "thread_not_found"),
            oldest=_ts_bound(params, "oldest"),
            latest=_ts_bound(params, "latest"),
            inclusive=is_truthy(params.get("inclusive")),
            limit=_page_size(params),
            cursor=params.get("cursor") or None,
            with_metadata=is_truthy(params.get("include_all_metadata")),
        )
        return _page_response(messages, next_cursor)

    def chat_post_message(self, params: dict) -> dict:
        channel = _required(params, "channel", "channel_not_found")
        text = params.get("text") or ""
        blocks = params.get("blocks")
        if not text and not blocks:
            raise SlackError("no_text")
        if len(text) > MAX_TEXT_CHARS:
            raise SlackError("msg_too_long")
        message, _ = self.workspace.post(
            channel,
            BOT_USER_ID,
            text,
            thread_ts=params.get("thread_ts") or None,
            broadcast=is_truthy(params.get("reply_broadcast")),
            as_bot=True,
            blocks=_decode_blocks(blocks),
            metadata=_decode_metadata(params.get("metadata")),
        )
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}

    def files_get_upload_url_external(self, params: dict) -> dict:
        filename = params.get("filename")
        try:
            length = int(params.get("length"))
        except (TypeError, ValueError):
            length = -1
        if not filename or length < 0:
            raise SlackError("invalid_arguments")
        return {"ok": True, **self.workspace.start_upload(str(filename), length)}

    def files_complete_upload_external(self, params: dict) -> dict:
        files = params.get("files")
        if isinstance(files, str):
            try:
                files = json.loads(files)
            except ValueError as exc:
                raise SlackError("invalid_arguments") from exc
        if not files or not isinstance(files, list) or not all(isinstance(f, dict) and f.get("id") for f in files):
            raise SlackError("invalid_arguments")
        channel = params.get("channel_id") or (str(params.get("channels") or "").split(",")[0] or None)
        completed = self.workspace.complete_upload(
            files, channel, str(params.get("initial_comment") or ""), params.get("thread_ts") or None
        )
        return {"ok": True, "files": completed}


def _decode_metadata(metadata) -> dict | None:
    """Message metadata: {"event_type": str, "event_payload": object}, as JSON (JSON bodies) or a JSON string."""
    if metadata in (None, ""):
        return None
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError as exc:
            raise SlackError("invalid_metadata_format") from exc
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("event_type"), str)
        or not isinstance(metadata.get("event_payload"), dict)
    ):
        raise SlackError("invalid_metadata_schema")
    return {"event_type": metadata["event_type"], "event_payload": metadata["event_payload"]}


def _decode_blocks(blocks) -> list | None:
    """blocks arrive as a JSON array (JSON bodies) or a JSON-encoded string (form bodies)."""
    if blocks in (None, ""):
        return None
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError as exc:
            raise SlackError("invalid_blocks") from exc
    if not isinstance(blocks, list):
        raise SlackError("invalid_blocks")
    return blocks
