"""In-memory state of the emulated Slack workspace.

One team, one bot user, users, conversations and their messages. Every public
method takes the workspace lock and returns plain dicts (copies rendered under
the lock), so callers never see half-applied changes.
"""

import base64
import bisect
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .files import UPLOAD_PREFIX, FileStore, SlackFile

BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
BOT_NAME = "helpdesk"
APP_ID = "A0EMU"
SEED_CHANNEL_ID = "C0GENERAL"
SEED_CHANNEL_NAME = "it-help"
TEAM_NAME = "Emulator"
TEAM_URL = "https://emulator.slack.com/"
# Slack attributes tombstones of deleted thread parents to Slackbot.
SLACKBOT_USER_ID = "USLACKBOT"
TOMBSTONE_TEXT = "This message was deleted."
MAX_TEXT_CHARS = 40_000

MICROS_PER_SECOND = 1_000_000
CURSOR_PREFIX = "next_ts:"


class SlackError(Exception):
    """A failure Slack reports as HTTP 200 with {"ok": false, "error": code}."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def ts_to_micros(ts) -> int:
    """Parse a Slack ts ("1512085950.000216", "1512085950", 1512085950.5) to integer microseconds."""
    seconds, _, fraction = str(ts).strip().partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError(f"not a Slack ts: {ts!r}")
    return int(seconds) * MICROS_PER_SECOND + int(fraction[:6].ljust(6, "0"))


def micros_to_ts(micros: int) -> str:
    seconds, fraction = divmod(micros, MICROS_PER_SECOND)
    return f"{seconds}.{fraction:06d}"


def encode_cursor(micros: int) -> str:
    # Same scheme as real Slack cursors: base64("next_ts:<ts without the dot>").
    return base64.b64encode(f"{CURSOR_PREFIX}{micros}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        decoded = base64.b64decode(cursor.encode(), validate=True).decode()
    except ValueError as exc:
        raise SlackError("invalid_cursor") from exc
    position = decoded.removeprefix(CURSOR_PREFIX)
    if position == decoded or not position.isdigit():
        raise SlackError("invalid_cursor")
    return int(position)


def channel_type(channel_id: str) -> str:
    """Slack's channel_type from the id prefix (D = DM, G = private/multi-party)."""
    return {"D": "im", "G": "group"}.get(channel_id[:1], "channel")


class TsClock:
    """Strictly increasing message timestamps.

    Wall-clock microseconds, bumped by one whenever two messages would collide,
    so the order is total even for bulk inserts of thousands of messages.
    """

    def __init__(self):
        self._last_micros = 0

    def next(self) -> str:
        self._last_micros = max(time.time_ns() // 1000, self._last_micros + 1)
        return micros_to_ts(self._last_micros)


@dataclass
class User:
    id: str
    name: str
    real_name: str = ""
    email: str | None = None
    is_bot: bool = False

    def render(self, team_id: str) -> dict:
        avatar = f"https://emulator.slack.com/avatars/{self.id}"
        profile = {
            "avatar_hash": self.id.lower(),
            "display_name": self.name,
            "display_name_normalized": self.name,
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "status_emoji": "",
            "status_text": "",
            "team": team_id,
            **{f"image_{size}": f"{avatar}_{size}.png" for size in (24, 32, 48, 72, 192, 512)},
            "image_original": f"{avatar}.png",
        }
        if self.email:
            profile["email"] = self.email
        if self.id == BOT_USER_ID:
            profile["bot_id"] = BOT_ID
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": False,
            "color": "9f69e7",
            "real_name": self.real_name,
            "tz": "Etc/UTC",
            "tz_label": "Coordinated Universal Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "has_2fa": False,
            "updated": 0,
        }


@dataclass
class Message:
    ts: str
    user: str
    text: str
    thread_ts: str | None = None  # set on replies only (a parent's thread info is derived)
    parent_user_id: str | None = None
    subtype: str | None = None
    bot_id: str | None = None
    broadcast: bool = False
    edited: dict | None = None
    blocks: list | None = None
    client_msg_id: str | None = None
    files: list[dict] | None = None  # rendered when shared: a shared file does not change
    metadata: dict | None = None  # {"event_type", "event_payload"}: shown only to include_all_metadata reads
    key: int = field(init=False)  # ts as integer microseconds, for ordering and range queries

    def __post_init__(self):
        self.key = ts_to_micros(self.ts)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None


def _message_key(message: Message) -> int:
    return message.key


class Conversation:
    """A channel: its channel-visible timeline and its threads, both ordered by ts."""

    def __init__(self, channel_id: str, name: str, team_id: str):
        self.id = channel_id
        self.name = name
        self.team_id = team_id
        self.created = int(time.time())
        self.timeline: list[Message] = []  # top-level messages and broadcast replies
        self.threads: dict[str, list[Message]] = {}  # parent ts -> replies
        self.by_ts: dict[str, Message] = {}

    def add(self, message: Message) -> None:
        # Timestamps come from one workspace clock under the workspace lock, so
        # appending keeps both lists sorted.
        self.by_ts[message.ts] = message
        if message.is_reply:
            self.threads.setdefault(message.thread_ts, []).append(message)
        if not message.is_reply or message.broadcast:
            self.timeline.append(message)

    def remove(self, message: Message) -> None:
        del self.by_ts[message.ts]
        if message.is_reply:
            _remove_sorted(self.threads[message.thread_ts], message)
        if not message.is_reply or message.broadcast:
            _remove_sorted(self.timeline, message)

    def render(self, message: Message, with_metadata: bool = False) -> dict:
        rendered = {"type": "message"}
        if message.subtype:
            rendered["subtype"] = message.subtype
        rendered.update(user=message.user, text=message.text, ts=message.ts)
        if message.subtype == "tombstone":
            rendered["hidden"] = True
        else:
            rendered["team"] = self.team_id
        if message.client_msg_id:
            rendered["client_msg_id"] = message.client_msg_id
        if message.bot_id:
            rendered.update(
                bot_id=message.bot_id,
                app_id=APP_ID,
                bot_profile={"id": message.bot_id, "name": BOT_NAME, "app_id": APP_ID, "team_id": self.team_id},
            )
        if message.blocks is not None:
            rendered["blocks"] = message.blocks
        if message.files:
            rendered["files"] = [dict(file) for file in message.files]
            rendered["upload"] = True
        if message.edited:
            rendered["edited"] = dict(message.edited)
        if with_metadata and message.metadata:
            rendered["metadata"] = {**message.metadata, "event_payload": dict(message.metadata["event_payload"])}
        if message.is_reply:
            rendered.update(thread_ts=message.thread_ts, parent_user_id=message.parent_user_id)
        replies = self.threads.get(message.ts)
        if replies:
            reply_users = list(dict.fromkeys(reply.user for reply in replies))
            rendered.update(
                thread_ts=message.ts,
                reply_count=len(replies),
                reply_users_count=len(reply_users),
                latest_reply=replies[-1].ts,
                reply_users=reply_users,
                is_locked=False,
                subscribed=False,
            )
        return rendered


def _remove_sorted(messages: list[Message], message: Message) -> None:
    del messages[bisect.bisect_left(messages, message.key, key=_message_key)]


def _range_bounds(messages, oldest, latest, inclusive) -> tuple[int, int]:
    """Index range [start, end) of messages inside (oldest, latest), or [oldest, latest] if inclusive."""
    start, end = 0, len(messages)
    if oldest is not None:
        find = bisect.bisect_left if inclusive else bisect.bisect_right
        start = find(messages, oldest, key=_message_key)
    if latest is not None:
        find = bisect.bisect_right if inclusive else bisect.bisect_left
        end = find(messages, latest, key=_message_key)
    return start, end


# Called with a Slack event (the inner "event" object) while the workspace lock
# is held, so events are queued in ts order; returns the event_id, or None when
# no Request URL is configured.
EventSink = Callable[[dict], str | None]


class Workspace:
    def __init__(self, team_id: str, bot_token: str, event_sink: EventSink):
        self.team_id = team_id
        self._seed_token = bot_token
        self._emit = event_sink
        self._lock = threading.RLock()
        self._clock = TsClock()
        #: Where url_private and upload_url point: the emulator's own address (set by the server).
        self.base_url = ""
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._tokens = {self._seed_token: False}  # token -> revoked
            self._users = {BOT_USER_ID: User(BOT_USER_ID, BOT_NAME, BOT_NAME, is_bot=True)}
            self._conversations = {
                SEED_CHANNEL_ID: Conversation(SEED_CHANNEL_ID, SEED_CHANNEL_NAME, self.team_id),
            }
            self._files = FileStore()

    # -- auth -----------------------------------------------------------------

    def set_token(self, token: str, revoked: bool) -> None:
        with self._lock:
            self._tokens[token] = revoked

    def check_token(self, token: str | None) -> None:
        with self._lock:
            if not token:
                raise SlackError("not_authed")
            if token not in self._tokens:
                raise SlackError("invalid_auth")
            if self._tokens[token]:
                raise SlackError("token_revoked")

    # -- users ----------------------------------------------------------------

    def add_user(
        self, user_id: str, name: str, real_name: str = "", email: str | None = None, is_bot: bool = False
    ) -> dict:
        with self._lock:
            user = User(user_id, name, real_name, email, is_bot)
            self._users[user_id] = user
            return user.render(self.team_id)

    def user_info(self, user_id: str) -> dict:
        with self._lock:
            if user_id not in self._users:
                raise SlackError("user_not_found")
            return self._users[user_id].render(self.team_id)

    def _ensure_user(self, user_id: str) -> None:
        if user_id not in self._users:
            name = user_id.lower()
            self._users[user_id] = User(user_id, name, name)

    # -- conversations --------------------------------------------------------

    def add_conversation(self, channel_id: str, name: str | None = None) -> dict:
        with self._lock:
            return self._conversation_info(self._ensure_conversation(channel_id, name))

    def conversation_info(self, channel_id: str) -> dict:
        with self._lock:
            return self._conversation_info(self._conversation(channel_id))

    def _conversation(self, channel_id: str) -> Conversation:
        conversation = self._conversations.get(channel_id)
        if conversation is None:
            raise SlackError("channel_not_found")
        return conversation

    def _ensure_conversation(self, channel_id: str, name: str | None = None) -> Conversation:
        if channel_id not in self._conversations:
            self._conversations[channel_id] = Conversation(channel_id, name or channel_id.lower(), self.team_id)
        elif name:
            self._conversations[channel_id].name = name
        return self._conversations[channel_id]

    def _conversation_info(self, conversation: Conversation) -> dict:
        kind = channel_type(conversation.id)
        return {
            "id": conversation.id,
            "name": conversation.name,
            "name_normalized": conversation.name,
            "created": conversation.created,
            "is_channel": kind == "channel",
            "is_group": kind == "group",
            "is_im": kind == "im",
            "is_mpim": False,
            "is_private": kind != "channel",
            "is_archived": False,
            "is_general": conversation.id == SEED_CHANNEL_ID,
            "is_member": True,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
        }

    # -- writing messages -----------------------------------------------------

    def post(
        self,
        channel_id: str,
        user_id: str,
        text: str,
        thread_ts: str | None = None,
        broadcast: bool = False,
        as_bot: bool = False,
        blocks: list | None = None,
        files: list[dict] | None = None,
        metadata: dict | None = None,
    ) -> tuple[dict, str | None]:
        """Store a message and emit its event; returns (rendered message, event_id or None).

        ``files`` ({"name", "data" (bytes), "mimetype"?}) are stored as files of the poster and shared
        with the message (subtype file_share), as when a person drags files into Slack.
        """
        with self._lock:
            shared = [
                self._render_file(self._files.add(user_id, f["name"], f["data"], f.get("mimetype")))
                for f in files or ()
            ]
            message = self._store(channel_id, user_id, text, thread_ts, broadcast, as_bot, blocks, shared)
            message.metadata = metadata
            return self._conversations[channel_id].render(message), self._emit_message(channel_id, message)

    # -- files ----------------------------------------------------------------

    def _render_file(self, file: SlackFile) -> dict:
        return file.render(self.team_id, self.base_url)

    def start_upload(self, filename: str, length: int) -> dict:
        """files.getUploadURLExternal: a file id and where to POST its bytes."""
        with self._lock:
            file, upload_id = self._files.start_upload(BOT_USER_ID, filename, length)
            return {"file_id": file.id, "upload_url": f"{self.base_url}{UPLOAD_PREFIX}{upload_id}"}

    def receive_upload(self, upload_id: str, data: bytes) -> bool:
        with self._lock:
            return self._files.receive(upload_id, data)

    def complete_upload(
        self, files: list[dict], channel_id: str | None, initial_comment: str, thread_ts: str | None
    ) -> list[dict]:
        """files.completeUploadExternal: share uploaded files, into a channel (or thread) if one is given."""
        with self._lock:
            if channel_id:
                self._conversation(channel_id)
                if thread_ts:
                    self._thread_parent(channel_id, str(thread_ts))
            if not all(self._files.awaits_completion(entry["id"]) for entry in files):
                raise SlackError("file_not_found")
            completed = [self._render_file(self._files.complete(entry["id"], entry.get("title"))) for entry in files]
            if channel_id:
                message = self._store(
                    channel_id, BOT_USER_ID, initial_comment or "", thread_ts, as_bot=True, files=completed
                )
                self._emit_message(channel_id, message)
            return completed

    def download(self, team_id: str, file_id: str, name: str, token: str | None) -> SlackFile | None:
        """A shared file for whoever holds a valid token (SlackError otherwise); None if there is no such file."""
        with self._lock:
            self.check_token(token)
            file = self._files.get(file_id) if team_id == self.team_id else None
            return replace(file) if file and file.name == name else None

    def post_many(self, channel_id: str, messages: list[dict], dispatch_events: bool) -> list[str]:
        """Store many user messages at once (seeding, benchmarks); returns their ts in order."""
        with self._lock:
            # Validate the whole batch first so a bad entry leaves nothing half-stored.
            known_ts = self._conversations[channel_id].by_ts if channel_id in self._conversations else {}
            for entry in messages:
                if not isinstance(entry.get("text"), str) or not isinstance(entry.get("user"), str):
                    raise SlackError("invalid_arguments")
                if entry.get("thread_ts") and str(entry["thread_ts"]) not in known_ts:
                    raise SlackError("thread_not_found")
            stored_ts = []
            for entry in messages:
                message = self._store(channel_id, entry["user"], entry["text"], entry.get("thread_ts"))
                if dispatch_events:
                    self._emit_message(channel_id, message)
                stored_ts.append(message.ts)
            return stored_ts

    def _emit_message(self, channel_id: str, message: Message) -> str | None:
        return self._emit(
            {
                **self._conversations[channel_id].render(message),
                "channel": channel_id,
                "event_ts": message.ts,
                "channel_type": channel_type(channel_id),
            }
        )

    def _store(
        self, channel_id, user_id, text, thread_ts=None, broadcast=False, as_bot=False, blocks=None, files=None
    ) -> Message:
        parent = self._thread_parent(channel_id, str(thread_ts)) if thread_ts else None
        conversation = self._ensure_conversation(channel_id)
        broadcast = bool(parent and broadcast)
        if not as_bot:
            self._ensure_user(user_id)
        message = Message(
            ts=self._clock.next(),
            user=user_id,
            text=text,
            thread_ts=parent.ts if parent else None,
            parent_user_id=parent.user if parent else None,
            subtype="thread_broadcast" if broadcast else "file_share" if files else "bot_message" if as_bot else None,
            bot_id=BOT_ID if as_bot else None,
            broadcast=broadcast,
            blocks=blocks,
            client_msg_id=None if as_bot else str(uuid.uuid4()),
            files=files or None,
        )
        conversation.add(message)
        return message

    def _thread_parent(self, channel_id: str, thread_ts: str) -> Message:
        conversation = self._conversations.get(channel_id)
        parent = conversation.by_ts.get(thread_ts) if conversation else None
        if parent is None:
            raise SlackError("thread_not_found")
        # Replying to a reply lands in the same thread, as in Slack.
        return conversation.by_ts[parent.thread_ts] if parent.is_reply else parent

    def edit(self, channel_id: str, ts: str, text: str) -> str | None:
        """Change a message's text; emits message_changed and returns its event_id."""
        with self._lock:
            conversation = self._conversation(channel_id)
            message = self._editable_message(conversation, ts)
            previous = conversation.render(message)
            event_ts = self._clock.next()
            message.text = text
            message.edited = {"user": message.user, "ts": event_ts}
            return self._emit(
                {
                    "type": "message",
                    "subtype": "message_changed",
                    "hidden": True,
                    "channel": channel_id,
                    "ts": event_ts,
                    "event_ts": event_ts,
                    "message": conversation.render(message),
                    "previous_message": previous,
                    "channel_type": channel_type(channel_id),
                }
            )

    def delete(self, channel_id: str, ts: str) -> str | None:
        """Delete a message; emits message_deleted and returns its event_id.

        A thread parent with replies stays behind as a tombstone (as in Slack),
        and a tombstone goes away with its last reply.
        """
        with self._lock:
            conversation = self._conversation(channel_id)
            message = self._editable_message(conversation, ts)
            previous = conversation.render(message)
            if conversation.threads.get(message.ts):
                message.subtype, message.user, message.text = "tombstone", SLACKBOT_USER_ID, TOMBSTONE_TEXT
                message.bot_id = message.edited = message.blocks = message.client_msg_id = None
            else:
                conversation.remove(message)
                if message.is_reply:
                    parent = conversation.by_ts[message.thread_ts]
                    if not conversation.threads[parent.ts]:
                        del conversation.threads[parent.ts]
                        if parent.subtype == "tombstone":
                            conversation.remove(parent)
            event_ts = self._clock.next()
            return self._emit(
                {
                    "type": "message",
                    "subtype": "message_deleted",
                    "hidden": True,
                    "channel": channel_id,
                    "ts": event_ts,
                    "event_ts": event_ts,
                    "deleted_ts": message.ts,
                    "previous_message": previous,
                    "channel_type": channel_type(channel_id),
                }
            )

    @staticmethod
    def _editable_message(conversation: Conversation, ts: str) -> Message:
        message = conversation.by_ts.get(str(ts))
        if message is None or message.subtype == "tombstone":
            raise SlackError("message_not_found")
        return message

    # -- reading messages -----------------------------------------------------

    def history(
        self,
        channel_id: str,
        oldest: int | None,
        latest: int | None,
        inclusive: bool,
        limit: int,
        cursor: str | None,
        with_metadata: bool = False,
    ) -> tuple[list[dict], str | None]:
        """Channel-visible messages, newest first; returns (page, next_cursor or None).

        The cursor names the newest message of the next (older) page.
        """
        with self._lock:
            conversation = self._conversation(channel_id)
            timeline = conversation.timeline
            start, end = _range_bounds(timeline, oldest, latest, inclusive)
            if cursor:
                end = min(end, bisect.bisect_right(timeline, decode_cursor(cursor), key=_message_key))
            page_start = max(start, end - limit)
            page = [conversation.render(message, with_metadata) for message in reversed(timeline[page_start:end])]
            next_cursor = encode_cursor(timeline[page_start - 1].key) if page_start > start else None
            return page, next_cursor

    def replies(
        self,
        channel_id: str,
        ts: str,
        oldest: int | None,
        latest: int | None,
        inclusive: bool,
        limit: int,
        cursor: str | None,
        with_metadata: bool = False,
    ) -> tuple[list[dict], str | None]:
        """The thread parent, then replies oldest first; returns (page, next_cursor or None).

        The parent leads every page regardless of oldest/latest, as in Slack;
        the cursor names the first reply of the next page.
        """
        with self._lock:
            conversation = self._conversation(channel_id)
            message = conversation.by_ts.get(str(ts))
            if message is None:
                raise SlackError("thread_not_found")
            if message.is_reply:  # a reply has no replies of its own: Slack returns it alone
                return [conversation.render(message, with_metadata)], None
            thread = conversation.threads.get(message.ts, [])
            start, end = _range_bounds(thread, oldest, latest, inclusive)
            if cursor:
                start = max(start, bisect.bisect_left(thread, decode_cursor(cursor), key=_message_key))
            page_end = min(end, start + limit)
            page = [conversation.render(message, with_metadata)] + [
                conversation.render(reply, with_metadata) for reply in thread[start:page_end]
            ]
            next_cursor = encode_cursor(thread[page_end].key) if page_end < end else None
            return page, next_cursor

    def all_messages(self, channel_id: str) -> list[dict]:
        """Every stored message of a conversation, thread replies included, oldest first."""
        with self._lock:
            conversation = self._conversation(channel_id)
            ordered = sorted(conversation.by_ts.values(), key=_message_key)
            return [conversation.render(message) for message in ordered]
