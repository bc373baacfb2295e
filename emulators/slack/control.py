"""Control API under /_emulator/: JSON endpoints that tests, demos and benchmarks
use to play the humans in the workspace and to inspect or break the emulator.
No auth. Errors are HTTP 4xx with {"error": "..."}.
"""

import base64
import binascii
from collections.abc import Callable

from ..common import AfterWrite, ControlError, ControlRoutes
from .events import EventDispatcher
from .traffic import CallStats, FaultPlan, build_fault
from .workspace import BOT_ID, SlackError, Workspace


def _field(payload: dict, name: str, kind=str):
    value = payload.get(name)
    if not isinstance(value, kind) or (kind is str and not value):
        raise ControlError(f"{name} is required")
    return value


def _file(entry) -> dict:
    if not isinstance(entry, dict):
        raise ControlError("each file is an object")
    try:
        data = base64.b64decode(_field(entry, "content_base64"), validate=True)
    except binascii.Error as exc:
        raise ControlError("content_base64 is not base64") from exc
    return {"name": _field(entry, "name"), "data": data, "mimetype": entry.get("mimetype")}


class ControlApi(ControlRoutes):
    platform_errors = (SlackError,)

    def __init__(
        self,
        workspace: Workspace,
        events: EventDispatcher,
        faults: FaultPlan,
        stats: CallStats,
        reset: Callable[[], None],
    ):
        super().__init__(reset)
        self.workspace = workspace
        self.events = events
        self.faults = faults
        self.stats = stats
        self._routes = {
            ("POST", "reset"): self.reset,
            ("POST", "users"): self.add_user,
            ("POST", "conversations"): self.add_conversation,
            ("POST", "messages"): self.post_message,
            ("POST", "messages/bulk"): self.post_messages,
            ("POST", "messages/edit"): self.edit_message,
            ("POST", "messages/delete"): self.delete_message,
            ("GET", "messages"): self.list_messages,
            ("GET", "bot_messages"): self.list_bot_messages,
            ("POST", "faults"): self.arm_fault,
            ("DELETE", "faults"): self.clear_faults,
            ("POST", "faults/after_write"): self.arm_after_write,
            ("POST", "tokens"): self.set_token,
            ("POST", "config"): self.configure,
            ("GET", "stats"): self.read_stats,
            ("POST", "events/redeliver"): self.redeliver_event,
            ("POST", "events/url_verification"): self.verify_url,
            ("POST", "events/wait"): self.wait_for_events,
        }

    def platform_error(self, exc: SlackError) -> tuple[int, dict]:
        return 400, {"error": exc.code}

    def add_user(self, payload: dict) -> dict:
        user_id = _field(payload, "id")
        return self.workspace.add_user(
            user_id,
            name=payload.get("name") or user_id.lower(),
            real_name=payload.get("real_name", ""),
            email=payload.get("email"),
            is_bot=bool(payload.get("is_bot", False)),
        )

    def add_conversation(self, payload: dict) -> dict:
        return self.workspace.add_conversation(_field(payload, "id"), payload.get("name"))

    def post_message(self, payload: dict) -> dict:
        """A person posts; with ``files`` ([{"name", "content_base64", "mimetype"?}]) the text may be empty."""
        files = [_file(entry) for entry in payload.get("files") or ()]
        message, event_id = self.workspace.post(
            _field(payload, "channel"),
            _field(payload, "user"),
            str(payload.get("text") or "") if files else _field(payload, "text"),
            thread_ts=payload.get("thread_ts"),
            broadcast=bool(payload.get("reply_broadcast", False)),
            files=files,
        )
        return {"ts": message["ts"], "event_id": event_id, "files": message.get("files", [])}

    def post_messages(self, payload: dict) -> dict:
        timestamps = self.workspace.post_many(
            _field(payload, "channel"),
            _field(payload, "messages", list),
            dispatch_events=bool(payload.get("dispatch_events", False)),
        )
        return {"ts": timestamps}

    def edit_message(self, payload: dict) -> dict:
        event_id = self.workspace.edit(_field(payload, "channel"), _field(payload, "ts"), _field(payload, "text"))
        return {"event_id": event_id}

    def delete_message(self, payload: dict) -> dict:
        return {"event_id": self.workspace.delete(_field(payload, "channel"), _field(payload, "ts"))}

    def list_messages(self, payload: dict) -> dict:
        return {"messages": self.workspace.all_messages(_field(payload, "channel"))}

    def list_bot_messages(self, payload: dict) -> dict:
        messages = self.workspace.all_messages(_field(payload, "channel"))
        return {"messages": [message for message in messages if message.get("bot_id") == BOT_ID]}

    def arm_fault(self, payload: dict) -> dict:
        method = _field(payload, "method")
        if "latency" in payload:
            self.faults.set_latency(method, float(payload["latency"]))
        if any(key in payload for key in ("count", "status", "error")):
            fault = build_fault(
                int(payload.get("count", 1)), payload.get("status"), payload.get("error"), payload.get("retry_after")
            )
            self.faults.arm(method, fault)
        return {}

    def arm_after_write(self, payload: dict) -> dict:
        self.faults.arm_after_write(_field(payload, "method"), AfterWrite.build(payload))
        return {}

    def clear_faults(self, payload: dict) -> dict:
        self.faults.clear()
        return {}

    def set_token(self, payload: dict) -> dict:
        self.workspace.set_token(_field(payload, "token"), bool(payload.get("revoked", False)))
        return {}

    def configure(self, payload: dict) -> dict:
        self.events.configure(
            events_url=payload.get("events_url"),
            signing_secret=payload.get("signing_secret"),
            retry_delays=payload.get("event_retry_delays"),
            timeout=payload.get("event_timeout"),
        )
        return self.events.config()

    def read_stats(self, payload: dict) -> dict:
        return {
            **self.stats.snapshot(),
            "event_deliveries": self.events.deliveries(),
            "events_pending": self.events.pending(),
        }

    def redeliver_event(self, payload: dict) -> dict:
        self._require_events_url()
        try:
            return self.events.redeliver(_field(payload, "event_id"))
        except KeyError as exc:
            raise ControlError("event_not_found", status=404) from exc

    def verify_url(self, payload: dict) -> dict:
        self._require_events_url()
        return self.events.verify_url()

    def wait_for_events(self, payload: dict) -> dict:
        idle = self.events.wait_idle(timeout=float(payload.get("timeout", 10)))
        return {"idle": idle, "pending": self.events.pending()}

    def _require_events_url(self) -> None:
        if not self.events.config()["events_url"]:
            raise ControlError("no events_url configured")
