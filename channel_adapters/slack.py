"""Slack: Events API webhooks, conversations.history/replies polling, chat.postMessage replies.

Uses the real ``slack_sdk.WebClient``; ``base_url`` in the channel config
points it at GovSlack, a proxy or the local emulator. Files arrive as a
message's ``files[]`` and are downloaded from ``url_private`` with the bot
token; files sent with a reply go up with ``files_upload_v2`` into its thread.

A reply carries its delivery key in Slack's message metadata, and is posted
by a client without slack_sdk's automatic retry on connection errors (which
re-posts on its own): when no answer comes, the pipeline asks ``find_sent``,
which looks for the key in the thread, before posting again.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import http.client
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from urllib.error import URLError
from urllib.parse import urlsplit

import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from .base import (
    DEFAULT_IMPORT_DAYS,
    AttachmentLimits,
    Capability,
    ChannelAdapter,
    ConfigError,
    CredentialsError,
    Envelope,
    EnvelopeKind,
    InboundAttachment,
    InvalidWebhook,
    OutcomeUnknown,
    PermanentError,
    PollPage,
    RateLimited,
    Rejected,
    ReplyMode,
    Sender,
    Sent,
    TransientError,
    WebhookResult,
    plausible_time,
)
from .rate_limits import wait_seconds

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://slack.com/api/"
SIGNATURE_MAX_AGE_SECONDS = 300
CREDENTIAL_ERRORS = {
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "account_inactive",
    "no_permission",
    "missing_scope",
    "not_allowed_token_type",
}
TRANSIENT_ERRORS = {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
#: Message subtypes that carry what a person wrote.
TEXT_SUBTYPES = {None, "thread_broadcast", "file_share", "me_message"}
#: Known noise: membership, channel settings, bots (including our own echo).
IGNORED_SUBTYPES = {
    "bot_message",
    "channel_join",
    "channel_leave",
    "channel_topic",
    "channel_purpose",
    "channel_name",
    "channel_archive",
    "channel_unarchive",
    "channel_convert_to_private",
    "channel_posting_permissions",
    "group_join",
    "group_leave",
    "group_topic",
    "group_purpose",
    "group_name",
    "group_archive",
    "group_unarchive",
    "pinned_item",
    "unpinned_item",
    "bot_add",
    "bot_remove",
    "reminder_add",
    "tombstone",
    "message_replied",
    "ekm_access_denied",
}
#: Event types a Slack app commonly receives that carry no ticket content.
IGNORED_EVENT_TYPES = {
    "app_mention",  # the same text also arrives as a message event
    "app_home_opened",
    "reaction_added",
    "reaction_removed",
    "member_joined_channel",
    "member_left_channel",
    "channel_created",
    "channel_rename",
    "channel_archive",
    "user_change",
    "team_join",
    "pin_added",
    "pin_removed",
}
NO_RETRY = {"X-Slack-No-Retry": "1"}
#: Slack's message timestamps: seconds, a dot, microseconds ("1512085950.000216"). Also the message's id, so
#: "1e9" or " 1512085950.2" (which float() reads) are not Slack's and are refused.
TS = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")
#: Workspace, conversation and user ids ("T0123", "C0GENERAL", "U0ANN"); they end up in stored keys.
SLACK_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: No Slack message is older than Slack (its preview opened in August 2013).
SLACK_EPOCH = datetime(2013, 1, 1, tzinfo=UTC)
MARKUP = re.compile(r"<([^<>]+)>")
#: Hosts that serve url_private (the bot token goes only there, or to the configured API's own host).
FILE_HOSTS = {"files.slack.com", "files.slack-gov.com"}
#: Files that are listed but cannot be downloaded (deleted, beyond a free plan's limit, links to elsewhere).
UNAVAILABLE_FILE_MODES = {"tombstone", "hidden_by_limit", "external"}
#: Slack takes up to 1 GB per file (slack_sdk MAX_V2_FILE_SIZE) and shows up to 10 files per message.
REPLY_FILES = AttachmentLimits(max_files=10, max_bytes=1024**3)
DOWNLOAD_CHUNK = 64 * 1024
DEFAULT_TIMEOUT_SECONDS = 15
#: Our replies' metadata: ``event_payload[DELIVERY_KEY_FIELD]`` names the reply on every attempt.
METADATA_EVENT_TYPE = "helpdesk_reply"
DELIVERY_KEY_FIELD = "delivery_key"
#: How far before an unconfirmed attempt a lookup starts: Slack's clock and ours may differ a little, and
#: the key, not the time, identifies the reply.
LOOKUP_MARGIN_SECONDS = 300
#: Threads re-read per conversation and poll to find edited replies (an edit does not move ``latest_reply``).
#: conversations.replies is Tier 3 (50+ calls a minute): 10 a minute leaves room for new replies and history.
THREAD_REREADS_PER_POLL = 10


class BadPayload(ValueError):
    pass


class ThreadNotFound(PermanentError):
    """The thread is gone: its parent and every reply were deleted."""


def slack_to_plain(text: str) -> str:
    """Slack's message markup to what the person saw: links, mentions and its three HTML entities."""

    def link(match):
        target, _, label = match.group(1).partition("|")
        if target[:1] in "@#":
            return target[0] + (label or target[1:])
        if target.startswith("!"):
            return "@" + (label or target[1:].split("^")[0])
        return target if not label or label == target else f"{label} ({target})"

    text = MARKUP.sub(link, text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def plain_to_slack(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def ts_to_datetime(ts: str) -> datetime:
    return datetime.fromtimestamp(float(ts), tz=UTC)


def message_id(conversation: str, ts: str) -> str:
    return f"{conversation}:{ts}"


def edit_ts(message: Mapping) -> str:
    """When a message was last edited (Slack's ``edited.ts``); empty if never."""
    edited = message.get("edited")
    return str(edited.get("ts") or "") if isinstance(edited, Mapping) else ""


def next_cursor(data: Mapping) -> str | None:
    """The cursor of a page's next page, if Slack gave one."""
    metadata = data.get("response_metadata")
    cursor = metadata.get("next_cursor") if isinstance(metadata, Mapping) else None
    return cursor if isinstance(cursor, str) and cursor else None


class SlackAdapter(ChannelAdapter):
    """Config: ``bot_token`` and ``signing_secret`` (secrets), ``base_url``, ``conversations``
    (ids to poll), ``page_size`` (history page size, default 200), ``thread_lookback_hours``
    (how far back polls look for new thread replies and edits, default 24), ``thread_rereads_per_poll``
    (threads of that window re-read per conversation and poll to find edited replies, default 10; 0: none),
    ``timeout`` (seconds to wait for an answer, default 15), ``import_days`` (how far back the first poll
    imports, default 7)."""

    kind = "slack"
    capabilities = frozenset({Capability.POLL, Capability.WEBHOOK, Capability.REPLY})
    secret_fields = ("bot_token", "signing_secret")
    max_reply_length = 40_000
    finds_sent = True

    @classmethod
    def split_config(cls, raw):
        config, secrets = super().split_config(raw)
        if not secrets.get("bot_token"):
            raise ConfigError("Slack needs a bot_token (xoxb-…).")
        conversations = config.setdefault("conversations", [])
        if not isinstance(conversations, list) or not all(isinstance(c, str) for c in conversations):
            raise ConfigError("conversations must be a list of Slack conversation ids.")
        base_url = config.setdefault("base_url", DEFAULT_BASE_URL)
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError("base_url must be an http(s) address, e.g. https://slack.com/api/.")
        if not config["base_url"].endswith("/"):
            config["base_url"] += "/"
        for key in ("page_size", "thread_lookback_hours"):
            if key in config and (not isinstance(config[key], int) or config[key] <= 0):
                raise ConfigError(f"{key} must be a positive integer.")
        timeout = config.get("timeout", DEFAULT_TIMEOUT_SECONDS)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError("timeout must be a positive number of seconds.")
        rereads = config.get("thread_rereads_per_poll", THREAD_REREADS_PER_POLL)
        if isinstance(rereads, bool) or not isinstance(rereads, int) or rereads < 0:
            raise ConfigError("thread_rereads_per_poll must be a whole number, 0 or more.")
        return config, secrets

    @classmethod
    def polling_limits(cls, config):
        hours = config.get("thread_lookback_hours", 24)
        rereads = config.get("thread_rereads_per_poll", THREAD_REREADS_PER_POLL)
        edits = (
            f"re-reads {rereads} of them per poll to find edited replies, so such an edit can take a few polls to show"
            if rereads
            else "does not look for edited replies (thread_rereads_per_poll is 0)"
        )
        return (
            f"Polling finds thread replies only in threads started in the last {hours} hours, and {edits}. "
            "Older threads, and deletions, arrive only by webhook (Events API)."
        )

    # Platform calls ---------------------------------------------------------

    def _client(self, **options):
        return WebClient(
            token=self.secrets.get("bot_token"),
            base_url=self.config.get("base_url", DEFAULT_BASE_URL),
            timeout=self.config.get("timeout", DEFAULT_TIMEOUT_SECONDS),
            **options,
        )

    def _call(self, method, **params):
        try:
            return getattr(self._client(), method)(**params).data
        except SlackApiError as exc:
            raise self._translate(exc) from None
        except OSError as exc:
            raise TransientError(f"Slack unreachable: {exc}") from None
        except RecursionError:  # not one message of the page can be read, so none can be kept as failed
            raise TransientError(f"Slack answered {method} with JSON nested too deeply to read") from None

    @staticmethod
    def _translate(exc: SlackApiError):
        response = exc.response
        error = response.get("error") if isinstance(response.data, dict) else None
        if response.status_code == 429 or error == "ratelimited":
            retry_after = wait_seconds(response.headers)
            return RateLimited(f"Slack rate limit (retry after {retry_after:.0f}s)", retry_after=retry_after)
        if error in CREDENTIAL_ERRORS:
            return CredentialsError(f"Slack error: {error}")
        if response.status_code >= 500 or error in TRANSIENT_ERRORS:
            return TransientError(f"Slack error: HTTP {response.status_code} {error or ''}".strip())
        if error == "thread_not_found":
            return ThreadNotFound(f"Slack error: {error}")
        return PermanentError(f"Slack error: {error or f'HTTP {response.status_code}'}")

    def check_credentials(self):
        data = self._call("auth_test")
        return {
            "team_id": data.get("team_id"),
            "bot_user_id": data.get("user_id"),
            "bot_id": data.get("bot_id"),
            # Names, for an admin checking the connection: which workspace, as which bot.
            "team": data.get("team"),
            "bot_name": data.get("user"),
        }

    # Interpreting messages --------------------------------------------------

    def _namespace(self, team_id=None):
        return f"slack:{team_id or self.state.get('team_id') or 'unknown'}"

    def _is_own(self, message):
        return bool(
            (message.get("bot_id") and message.get("bot_id") == self.state.get("bot_id"))
            or (message.get("user") and message.get("user") == self.state.get("bot_user_id"))
        )

    def envelope(self, conversation: str, message: Mapping, *, team_id=None) -> Envelope | None:
        """Interpret one message (from history, replies or an event); None for noise. Raises BadPayload."""
        if not isinstance(message, Mapping):
            raise BadPayload("message is not an object")
        subtype = message.get("subtype")
        if subtype is not None and not isinstance(subtype, str):
            raise BadPayload("message subtype is not a string")
        if subtype == "message_changed":
            return self._edit(conversation, message)
        if subtype == "message_deleted":
            return self._deletion(conversation, message)
        if subtype in IGNORED_SUBTYPES or self._is_own(message) or message.get("bot_id"):
            return None
        if subtype not in TEXT_SUBTYPES:
            logger.info("slack: ignoring message subtype %r", subtype)
            return None
        ts, user = message.get("ts"), message.get("user")
        if not isinstance(ts, str) or not isinstance(user, str):
            raise BadPayload("message without ts or user")
        if not SLACK_ID.fullmatch(user):
            raise BadPayload(f"bad user id {user[:40]!r}")
        text = message.get("text")
        if not isinstance(text, str):
            raise BadPayload("message text is not a string")
        thread_ts = message.get("thread_ts") or ts
        sent_at = self._time(ts)
        self._time(thread_ts)
        return Envelope(
            external_id=message_id(conversation, ts),
            kind=EnvelopeKind.MESSAGE,
            thread_key=message_id(conversation, thread_ts),
            sent_at=sent_at,
            sender=Sender(namespace=self._namespace(team_id), external_id=user),
            text=slack_to_plain(text),
            starts_thread=thread_ts == ts,
            attachments=self._attachments(message.get("files")),
        )

    @staticmethod
    def _attachments(files) -> tuple[InboundAttachment, ...]:
        if not isinstance(files, list):
            return ()
        found = []
        for file in files:
            if not isinstance(file, Mapping) or str(file.get("mode")) in UNAVAILABLE_FILE_MODES:
                continue
            url = file.get("url_private_download") or file.get("url_private")
            if not isinstance(url, str) or not url:
                continue
            size = file.get("size")
            found.append(
                InboundAttachment(
                    name=str(file.get("name") or file.get("title") or file.get("id") or "file"),
                    content_type=str(file.get("mimetype") or "application/octet-stream"),
                    size=size if isinstance(size, int) and size >= 0 else 0,
                    ref=url,
                )
            )
        return tuple(found)

    def _edit(self, conversation, event):
        edited = event.get("message")
        if not isinstance(edited, Mapping) or not isinstance(edited.get("ts"), str):
            raise BadPayload("message_changed without message.ts")
        if self._is_own(edited):
            return None
        marker = edited.get("edited") or {}
        if not isinstance(marker, Mapping):
            raise BadPayload("message.edited is not an object")
        text = edited.get("text", "")
        if not isinstance(text, str):
            raise BadPayload("edited message text is not a string")
        edited_ts = marker.get("ts") or event.get("event_ts") or event.get("ts")
        return self._change(conversation, edited, EnvelopeKind.EDIT, edited_ts, slack_to_plain(text))

    def _deletion(self, conversation, event):
        deleted_ts = event.get("deleted_ts")
        if not isinstance(deleted_ts, str):
            raise BadPayload("message_deleted without deleted_ts")
        previous = event.get("previous_message") or {}
        if not isinstance(previous, Mapping):
            raise BadPayload("previous_message is not an object")
        target = {"ts": deleted_ts, "thread_ts": previous.get("thread_ts")}
        return self._change(conversation, target, EnvelopeKind.DELETE, event.get("event_ts") or event.get("ts"), "")

    def _change(self, conversation, target, kind, changed_ts, text):
        ts = target["ts"]
        thread_ts = target.get("thread_ts") or ts
        self._time(ts)
        self._time(thread_ts)
        changed_ts = changed_ts or ts
        return Envelope(
            external_id=f"{message_id(conversation, ts)}:{kind}:{changed_ts}",
            kind=kind,
            thread_key=message_id(conversation, thread_ts),
            sent_at=self._time(changed_ts),
            text=text,
            target_id=message_id(conversation, ts),
        )

    @staticmethod
    def _time(ts) -> datetime:
        """A Slack ts as a time, if it is one Slack could have minted. Raises BadPayload."""
        if not isinstance(ts, str) or not TS.fullmatch(ts):
            raise BadPayload(f"bad timestamp {str(ts)[:40]!r}")
        try:
            return plausible_time(ts_to_datetime(ts), platform_epoch=SLACK_EPOCH)
        except (OverflowError, ValueError) as exc:
            raise BadPayload(f"bad timestamp {ts!r}: {exc}") from None

    def _interpret(self, conversation, messages, envelopes, rejected, *, team_id=None):
        for message in messages:
            try:
                envelope = self.envelope(conversation, message, team_id=team_id)
            except BadPayload as exc:
                reference = message.get("ts", "?") if isinstance(message, Mapping) else "?"
                rejected.append(Rejected(reference=f"{conversation}:{reference}"[:200], reason=str(exc), raw=message))
                continue
            if envelope is not None:
                envelopes.append(envelope)

    def _messages(self, conversation, data, rejected) -> list[Mapping]:
        """The messages of a history or replies page whose times a poll compares (ts, thread_ts, latest_reply,
        edited.ts) are Slack's; the others are rejected with their raw data, so one odd message never stops a
        poll. What else a message needs is checked when it is interpreted."""
        messages = data.get("messages") or []
        if not isinstance(messages, list):
            rejected.append(Rejected(reference=f"{conversation}:page", reason="messages is not a list", raw=messages))
            return []
        well_formed = []
        for message in messages:
            try:
                self._check_times(message)
            except BadPayload as exc:
                reference = message.get("ts", "?") if isinstance(message, Mapping) else "?"
                rejected.append(Rejected(reference=f"{conversation}:{reference}"[:200], reason=str(exc), raw=message))
            else:
                well_formed.append(message)
        return well_formed

    def _check_times(self, message):
        if not isinstance(message, Mapping):
            raise BadPayload("message is not an object")
        self._time(message.get("ts"))
        if message.get("thread_ts") is not None:
            self._time(message["thread_ts"])
        if "latest_reply" in message:
            self._time(message["latest_reply"])
        edited = message.get("edited")
        if edited is not None:
            if not isinstance(edited, Mapping):
                raise BadPayload("edited is not an object")
            if "ts" in edited:
                self._time(edited["ts"])

    # Polling ----------------------------------------------------------------

    def poll(self, cursor):
        cursor = copy.deepcopy(dict(cursor))
        for conversation in self.config.get("conversations", []):
            yield from self._poll_conversation(conversation, cursor)

    def _poll_conversation(self, conversation, cursor) -> Iterator[PollPage]:
        """Scan recent history, newest first, then read the threads whose latest reply is new, and a few more.

        History is re-read back to the lookback window because a thread reply
        does not show up in history: only its parent's ``latest_reply`` moves.
        An edited reply moves nothing, so besides the threads with new replies each poll re-reads
        ``thread_rereads_per_poll`` threads of the window, the least recently read first.
        The high-water mark advances only after the whole scan is stored.
        """
        state = cursor.setdefault(conversation, {})
        now = time.time()
        window_start = f"{now - 3600 * self.config.get('thread_lookback_hours', 24):.6f}"
        import_days = self.config.get("import_days", DEFAULT_IMPORT_DAYS)
        high_water = state.get("oldest") or f"{now - 86400 * import_days:.6f}"
        threads = {ts: seen for ts, seen in state.get("threads", {}).items() if ts >= window_start}
        reads = {ts: read for ts, read in state.get("thread_reads", {}).items() if ts in threads}
        scan_from = min(high_water, window_start)
        newest = high_water
        pending_threads = {}
        page_cursor = None
        while True:
            params = {"channel": conversation, "oldest": scan_from, "limit": self.config.get("page_size", 200)}
            if page_cursor:
                params["cursor"] = page_cursor
            data = self._call("conversations_history", **params)
            envelopes, rejected = [], []
            messages = self._messages(conversation, data, rejected)
            fresh = [m for m in messages if isinstance(m, Mapping) and m.get("ts", "") > high_water]
            edited = [
                m
                for m in messages
                if isinstance(m, Mapping)
                and m.get("ts", "") <= high_water
                and (m.get("edited") or {}).get("ts", "") > state.get("edits_seen", high_water)
            ]
            self._interpret(conversation, fresh, envelopes, rejected)
            for message in edited:
                self._interpret(conversation, [{"subtype": "message_changed", "message": message}], envelopes, rejected)
            for message in messages:
                if isinstance(message, Mapping) and message.get("latest_reply", "") > threads.get(
                    message.get("ts"), ""
                ):
                    pending_threads[message["ts"]] = message["latest_reply"]
                if isinstance(message, Mapping):
                    newest = max(newest, message.get("ts", ""))
            yield PollPage(envelopes=envelopes, cursor=copy.deepcopy(cursor), rejected=rejected)
            page_cursor = next_cursor(data)
            if not (data.get("has_more") and page_cursor):
                break

        rereads = sorted(
            (ts for ts in threads if ts not in pending_threads), key=lambda ts: reads.get(ts, {}).get("at", "")
        )
        rereads = rereads[: self.config.get("thread_rereads_per_poll", THREAD_REREADS_PER_POLL)]
        # Replies of many threads go into one page, so a burst of small threads is stored
        # (and ingested) in a few batches rather than one per thread.
        envelopes, rejected = [], []
        for parent_ts in [*pending_threads, *rereads]:
            seen = threads.get(parent_ts, parent_ts)
            edits_seen = reads.get(parent_ts, {}).get("edited", seen)
            try:
                latest, edited = self._read_thread(conversation, parent_ts, seen, edits_seen, envelopes, rejected)
            except ThreadNotFound:
                threads.pop(parent_ts, None)
                reads.pop(parent_ts, None)
            else:
                threads[parent_ts] = max(seen, latest, pending_threads.get(parent_ts, ""))
                reads[parent_ts] = {"at": f"{time.time():.6f}", "edited": max(edits_seen, edited)}
            state.update(threads=threads, thread_reads=reads)
            if len(envelopes) >= self.config.get("page_size", 200):
                yield PollPage(envelopes=envelopes, cursor=copy.deepcopy(cursor), rejected=rejected)
                envelopes, rejected = [], []

        state.update(oldest=newest, edits_seen=f"{now:.6f}", threads=threads, thread_reads=reads)
        yield PollPage(envelopes=envelopes, cursor=copy.deepcopy(cursor), rejected=rejected)

    def _read_thread(self, conversation, parent_ts, seen, edits_seen, envelopes, rejected):
        """Read a whole thread: replies after ``seen`` are new, earlier ones edited after ``edits_seen`` become
        edits. Returns the newest reply's ts and the newest ``edited.ts`` in the thread."""
        latest, newest_edit, page_cursor = "", "", None
        while True:
            params = {"channel": conversation, "ts": parent_ts, "limit": self.config.get("page_size", 200)}
            if page_cursor:
                params["cursor"] = page_cursor
            data = self._call("conversations_replies", **params)
            replies = [m for m in self._messages(conversation, data, rejected) if m.get("ts") != parent_ts]
            self._interpret(conversation, [m for m in replies if str(m.get("ts", "")) > seen], envelopes, rejected)
            for reply in replies:
                edited_ts = edit_ts(reply)
                if str(reply.get("ts", "")) <= seen and edited_ts > edits_seen:
                    self._interpret(
                        conversation, [{"subtype": "message_changed", "message": reply}], envelopes, rejected
                    )
                latest, newest_edit = max(latest, str(reply.get("ts", ""))), max(newest_edit, edited_ts)
            page_cursor = next_cursor(data)
            if not (data.get("has_more") and page_cursor):
                return latest, newest_edit

    # Webhooks ---------------------------------------------------------------

    def handle_webhook(self, *, headers, body):
        self._verify_signature(headers, body)
        try:
            # A byte that is not UTF-8 becomes U+FFFD (visible in the message) rather than costing the message.
            payload = json.loads(body.decode("utf-8", errors="replace"))
        except json.JSONDecodeError:
            raise InvalidWebhook("Malformed JSON body.", status=400, headers=NO_RETRY) from None
        except RecursionError:
            raise InvalidWebhook("The JSON body is nested too deeply.", status=400, headers=NO_RETRY) from None
        if not isinstance(payload, dict):
            raise InvalidWebhook("The body is not a JSON object.", status=400, headers=NO_RETRY)
        kind = payload.get("type")
        if kind == "url_verification":
            return WebhookResult(body={"challenge": str(payload.get("challenge", ""))})
        if kind != "event_callback":
            raise InvalidWebhook(f"Unknown payload type {kind!r}.", status=400, headers=NO_RETRY)
        event = payload.get("event")
        if not isinstance(event, dict):
            raise InvalidWebhook("event_callback without an event object.", status=400, headers=NO_RETRY)
        event_type = event.get("type")
        if not isinstance(event_type, str):
            raise InvalidWebhook("The event has no type.", status=400, headers=NO_RETRY)
        if event_type in IGNORED_EVENT_TYPES:
            logger.info("slack: ignoring %s event", event_type)
            return WebhookResult(body={"ok": True, "ignored": event_type})
        if event_type != "message":
            # Acknowledged, not refused: Slack turns off an app's event subscriptions when too many deliveries
            # fail, which would stop this channel's messages too. Subscribing to a new type is an app setting.
            logger.warning("slack: ignoring unknown event type %r", event_type[:100])
            return WebhookResult(body={"ok": True, "ignored": "unknown event type"})
        conversation, team_id = event.get("channel"), payload.get("team_id")
        if not isinstance(conversation, str) or not SLACK_ID.fullmatch(conversation):
            raise InvalidWebhook("The message event has no valid channel id.", status=400, headers=NO_RETRY)
        if team_id is not None and (not isinstance(team_id, str) or not SLACK_ID.fullmatch(team_id)):
            raise InvalidWebhook("The event's team_id is not a Slack id.", status=400, headers=NO_RETRY)
        watched = self.config.get("conversations")
        if watched and conversation not in watched:
            return WebhookResult(body={"ok": True, "ignored": "conversation not watched"})
        try:
            envelope = self.envelope(conversation, event, team_id=team_id)
        except BadPayload as exc:
            raise InvalidWebhook(f"Uninterpretable message event: {exc}", status=400, headers=NO_RETRY) from None
        if envelope is None:
            return WebhookResult(body={"ok": True, "ignored": event.get("subtype") or "own message"})
        return WebhookResult(body={"ok": True}, envelopes=[envelope])

    def _verify_signature(self, headers, body):
        secret = self.secrets.get("signing_secret")
        if not secret:
            raise InvalidWebhook("This channel has no signing_secret; webhooks are refused.", status=403)
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        signature = headers.get("X-Slack-Signature", "")
        if not timestamp or not signature:
            raise InvalidWebhook("Missing Slack signature headers.", status=401)
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise InvalidWebhook("Malformed X-Slack-Request-Timestamp.", status=401)
        age = abs(time.time() - int(timestamp))
        if age > SIGNATURE_MAX_AGE_SECONDS:
            raise InvalidWebhook("Stale request: timestamp is more than 5 minutes off.", status=401)
        # Over the raw bytes, as Slack signs them (slack_sdk's SignatureVerifier would first decode them as
        # UTF-8 and fail on a stray byte before the signature is even known to be good).
        expected = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(f"v0={expected}".encode(), signature.encode("utf-8", errors="replace")):
            raise InvalidWebhook("Invalid Slack signature.", status=401)

    # Names ------------------------------------------------------------------

    def describe_senders(self, senders):
        described = {}
        for sender in senders:
            profile = self._fetch_profile(sender.external_id)
            if profile is not None:
                described[sender.external_id] = Sender(
                    namespace=sender.namespace, external_id=sender.external_id, **profile
                )
        return described

    def _fetch_profile(self, user_id):
        try:
            user = self._call("users_info", user=user_id).get("user") or {}
        except Exception as exc:  # noqa: BLE001 - names are best effort; the id stands in
            logger.warning("slack: users.info %s failed: %s", user_id, exc)
            return None
        profile = user.get("profile") or {}
        return {
            "handle": user.get("name", ""),
            # Agents want the person's full name; the chosen display name is a fallback.
            "display_name": profile.get("real_name")
            or user.get("real_name")
            or profile.get("display_name")
            or user.get("name", ""),
            "email": profile.get("email", ""),
        }

    # Replies ----------------------------------------------------------------

    def reply_modes(self, target):
        return [ReplyMode(key="", label="Reply", max_length=self.max_reply_length, attachments=REPLY_FILES)]

    def send(self, *, target, text, key):
        conversation, _, thread_ts = target.thread_key.partition(":")
        metadata = {"event_type": METADATA_EVENT_TYPE, "event_payload": {DELIVERY_KEY_FIELD: key}}
        # No automatic retry (slack_sdk re-posts on connection errors by default): a post is sent again only
        # after find_sent has looked for it.
        client = self._client(retry_handlers=[])
        try:
            data = client.chat_postMessage(
                channel=conversation, thread_ts=thread_ts, text=plain_to_slack(text), metadata=metadata
            ).data
        except SlackApiError as exc:
            error = self._translate(exc)
            answer = exc.response.data
            if isinstance(answer, dict) and answer.get("error") == "fatal_error":  # Slack: it may have partly succeeded
                raise OutcomeUnknown(f"{error}; the post may have been made") from None
            raise error from None
        except URLError as exc:  # raised while connecting or sending: the request did not reach Slack
            raise TransientError(f"Slack unreachable: {exc.reason}") from None
        except (OSError, http.client.HTTPException) as exc:  # no answer after the request went out
            raise OutcomeUnknown(f"Slack did not answer the post ({type(exc).__name__}: {exc})") from None
        return Sent(external_id=message_id(conversation, data["ts"]))

    def find_sent(self, *, target, text, key, since):
        """Our message with this key in the thread (or, for a top-level post, the conversation's history)."""
        conversation, _, thread_ts = target.thread_key.partition(":")
        method, where = ("conversations_replies", {"ts": thread_ts}) if thread_ts else ("conversations_history", {})
        params = {
            "channel": conversation,
            "oldest": f"{since.timestamp() - LOOKUP_MARGIN_SECONDS:.6f}",
            "include_all_metadata": True,
            "limit": self.config.get("page_size", 200),
            **where,
        }
        while True:
            data = self._call(method, **params)
            for message in data.get("messages", []):
                if isinstance(message, Mapping) and self._carries_key(message, key):
                    return Sent(external_id=message_id(conversation, message["ts"]))
            page_cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not (data.get("has_more") and page_cursor):
                return None
            params["cursor"] = page_cursor

    def _carries_key(self, message, key):
        metadata = message.get("metadata")
        return (
            isinstance(metadata, Mapping)
            and metadata.get("event_type") == METADATA_EVENT_TYPE
            and isinstance(metadata.get("event_payload"), Mapping)
            and metadata["event_payload"].get(DELIVERY_KEY_FIELD) == key
            and bool(message.get("bot_id"))
            and (not self.state.get("bot_id") or message["bot_id"] == self.state["bot_id"])
        )

    def send_attachment(self, *, target, file):
        # One files_upload_v2 per file, after the text was posted: the caller records each file as it
        # goes, so a retry after a partial failure uploads only what is missing.
        conversation, _, thread_ts = target.thread_key.partition(":")
        try:
            data = self._call(
                "files_upload_v2",
                channel=conversation,
                thread_ts=thread_ts,
                file=file.data,
                filename=file.name,
                title=file.name,
            )
        except SlackRequestError as exc:  # the upload URL itself refused the bytes
            raise TransientError(f"Slack file upload failed: {exc}") from None
        return data["files"][0]["id"]

    # Files ------------------------------------------------------------------

    def fetch_attachment(self, ref):
        host = urlsplit(ref).netloc
        if urlsplit(ref).scheme not in ("http", "https") or host not in FILE_HOSTS | {self._api_host()}:
            raise PermanentError(f"Not a Slack file address ({host or ref[:40]}); the token is not sent there.")
        try:
            response = requests.get(
                ref, headers={"Authorization": f"Bearer {self.secrets.get('bot_token')}"}, stream=True, timeout=(10, 60)
            )
        except requests.RequestException as exc:
            raise TransientError(f"Slack file download failed: {exc}") from None
        with response:
            self._check_download(response, ref)
            try:
                yield from response.iter_content(DOWNLOAD_CHUNK)
            except requests.RequestException as exc:
                raise TransientError(f"Slack file download broke off: {exc}") from None

    def _api_host(self):
        return urlsplit(self.config.get("base_url", DEFAULT_BASE_URL)).netloc

    @staticmethod
    def _check_download(response, ref):
        status = response.status_code
        if status == 429:
            retry_after = wait_seconds(response.headers)
            raise RateLimited(
                f"Slack rate limit on a file download (retry after {retry_after:.0f}s)", retry_after=retry_after
            )
        if status == 401:
            raise CredentialsError("Slack refused the bot token for a file download (HTTP 401).")
        if status in (403, 404, 410):
            raise PermanentError(f"Slack refused the file download: HTTP {status} (needs the files:read scope?).")
        if status != 200:
            raise TransientError(f"Slack file download failed: HTTP {status}.")
        # Without files:read Slack answers 200 with its sign-in page instead of the file.
        if response.headers.get("Content-Type", "").startswith("text/html") and not ref.lower().endswith(
            (".html", ".htm")
        ):
            raise PermanentError(
                "Slack answered a file download with a web page: the bot token cannot read files "
                "(add the files:read scope)."
            )
